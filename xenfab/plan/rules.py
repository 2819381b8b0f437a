"""Placement rules, each written once: its fit test, its refusal, its solver constraint.

Like a scheduler filter, a rule decides and explains in the same place. Greedy and repair ask
``State.fits`` (every rule's ``fits``), the exact search builds its program from every rule's
``rows``, ``--explain`` and the JSON ``per_host`` text come from every rule's ``refusal`` (a
structured :class:`Refusal`, never re-parsed from text), and capacity's quick test sums what
``RamRule`` and ``VcpuCapRule`` count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Model, PGuest, State

NO_LIMIT = 1 << 30


@dataclass(frozen=True)
class Refusal:
    """Why one rule refuses one guest on one host: the rule, the figures, and the text."""

    rule: str  # "RAM", "vCPU cap", "pin", "avoid", "class <name>"
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The refusal as a JSON object."""
        return {"rule": self.rule, "text": self.text, **self.data}


@dataclass
class Kind:
    """Guests every rule treats alike (the exact search counts them instead of naming them)."""

    index: int
    example: PGuest
    classes: tuple[int, ...]
    members: list[int]  # guest indexes


@dataclass
class Row:
    """One linear constraint of the exact search: sum(coef * column) <= upper."""

    terms: list[tuple[int, int]]  # (column index, coefficient)
    upper: int


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class Rule:
    """One placement rule; subclasses fill in the four questions."""

    name = ""

    def fits(self, state: State, guest: PGuest, host: int) -> bool:
        """True when this rule lets ``guest`` go on ``host`` in ``state``."""
        raise NotImplementedError

    def copies(self, state: State, guest: PGuest, host: int) -> int:
        """How many guests like ``guest`` this rule lets ``host`` take in ``state``."""
        return NO_LIMIT if self.fits(state, guest, host) else 0

    def refusal(self, state: State, guest: PGuest, host: int) -> Refusal | None:
        """Why this rule refuses ``guest`` on ``host`` (None when it does not)."""
        raise NotImplementedError

    def rows(
        self, base: State, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """This rule's constraints over the (kind, host) columns, on top of ``base``."""
        return []


class HostListRule(Rule):
    """pin (the only hosts a guest may use) and avoid (hosts where its start failed)."""

    name = "pin/avoid"

    def fits(self, state: State, guest: PGuest, host: int) -> bool:
        """True when pin and avoid allow ``host``."""
        return guest.ok(host)

    def refusal(self, state: State, guest: PGuest, host: int) -> Refusal | None:
        """'not in pin list' or 'avoided after failed start'."""
        from .model import AVOIDED, NOT_PINNED

        if guest.pinned is not None and host not in guest.pinned:
            names = sorted(state.m.host_name(h) for h in guest.pinned)
            return Refusal("pin", NOT_PINNED, {"allowed_hosts": names})
        if host in guest.avoided:
            return Refusal("avoid", AVOIDED)
        return None


class RamRule(Rule):
    """Free RAM as measured, less the reserve, less what the plan already put there."""

    name = "RAM"

    def fits(self, state: State, guest: PGuest, host: int) -> bool:
        """True when the host's room holds the guest."""
        return state.free_mib[host] >= guest.mem

    def copies(self, state: State, guest: PGuest, host: int) -> int:
        """Guests of this size the room holds."""
        return max(state.free_mib[host], 0) // guest.mem if guest.mem > 0 else NO_LIMIT

    def refusal(self, state: State, guest: PGuest, host: int) -> Refusal | None:
        """'RAM: 900 free < 2048 needed' (never a negative free figure)."""
        room = state.free_mib[host]
        if room >= guest.mem:
            return None
        free_mib = max(room, 0)
        text = f"RAM: {free_mib} free < {guest.mem} needed"
        reserve_mib = state.m.policy.reserve_mib
        measured = state.m.snapshot.hosts[host].free_mib
        if room < 0 and measured < reserve_mib:
            text += f" ({measured} measured free, {reserve_mib} reserved)"
        return Refusal("RAM", text, {"free_mib": free_mib, "needed_mib": guest.mem})

    @staticmethod
    def cannot_hold(need_mib: int, largest_mib: int, room_mib: list[int]) -> bool:
        """True when hosts with these rooms surely cannot hold guests of ``need_mib`` in all
        (the largest ``largest_mib``): a necessary test, for capacity's quick pruning."""
        return need_mib > sum(room_mib) or largest_mib > max(room_mib, default=0)

    def rows(
        self, base: State, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per host: the guests' RAM <= the host's room (in units of the sizes' common divisor)."""
        unit = 0
        for k in kinds:
            unit = math.gcd(unit, k.example.mem)
        unit = unit or 1
        # Small coefficients keep the solver's arithmetic exact and its cuts strong.
        per_host: dict[int, list[tuple[int, int]]] = {}
        for col, (k, h) in enumerate(columns):
            per_host.setdefault(h, []).append((col, kinds[k].example.mem // unit))
        return [Row(terms, max(base.free_mib[h], 0) // unit) for h, terms in per_host.items()]


class VcpuCapRule(Rule):
    """vcpu_ratio x physical CPUs, counting the running domains and the placed guests."""

    name = "vCPU cap"

    def fits(self, state: State, guest: PGuest, host: int) -> bool:
        """True when the host's vCPU cap (if any) takes the guest's vCPUs."""
        cap = state.m.vcap[host]
        return cap is None or state.vcpus_used[host] + guest.vcpus <= cap

    def copies(self, state: State, guest: PGuest, host: int) -> int:
        """Guests of this vCPU count the cap still takes."""
        cap = state.m.vcap[host]
        if cap is None or guest.vcpus <= 0:
            return NO_LIMIT
        return max(math.floor(cap - state.vcpus_used[host] + 1e-9), 0) // guest.vcpus

    def refusal(self, state: State, guest: PGuest, host: int) -> Refusal | None:
        """'vCPU cap: 30 of 32 used, 4 needed'."""
        if self.fits(state, guest, host):
            return None
        cap = state.m.vcap[host]
        assert cap is not None
        used = state.vcpus_used[host]
        text = f"vCPU cap: {used} of {_num(cap)} used, {guest.vcpus} needed"
        return Refusal(
            "vCPU cap", text, {"vcpus_used": used, "vcpu_cap": cap, "needed_vcpus": guest.vcpus}
        )

    @staticmethod
    def cannot_hold(need_vcpus: int, room_vcpus: list[float | None]) -> bool:
        """True when hosts with these vCPU rooms (None: uncapped) cannot take ``need_vcpus``."""
        if not room_vcpus or any(v is None for v in room_vcpus):
            return False
        return need_vcpus > sum(v for v in room_vcpus if v is not None)

    def rows(
        self, base: State, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per capped host: the guests' vCPUs <= the cap less the running domains' vCPUs."""
        per_host: dict[int, list[tuple[int, int]]] = {}
        for col, (k, h) in enumerate(columns):
            if base.m.vcap[h] is not None and kinds[k].example.vcpus > 0:
                per_host.setdefault(h, []).append((col, kinds[k].example.vcpus))
        out = []
        for h, terms in per_host.items():
            cap = base.m.vcap[h]
            assert cap is not None
            out.append(Row(terms, max(math.floor(cap - base.vcpus_used[h] + 1e-9), 0)))
        return out


class AntiAffinityRule(Rule):
    """One anti-affinity class: at most ``limit`` members per host or failure domain."""

    def __init__(self, class_index: int, class_name: str) -> None:
        self.c = class_index
        self.name = f"class {class_name}"

    def applies(self, state: State, guest: PGuest) -> bool:
        """True when the guest is a member and may not break the class (soft mode relaxes)."""
        return self.c in guest.classes and guest.idx not in state.relaxed

    def fits(self, state: State, guest: PGuest, host: int) -> bool:
        """True when the host's unit has room for one more member."""
        if not self.applies(state, guest):
            return True
        cl = state.m.classes[self.c]
        return state.count[self.c][cl.unit_of[host]] < cl.limit

    def copies(self, state: State, guest: PGuest, host: int) -> int:
        """Members the host's unit still takes."""
        if not self.applies(state, guest):
            return NO_LIMIT
        cl = state.m.classes[self.c]
        return max(cl.limit - state.count[self.c][cl.unit_of[host]], 0)

    def refusal(self, state: State, guest: PGuest, host: int) -> Refusal | None:
        """'class lb: lb01 already here'."""
        if self.fits(state, guest, host):
            return None
        cl = state.m.classes[self.c]
        unit = cl.unit_of[host]
        members = state.members_at(self.c, host)
        where = "here" if cl.spread == "host" else f"in {cl.unit_names[unit]}"
        text = f"class {cl.name}: {', '.join(members)} already {where}"
        if cl.limit > 1:
            text += f" (at most {cl.limit} per {cl.spread})"
        data = {"members": members, "unit": cl.unit_names[unit], "limit": cl.limit}
        return Refusal(self.name, text, data)

    def rows(
        self, base: State, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per unit: members placed <= limit less the members already running there."""
        if relaxed:
            return []
        cl = base.m.classes[self.c]
        per_unit: dict[int, list[tuple[int, int]]] = {}
        for col, (k, h) in enumerate(columns):
            if self.c in kinds[k].classes:
                per_unit.setdefault(cl.unit_of[h], []).append((col, 1))
        return [Row(terms, max(cl.limit - len(cl.running[u]), 0)) for u, terms in per_unit.items()]


def rules_of(model: Model) -> list[Rule]:
    """Every rule of ``model``, cheapest test first (greedy asks them in this order)."""
    out: list[Rule] = [RamRule(), HostListRule(), VcpuCapRule()]
    out.extend(AntiAffinityRule(c, cl.name) for c, cl in enumerate(model.classes))
    return out


def solver_rows(
    base: State, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
) -> list[Row]:
    """The exact search's constraints: every rule's rows, on top of ``base``."""
    return [row for rule in base.m.rules for row in rule.rows(base, kinds, columns, relaxed)]
