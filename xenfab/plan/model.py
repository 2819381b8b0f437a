"""The planning problem in plain arrays: which guests to place, on which hosts, under which limits.

Built once from a Snapshot and a Policy; the greedy strategies, the repair moves and the exact
search all read the same model and mutate only a :class:`State`, so they agree on every rule.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from ..cluster.base import GUEST_NAME
from ..errors import ConfigError
from ..snapshot import Guest, Snapshot
from .layout import Skipped, Unplaced
from .policy import Policy, host_matches
from .recall import Recall
from .rules import NO_LIMIT, Refusal, Rule, rules_of

UNREACHABLE = "unreachable"
FAILED = "failed host (what-if)"
DEAD = "dead (declared)"
# Unplaced.kind of guests the model leaves down before any placement.
CANNOT_PLAN = "cannot-plan"
LIVENESS = "liveness-unknown"
EXCLUDED = "excluded"
NOT_PINNED = "not in pin list"
AVOIDED = "avoided after failed start"


@dataclass
class PGuest:
    """A guest to place, with its charged size and the hosts its static rules allow."""

    idx: int
    name: str
    guest: Guest
    mem: int
    vcpus: int
    tier: int
    classes: tuple[int, ...] = ()
    # None = every usable host; otherwise the usable hosts passing pin (before avoid).
    pinned: frozenset[int] | None = None
    avoided: frozenset[int] = frozenset()
    prefer: tuple[int, ...] = ()
    last_owner: int | None = None
    # How the plan names last_owner when it is chosen (--expect: where it ran in the snapshot).
    last_owner_why: str = "last owner"
    order: int = 0
    # The dead (or what-if failed) host the cluster still shows it on, when it is taken over.
    takeover_from: str | None = None

    def ok(self, h: int) -> bool:
        """True when pin and avoid allow usable host ``h``."""
        return (self.pinned is None or h in self.pinned) and h not in self.avoided


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


@dataclass
class Model:
    """Hosts, guests and limits of one planning problem."""

    snapshot: Snapshot
    policy: Policy
    status: list[str | None]  # host index -> None when usable, else why not
    usable: list[int]
    cap: list[int]  # RAM a host can still take: measured free - reserve
    vcap: list[float | None]
    vused0: list[int]
    size: list[int]
    rank: list[int]  # host index -> position in name order (stable tie-break)
    guests: list[PGuest] = field(default_factory=list)
    classes: list[AClass] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Down guests of ours left down before placement (facts unusable, liveness unknown).
    unplaced: list[Unplaced] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    _rules: list[Rule] | None = field(default=None, repr=False)

    @property
    def rules(self) -> list[Rule]:
        """Every placement rule of this model (built once the classes are resolved)."""
        if self._rules is None:
            self._rules = rules_of(self)
        return self._rules

    def host_name(self, h: int) -> str:
        """The name of host index ``h``."""
        return self.snapshot.hosts[h].name

    def weights(self) -> dict[int, int]:
        """Tier -> weight such that one guest of a tier outweighs all guests of later tiers."""
        tiers = sorted({g.tier for g in self.guests}, reverse=True)
        out: dict[int, int] = {}
        below = 0  # total weight of every guest in less important tiers
        for t in tiers:
            out[t] = below + 1
            below += out[t] * sum(1 for g in self.guests if g.tier == t)
        return out


class State:
    """Mutable placement state: remaining RAM/vCPU per host and class members per unit."""

    __slots__ = ("m", "free_mib", "vcpus_used", "count", "where", "relaxed")

    def __init__(self, m: Model) -> None:
        self.m = m
        self.free_mib = list(m.cap)
        self.vcpus_used = list(m.vused0)
        self.count = [[len(r) for r in c.running] for c in m.classes]
        self.where: list[int | None] = [None] * len(m.guests)
        self.relaxed: set[int] = set()

    def copy(self) -> State:
        """An independent copy."""
        s = State.__new__(State)
        s.m = self.m
        s.free_mib = list(self.free_mib)
        s.vcpus_used = list(self.vcpus_used)
        s.count = [list(c) for c in self.count]
        s.where = list(self.where)
        s.relaxed = set(self.relaxed)
        return s

    def fits(self, g: PGuest, h: int) -> bool:
        """True when guest ``g`` may go on usable host ``h`` now (every rule)."""
        return all(rule.fits(self, g, h) for rule in self.m.rules)

    def max_copies(self, g: PGuest, h: int) -> int:
        """How many guests like ``g`` usable host ``h`` could still take (every rule)."""
        return min(min(rule.copies(self, g, h) for rule in self.m.rules), NO_LIMIT)

    def refusals(self, g: PGuest, h: int) -> list[Refusal]:
        """Every rule that refuses ``g`` on usable host ``h`` now, with its figures."""
        out = []
        for rule in self.m.rules:
            r = rule.refusal(self, g, h)
            if r is not None:
                out.append(r)
        return out

    def breaks_class(self, g: PGuest, h: int) -> list[int]:
        """The classes ``g`` would break on ``h`` (used to explain a soft violation)."""
        out = []
        for c in g.classes:
            cl = self.m.classes[c]
            if self.count[c][cl.unit_of[h]] >= cl.limit:
                out.append(c)
        return out

    def place(self, g: PGuest, h: int) -> None:
        """Charge ``g`` to ``h``."""
        self.free_mib[h] -= g.mem
        self.vcpus_used[h] += g.vcpus
        for c in g.classes:
            self.count[c][self.m.classes[c].unit_of[h]] += 1
        self.where[g.idx] = h

    def remove(self, g: PGuest) -> int:
        """Take ``g`` off its host and return that host."""
        h = self.where[g.idx]
        assert h is not None
        self.free_mib[h] += g.mem
        self.vcpus_used[h] -= g.vcpus
        for c in g.classes:
            self.count[c][self.m.classes[c].unit_of[h]] -= 1
        self.where[g.idx] = None
        return h

    def members_at(self, c: int, h: int) -> list[str]:
        """Names of class ``c`` members on the unit of host ``h`` (running and planned)."""
        cl = self.m.classes[c]
        u = cl.unit_of[h]
        names = list(cl.running[u])
        for g in self.m.guests:
            w = self.where[g.idx]
            if w is not None and c in g.classes and cl.unit_of[w] == u:
                names.append(g.name)
        return sorted(names)


def build_model(
    snapshot: Snapshot,
    policy: Policy,
    without: Iterable[str] = (),
    avoid: Mapping[str, Collection[str]] | None = None,
    *,
    dead: Iterable[str] = (),
) -> Model:
    """Resolve snapshot + policy into a Model: usable hosts, guests to place, class limits."""
    hosts = snapshot.hosts
    names = [h.name for h in hosts]
    without = list(dict.fromkeys(without))
    dead = list(dict.fromkeys(dead))
    for opt, given in (("without", without), ("dead", dead)):
        for w in given:
            if w not in names:
                raise ConfigError(f"{opt}: {w!r} is not a host of this snapshot")
    _check_patterns(policy, names)
    failed = set(without)
    declared = set(dead) - failed
    warnings: list[str] = []

    status: list[str | None] = []
    for h in hosts:
        if h.name in failed:
            status.append(FAILED)
        elif h.name in declared:
            status.append(DEAD)
        elif not h.reachable:
            status.append(UNREACHABLE)
        elif host_matches(h.name, policy.exclude):
            status.append(EXCLUDED)
        else:
            status.append(None)
    usable = [i for i, s in enumerate(status) if s is None]
    ratio = policy.vcpu_ratio
    vcap: list[float | None] = []
    for i, h in enumerate(hosts):
        if ratio is None:
            vcap.append(None)
        elif h.cpus <= 0:
            # Unknown CPU count: a cap of 0 would refuse everything on a host that may be fine.
            vcap.append(None)
            if status[i] is None:
                warnings.append(f"{h.name}: CPU count unknown, vCPU cap not applied")
        else:
            vcap.append(ratio * h.cpus)
    by_name = sorted(range(len(hosts)), key=lambda i: names[i])
    rank = [0] * len(hosts)
    for r, i in enumerate(by_name):
        rank[i] = r
    cap = [h.free_mib - policy.reserve_mib for h in hosts]
    m = Model(
        snapshot=snapshot,
        policy=policy,
        status=status,
        usable=usable,
        cap=cap,
        vcap=vcap,
        vused0=[h.vcpus_used for h in hosts],
        size=[max(h.total_mib, h.free_mib, 1) for h in hosts],
        rank=rank,
        warnings=warnings,
        without=without,
        dead=[d for d in dead if d in declared],
    )
    _select_guests(m, failed | declared, avoid or {})
    _resolve_classes(m, failed | declared)
    return m


def _check_patterns(policy: Policy, names: list[str]) -> None:
    """A host pattern of exclude, pin or prefer that matches no host is a typo: refuse it.

    A typo in `exclude` would send guests to the host meant to be in maintenance.
    """
    for key, patterns in (
        ("exclude", list(policy.exclude)),
        ("pin", [p for hs in policy.pin.values() for p in hs]),
        ("prefer", [p for hs in policy.prefer.values() for p in hs]),
    ):
        for pattern in dict.fromkeys(patterns):
            if not any(host_matches(n, [pattern]) for n in names):
                raise ConfigError(f"{key}: {pattern!r} matches no host of this snapshot")


def _select_guests(m: Model, gone: set[str], avoid: Mapping[str, Collection[str]]) -> None:
    """Sort every guest into placed-to-be (m.guests), still down (m.unplaced) or skipped.

    ``gone``: hosts failed (what-if) or declared dead; what the cluster shows on them is lost.
    """
    snap, policy = m.snapshot, m.policy
    states = snap.states
    expect = policy.expect  # --expect: plan.expect.Expectation, or None
    # What the history remembers of the --dead hosts (plan.recall.Recall); None: nothing.
    recall = policy.recall if policy.recall is not None else _NOTHING_RECALLED
    dead = set(m.dead)
    forgotten = recall.forgotten(dead) if states.unclaimed else []
    if dead and states.unclaimed:
        m.warnings.extend(recall.warnings(dead))
    hosts = snap.hosts
    index = {h.name: i for i, h in enumerate(hosts)}
    # Domains seen in xl list on live hosts: a guest found there must never be started again.
    seen: dict[str, list[str]] = {}
    for h in hosts:
        if h.reachable and h.name not in gone:
            for d in h.domains:
                seen.setdefault(d.name, []).append(h.name)
    managed = {g.name for g in snap.guests}
    for w in [*m.without, *m.dead]:
        doms = hosts[index[w]].domains
        others = sorted(d.name for d in doms if d.name != "Domain-0" and d.name not in managed)
        if others:
            what = f"what-if: {w} also runs" if w in m.without else f"{w} (declared dead) ran"
            m.warnings.append(f"{what} {', '.join(others)} (not cluster services): not replanned")
    usable = set(m.usable)
    pin_sets: dict[tuple, frozenset[int]] = {}
    prefer_lists: dict[tuple, tuple[int, ...]] = {}
    by_rank = sorted(usable, key=lambda i: m.rank[i])
    entries_of = Counter(g.name for g in snap.guests)
    names_seen: set[str] = set()
    for g in snap.guests:
        if g.name in names_seen:
            continue  # reported with its first entry
        names_seen.add(g.name)
        kind = states.kind(g.state)
        if expect is not None:
            kind = expect.kind_of(g, kind, states)
        if dead and g.state in states.unclaimed and kind != "down":
            # A dead host cannot say what it linked or ran; its last answer in the history can.
            if recall.claim(g.name, dead) is not None:
                kind = "down"
            elif forgotten and expect is None:
                reason = recall.unknown_reason(forgotten)
                m.unplaced.append(_still_down(g, policy, LIVENESS, reason))
                continue
        owner = hosts[index[g.owner]] if g.owner in index else None
        takeover: str | None = None
        if kind in ("running", "transition") and owner is not None:
            if owner.name in gone:
                takeover = owner.name
            elif not owner.reachable and owner.member == "offline" and snap.quorate is True:
                # A quorate cluster's word that the member is gone is proof; a timeout is not
                # (nor an inquorate node's view, which may be the partitioned side).
                takeover = owner.name
            elif not owner.reachable:
                m.unplaced.append(_still_down(g, policy, LIVENESS, _liveness_reason(owner.name)))
                continue
        if takeover is None and kind != "down":
            if g.state in states.unclaimed:
                if expect is not None:
                    m.skipped.append(Skipped(g.name, g.state, expect.not_brought_back(g) or ""))
                    continue
                # Claimed by no host that answered: one that did not may claim it (and run it).
                blind = [h.name for h in hosts if not h.reachable and h.name not in gone]
                if blind:
                    m.unplaced.append(_still_down(g, policy, LIVENESS, _unclaimed_reason(blind)))
                    continue
            why = _skip_reason(g, kind)
            if dead and g.state in states.unclaimed:
                remembered = [recall.hosts[h] for h in sorted(dead) if h in recall.hosts]
                why += "".join(
                    f"; {r.host} neither ran nor linked it in {r.label}" for r in remembered
                )
            m.skipped.append(Skipped(g.name, g.state, why))
            continue
        running = [h for h in dict.fromkeys([*g.running_on, *seen.get(g.name, [])])]
        running = [h for h in running if h not in gone]
        if running:
            m.skipped.append(Skipped(g.name, g.state, f"domain running on {', '.join(running)}"))
            continue
        if kind == "down" and takeover is None and expect is not None:
            skip = expect.not_brought_back(g)
            if skip:
                m.skipped.append(Skipped(g.name, g.state, skip))
                continue
        if kind == "down" and takeover is None and not states.owners_tracked:
            # No manager records where a guest runs: any host that did not answer may run it.
            blind = [h.name for h in hosts if not h.reachable and h.name not in gone]
            if blind:
                m.unplaced.append(_still_down(g, policy, LIVENESS, _blind_reason(blind)))
                continue
        why_not = _cannot_plan(g, entries_of[g.name])
        if why_not:
            m.unplaced.append(_still_down(g, policy, CANNOT_PLAN, why_not))
            continue
        pinned: frozenset[int] | None = None
        entries = policy.pin_entries(g.name)
        if entries:
            key = tuple(tuple(e) for e in entries)
            if key not in pin_sets:  # guests matched by the same pin entries share the set
                pin_sets[key] = frozenset(
                    i for i in usable if all(host_matches(hosts[i].name, e) for e in entries)
                )
            pinned = pin_sets[key]
        avoided = frozenset(index[n] for n in avoid.get(g.name, ()) if n in index)
        wanted = tuple(policy.preferred_hosts(g.name))
        if wanted not in prefer_lists:
            prefer: list[int] = []
            for p in wanted:
                for i in by_rank:
                    if host_matches(hosts[i].name, [p]) and i not in prefer:
                        prefer.append(i)
            prefer_lists[wanted] = tuple(prefer)
        last_host, last_why = g.last_owner, "last owner"
        if expect is not None and expect.host_of(g.name) is not None:
            last_host, last_why = expect.host_of(g.name), f"ran here in {expect.source}"
        last = index.get(last_host or "") if policy.prefer_last_owner else None
        m.guests.append(
            PGuest(
                idx=len(m.guests),
                name=g.name,
                guest=g,
                mem=g.memory_mib + policy.overhead_mib,
                vcpus=max(g.vcpus, 0),
                tier=policy.tier_of(g.name),
                pinned=pinned,
                avoided=avoided,
                prefer=prefer_lists[wanted],
                last_owner=last if last is not None and last in usable else None,
                last_owner_why=last_why,
                takeover_from=takeover,
            )
        )
    if dead and states.unclaimed:
        # Linked then by a dead host, with no guest entry now (its config unreadable or gone):
        # its xendomains would have started it, so it is down and ours, and cannot be planned.
        for name, reason in recall.missing(dead, names_seen, seen):
            m.unplaced.append(Unplaced(name, 0, reason, {}, policy.tier_of(name), 0, CANNOT_PLAN))
    if expect is not None:
        for name, ran in expect.missing(names_seen, seen):
            reason = expect.no_config_reason(ran)
            tier = policy.tier_of(name)
            m.unplaced.append(
                Unplaced(name, ran.memory_mib, reason, {}, tier, ran.vcpus, CANNOT_PLAN)
            )
    m.unplaced.sort(key=lambda u: (u.tier, u.guest))


def _cannot_plan(g: Guest, entries: int) -> str | None:
    """Why a down guest of ours cannot be planned at all, or None when it can."""
    if entries > 1:
        # Two entries for one guest would mean two starts of one domain: never.
        return f"{entries} entries for {g.name} in the snapshot"
    if not g.plannable:
        return g.reason or "cannot be planned (no reason recorded)"
    if not GUEST_NAME.match(g.name):
        # Text from a host, kept raw in data (no repr): display escapes it (textsafe.printable).
        return f"name '{g.name}' has characters xenfab will not send to a shell"
    if g.memory_mib <= 0:
        where = f" ({g.config_file})" if g.config_file else ""
        return f"memory size unknown{where}"
    return None


_NOTHING_RECALLED = Recall()


def _still_down(g: Guest, policy: Policy, kind: str, reason: str) -> Unplaced:
    return Unplaced(
        g.name, max(g.memory_mib, 0), reason, {}, policy.tier_of(g.name), max(g.vcpus, 0), kind
    )


def _liveness_reason(owner: str) -> str:
    return (
        f"owner {owner} unreachable, liveness unknown: fence or power off {owner}, "
        f"or declare it dead: --dead {owner}"
    )


def _blind_reason(hosts: list[str]) -> str:
    dead = " ".join(f"--dead {h}" for h in hosts)
    return (
        f"{', '.join(hosts)} unreachable and no cluster manager says where it runs: liveness "
        f"unknown; fence or power off, or declare dead: {dead}"
    )


def _unclaimed_reason(hosts: list[str]) -> str:
    dead = " ".join(f"--dead {h}" for h in hosts)
    return (
        f"claimed by no host that answered, but {', '.join(hosts)} did not: its autostart may "
        f"claim it and its domain list may show it, liveness unknown; fence or power off, or "
        f"declare dead ({dead}): then it is not ours, as far as anyone can tell"
    )


def _skip_reason(g: Guest, kind: str) -> str:
    where = g.owner or "an unknown host"
    if kind == "running":
        return f"already {g.state} on {where}"
    if kind in ("running", "transition"):
        return f"{g.state} on {where}"
    if g.reason:
        return f"state {g.state}: {g.reason}"
    return f"state {g.state}: not a down state of the cluster manager"


def _resolve_classes(m: Model, failed: set[str]) -> None:
    hosts = m.snapshot.hosts
    usable = set(m.usable)
    to_place = {g.name: g for g in m.guests}
    occupying = m.snapshot.states.occupying
    # Members already running, per host: xl list names plus rgmanager's started owner.
    on_host: list[set[str]] = [set() for _ in hosts]
    index = {h.name: i for i, h in enumerate(hosts)}
    for i, h in enumerate(hosts):
        if h.reachable and h.name not in failed:
            on_host[i].update(d.name for d in h.domains if d.name != "Domain-0")
    for g in m.snapshot.guests:
        if g.name in to_place:
            continue
        for where in [g.owner if g.state in occupying else None, *g.running_on]:
            i = index.get(where or "")
            if i is not None and hosts[i].reachable and hosts[i].name not in failed:
                on_host[i].add(g.name)
    for name, spec in m.policy.anti_affinity.items():
        unit_names: list[str] = []
        unit_index: dict[str, int] = {}
        unit_of: list[int] = []
        missing = []
        for h in hosts:
            key = h.name
            if spec.spread == "domain":
                if h.domain:
                    key = h.domain
                elif index[h.name] in usable:
                    missing.append(h.name)
            if key not in unit_index:
                unit_index[key] = len(unit_names)
                unit_names.append(key)
            unit_of.append(unit_index[key])
        if missing:
            m.warnings.append(
                f"class {name}: spread domain but {', '.join(missing)} has no failure domain; "
                "each counts as its own"
            )
        usable_units = {unit_of[i] for i in usable}
        running: list[list[str]] = [[] for _ in unit_names]
        for i in range(len(hosts)):
            for gname in sorted(on_host[i]):
                if spec.matches(gname) and gname not in running[unit_of[i]]:
                    running[unit_of[i]].append(gname)
        c = len(m.classes)
        members = 0
        for g in m.guests:
            if spec.matches(g.name):
                g.classes = (*g.classes, c)
                members += 1
        members += sum(len(running[u]) for u in usable_units)
        units = len(usable_units)
        what = "failure domains" if spec.spread == "domain" else "usable hosts"
        per = "domain" if spec.spread == "domain" else "host"
        hard = m.policy.anti_affinity_mode == "hard"
        # Hard means hard: one member per unit, whatever the count; the members that find no
        # unit stay down (with the hint). Soft mode spreads them ceil(members/units) per unit.
        limit = 1 if hard or members <= units or units == 0 else math.ceil(members / units)
        if members > units > 0:
            if hard:
                m.warnings.append(
                    f"class {name}: {members} members but {units} {what}: "
                    f"{members - units} stay down (anti_affinity_mode: soft lets them share)"
                )
            else:
                m.warnings.append(
                    f"class {name}: {members} members but {units} {what}: at most {limit} per {per}"
                )
        for u in sorted(usable_units):
            if len(running[u]) > limit:
                m.warnings.append(
                    f"class {name}: {', '.join(running[u])} already share {unit_names[u]}"
                )
        m.classes.append(
            AClass(
                name=name,
                spread=spec.spread,
                limit=limit,
                unit_of=unit_of,
                unit_names=unit_names,
                running=running,
                members=members,
                usable_units=units,
            )
        )
