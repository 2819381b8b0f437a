"""Anti-affinity (``policy.anti_affinity``): a class's members share no host or failure domain.

One rule object per class. ``anti_affinity_mode: soft`` relaxes a class for the guests that would
otherwise stay down (``state.relaxed``); the rule still counts them, and says where it was broken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from .base import NO_LIMIT, GuestView, Kind, ModelView, Refusal, Row, Rule, StateView, ref


@dataclass
class AClass:
    """An anti-affinity class resolved against the snapshot."""

    name: str
    spread: str
    limit: int
    unit_of: list[int]  # host index -> unit index (host or failure domain)
    unit_names: list[str]
    running: list[list[str]]  # unit index -> members already running there
    members: int = 0  # members to place plus members running on usable units
    usable_units: int = 0


class AntiAffinityRule(Rule):
    """One anti-affinity class: at most ``limit`` members per host or failure domain."""

    name: ClassVar[str] = "class"
    policy_field: ClassVar[str | None] = "anti_affinity"
    counts: ClassVar[bool] = True
    order: ClassVar[int] = 40

    def __init__(self, class_index: int, resolved: AClass, hard: bool = True) -> None:
        self.class_index = class_index
        self.cls = resolved
        self.hard = hard  # anti_affinity_mode: hard (soft: broken rather than leave one down)

    def label(self) -> str:
        """'class <name>'."""
        return f"class {self.cls.name}"

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """One rule per class of the policy; marks each guest to place with its classes."""
        hard = model.policy.anti_affinity_mode == "hard"
        rules: list[Rule] = []
        for name in model.policy.anti_affinity:
            rules.append(cls(len(rules), _resolve(model, name), hard))
        return rules

    def start(self) -> list[int]:
        """Members per unit before the plan: those running there."""
        return [len(names) for names in self.cls.running]

    def charge(self, counters: list[int], guest: GuestView, host: int, sign: int) -> None:
        """A member joins (or leaves) the host's unit."""
        if self.class_index in guest.classes:
            counters[self.cls.unit_of[host]] += sign

    def applies(self, state: StateView, guest: GuestView) -> bool:
        """True when the guest is a member and may not break the class (soft mode relaxes)."""
        return self.class_index in guest.classes and guest.idx not in state.relaxed

    def full(self, state: StateView, host: int) -> bool:
        """True when the host's unit already holds as many members as the class allows."""
        return state.counter(self)[self.cls.unit_of[host]] >= self.cls.limit

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when the host's unit has room for one more member."""
        return not self.applies(state, guest) or not self.full(state, host)

    def copies(self, state: StateView, guest: GuestView, host: int) -> int:
        """Members the host's unit still takes."""
        if not self.applies(state, guest):
            return NO_LIMIT
        return max(self.cls.limit - state.counter(self)[self.cls.unit_of[host]], 0)

    def members_at(self, state: StateView, host: int) -> list[str]:
        """Names of the members on the unit of ``host`` (running and planned)."""
        unit = self.cls.unit_of[host]
        names = list(self.cls.running[unit])
        for guest in state.model.guests:
            at = state.where[guest.idx]
            if (
                at is not None
                and self.class_index in guest.classes
                and self.cls.unit_of[at] == unit
            ):
                names.append(guest.name)
        return sorted(names)

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """'class lb: lb01 already here'."""
        if self.fits(state, guest, host):
            return None
        cl = self.cls
        unit = cl.unit_names[cl.unit_of[host]]
        members = self.members_at(state, host)
        where = "here" if cl.spread == "host" else f"in {unit}"
        text = f"class {cl.name}: {', '.join(members)} already {where}"
        if cl.limit > 1:
            text += f" (at most {cl.limit} per {cl.spread})"
        return ref(self, text, members=members, unit=unit, limit=cl.limit)

    def breaks(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when placing the member ``guest`` on ``host`` goes beyond the class's limit."""
        return self.class_index in guest.classes and self.full(state, host)

    def soft_text(self, state: StateView, host: int) -> str:
        """'class web shares xen01 with web01' (a soft violation, before the guest is charged)."""
        where = self.cls.unit_names[self.cls.unit_of[host]]
        members = ", ".join(self.members_at(state, host))
        return f"class {self.cls.name} shares {where} with {members}"

    def down_hint(self, guest: GuestView, refused_somewhere: bool) -> str | None:
        """A hard class with more members than units keeps ``guest`` down: why, and the way out."""
        cl = self.cls
        if not self.hard or self.class_index not in guest.classes or cl.members <= cl.usable_units:
            return None
        # The class cannot hold every member: a member it refuses somewhere is one of those it
        # keeps down (which ones is the search's choice; the count is the class's).
        if not refused_somewhere:
            return None
        what = "failure domain" if cl.spread == "domain" else "usable host"
        if cl.usable_units != 1:
            what += "s"
        return (
            f"class {cl.name}: {cl.members} members, {cl.usable_units} {what}: "
            f"{guest.name} stays down; anti_affinity_mode: soft lets it share"
        )

    def host_key(self, state: StateView, host: int) -> int:
        """Members on the host's unit."""
        return state.counter(self)[self.cls.unit_of[host]]

    def kind_key(self, guest: GuestView, relaxed: bool) -> bool:
        """Whether the guest is a member (no one is, when the classes are relaxed)."""
        return not relaxed and self.class_index in guest.classes

    def rows(
        self, base: StateView, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per unit: members placed <= limit less the members already running there."""
        if relaxed:
            return []
        cl = self.cls
        per_unit: dict[int, list[tuple[int, int]]] = {}
        for col, (kind, host) in enumerate(columns):
            if self.class_index in kinds[kind].example.classes:
                per_unit.setdefault(cl.unit_of[host], []).append((col, 1))
        return [Row(terms, max(cl.limit - len(cl.running[u]), 0)) for u, terms in per_unit.items()]


def _resolve(model: ModelView, name: str) -> AClass:
    """Class ``name`` against the snapshot: its units, members running, limit (and warnings)."""
    spec = model.policy.anti_affinity[name]
    policy = model.policy
    hosts = model.snapshot.hosts
    usable = set(model.usable)
    on_host = model.running_names()
    class_index = list(policy.anti_affinity).index(name)
    unit_names: list[str] = []
    unit_index: dict[str, int] = {}
    unit_of: list[int] = []
    missing = []
    for index, host in enumerate(hosts):
        key = host.name
        if spec.spread == "domain":
            if host.domain:
                key = host.domain
            elif index in usable:
                missing.append(host.name)
        if key not in unit_index:
            unit_index[key] = len(unit_names)
            unit_names.append(key)
        unit_of.append(unit_index[key])
    if missing:
        model.warnings.append(
            f"class {name}: spread domain but {', '.join(missing)} has no failure domain; "
            "each counts as its own"
        )
    usable_units = {unit_of[i] for i in usable}
    running: list[list[str]] = [[] for _ in unit_names]
    for index in range(len(hosts)):
        for guest_name in sorted(on_host[index]):
            if spec.matches(guest_name) and guest_name not in running[unit_of[index]]:
                running[unit_of[index]].append(guest_name)
    members = 0
    for guest in model.guests:
        if spec.matches(guest.name):
            guest.classes = (*guest.classes, class_index)
            members += 1
    members += sum(len(running[u]) for u in usable_units)
    units = len(usable_units)
    what = "failure domains" if spec.spread == "domain" else "usable hosts"
    per = "domain" if spec.spread == "domain" else "host"
    hard = policy.anti_affinity_mode == "hard"
    # Hard means hard: one member per unit, whatever the count; the members that find no unit
    # stay down (with the hint). Soft mode spreads them ceil(members/units) per unit.
    limit = 1 if hard or members <= units or units == 0 else math.ceil(members / units)
    if members > units > 0:
        if hard:
            model.warnings.append(
                f"class {name}: {members} members but {units} {what}: "
                f"{members - units} stay down (anti_affinity_mode: soft lets them share)"
            )
        else:
            model.warnings.append(
                f"class {name}: {members} members but {units} {what}: at most {limit} per {per}"
            )
    for unit in sorted(usable_units):
        if len(running[unit]) > limit:
            model.warnings.append(
                f"class {name}: {', '.join(running[unit])} already share {unit_names[unit]}"
            )
    return AClass(name, spec.spread, limit, unit_of, unit_names, running, members, units)
