"""The rule protocol: what one placement rule declares, and the views of the plan it reads.

A rule owns everything about itself: the policy key it reads (``policy_field``), its per-host
figures (computed in ``build``), its counters (``start``/``charge``), both its texts (why a guest
was placed: ``placed_text``; why it was refused: ``refusal``), its solver rows (``rows``) and its
capacity bound (``cannot_hold``). The model and the state only loop over rules.

This module imports nothing of the model: the model imports the rules, never the other way
round. The rules see the plan through the small protocols below, which the model implements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ...snapshot import Snapshot
from ..policy import Policy

NO_LIMIT = 1 << 30


class GuestView(Protocol):
    """A guest to place, as the rules read it (``model.PGuest``)."""

    idx: int
    name: str
    mem: int
    vcpus: int
    tier: int
    classes: tuple[int, ...]
    pinned: frozenset[int] | None
    avoided: frozenset[int]


class ModelView(Protocol):
    """The planning problem, as the rules read it (``model.Model``)."""

    snapshot: Snapshot
    policy: Policy
    usable: list[int]
    warnings: list[str]

    @property
    def guests(self) -> Sequence[GuestView]:
        """Every guest to place."""
        ...

    def host_name(self, host: int) -> str:
        """The name of host index ``host``."""
        ...

    def running_names(self) -> list[set[str]]:
        """Per host index: the guests running there now (xl list and the cluster's owners)."""
        ...


class StateView(Protocol):
    """A placement in progress, as the rules read it (``model.State``)."""

    model: ModelView
    where: list[int | None]
    relaxed: set[int]

    def counter(self, rule: Rule) -> Any:
        """``rule``'s counters in this state."""
        ...


@dataclass(frozen=True)
class Refusal:
    """Why one rule refuses one guest on one host: the rule, the figures, and the text."""

    rule: str  # the label in the JSON: "RAM", "vCPU cap", "pin", "avoid", "class <name>", ...
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    # The rule object that refused: the explain summary groups by it, never by the label.
    source: Rule | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The refusal as a JSON object."""
        return {"rule": self.rule, "text": self.text, **self.data}


@dataclass
class Kind:
    """Guests every rule treats alike (the exact search counts them instead of naming them)."""

    index: int
    example: GuestView
    members: list[int]  # guest indexes


@dataclass
class Row:
    """One linear constraint of the exact search: sum(coef * column) <= upper."""

    terms: list[tuple[int, int]]  # (column index, coefficient)
    upper: int


@dataclass(frozen=True)
class Demand:
    """What a set of guests asks of the cluster, for capacity's quick necessary test."""

    guests: int
    ram_mib: int  # with overhead
    largest_mib: int
    vcpus: int


def number_text(value: float) -> str:
    """``value`` without a needless ``.0`` (a cap of 32.0 vCPUs reads 32)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def floor_room(limit: float, used: float) -> int:
    """Whole units left under ``limit`` (never negative; a float cap's rounding forgiven)."""
    return max(math.floor(limit - used + 1e-9), 0)


class Rule:
    """One placement rule. Subclasses answer the questions; the defaults mean "no opinion"."""

    # The label of its refusals in texts and JSON.
    name: ClassVar[str] = ""
    # The policy key this rule reads (None: a run option or the snapshot alone decides).
    policy_field: ClassVar[str | None] = None
    # Its place among the rules, cheapest test first (declared by every concrete rule; the
    # package takes part every class of its modules that sets it).
    order: ClassVar[int]
    # True when the rule keeps counters that placing a guest changes.
    counts: ClassVar[bool] = False
    # Set by the model: this rule's position in ``model.rules`` (and its counters' slot).
    index: int = -1

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """This rule's instances for ``model`` (none when its policy key leaves it off)."""
        return [cls()]

    def label(self) -> str:
        """The rule's name in texts (an instance may add to the class's ``name``)."""
        return self.name

    def start(self) -> Any:
        """Counters before any guest of the plan is placed (None: the rule keeps none)."""
        return None

    def copy(self, counters: Any) -> Any:
        """An independent copy of ``counters``."""
        return list(counters) if counters is not None else None

    def charge(self, counters: Any, guest: GuestView, host: int, sign: int) -> None:
        """Count ``guest`` on ``host`` (``sign`` +1) or take it off (-1)."""

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when this rule lets ``guest`` go on ``host`` in ``state``."""
        raise NotImplementedError

    def copies(self, state: StateView, guest: GuestView, host: int) -> int:
        """How many guests like ``guest`` this rule lets ``host`` take in ``state``."""
        return NO_LIMIT if self.fits(state, guest, host) else 0

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """Why this rule refuses ``guest`` on ``host`` (None when it does not)."""
        raise NotImplementedError

    def placed_text(self, state: StateView, guest: GuestView, host: int) -> str | None:
        """This rule's part of why ``guest`` fits ``host``, before it is charged (None: silent)."""
        return None

    def breaks(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when a relaxed guest on ``host`` goes beyond this rule (soft anti-affinity)."""
        return False

    def soft_text(self, state: StateView, host: int) -> str:
        """How placing on ``host`` broke this relaxed rule ('class web shares xen01 with web01')."""
        return ""

    def down_hint(self, guest: GuestView, refused_somewhere: bool) -> str | None:
        """The whole reason ``guest`` stays down when this rule alone decides it (None: no hint).

        ``refused_somewhere``: this rule refuses the guest on some host its pin/avoid allows.
        """
        return None

    def host_key(self, state: StateView, host: int) -> Any:
        """What this rule's counters say of ``host`` (hosts alike for every rule are twins)."""
        return None

    def kind_key(self, guest: GuestView, relaxed: bool) -> Any:
        """What this rule sees of ``guest``: guests alike for every rule are one solver kind."""
        return None

    def rows(
        self, base: StateView, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """This rule's constraints over the (kind, host) columns, on top of ``base``."""
        return []

    def cannot_hold(self, demand: Demand, hosts: list[int]) -> bool:
        """True when ``hosts``, empty of this plan, surely cannot take ``demand`` under this rule.

        A necessary test only (capacity prunes failure sets with it): never True for a demand
        some layout could place.
        """
        return False


def ref(rule: Rule, text: str, **data: Any) -> Refusal:
    """A refusal by ``rule`` with its figures."""
    return Refusal(rule.label(), text, data, rule)
