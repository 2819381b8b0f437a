"""The planning problem in plain arrays: which guests to place, on which hosts, under which limits.

Built once from a Snapshot and a Policy; the greedy strategies, the repair moves and the exact
search all read the same model and mutate only a :class:`State`, so they agree on every rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..cluster.base import GUEST_NAME
from ..duplicates import describe as describe_duplicate
from ..duplicates import find_duplicates
from ..errors import ConfigError
from ..snapshot import Guest, Snapshot
from .layout import Skipped, Unplaced
from .policy import Policy, host_matches
from .recall import Recall
from .rules import NO_LIMIT, Refusal, Rule, rules_of
from .rules.anti_affinity import AClass, AntiAffinityRule
from .rules.ram import RamRule
from .rules.vcpu import VcpuCapRule

UNREACHABLE = "unreachable"
FAILED = "failed host (what-if)"
DEAD = "dead (declared)"
# Unplaced.kind of guests the model leaves down before any placement.
CANNOT_PLAN = "cannot-plan"
LIVENESS = "liveness-unknown"
EXCLUDED = "excluded"


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
    # Host index -> why its manager refuses it there (snapshot Guest.refused_hosts; in avoided).
    refused: Mapping[int, str] = field(default_factory=dict)
    prefer: tuple[int, ...] = ()
    last_owner: int | None = None
    # How the plan names last_owner when it is chosen (--expect: where it ran in the snapshot).
    last_owner_why: str = "last owner"
    # The last owner even when it is not usable (dead, unreachable, excluded): explain says so.
    last_seen: int | None = None
    order: int = 0
    # The dead (or what-if failed) host the cluster still shows it on, when it is taken over.
    takeover_from: str | None = None

    def ok(self, host: int) -> bool:
        """True when pin and avoid allow usable host ``host``."""
        return (self.pinned is None or host in self.pinned) and host not in self.avoided


@dataclass
class Model:
    """Hosts, guests and rules of one planning problem; the limits live in the rules."""

    snapshot: Snapshot
    policy: Policy
    status: list[str | None]  # host index -> None when usable, else why not
    usable: list[int]
    total_mib: list[int]  # host index -> its RAM size (for the balanced strategy's share)
    rank: list[int]  # host index -> position in name order (stable tie-break)
    gone: set[str] = field(default_factory=set)  # hosts failed (what-if) or declared dead
    guests: list[PGuest] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Down guests of ours left down before placement (facts unusable, liveness unknown).
    unplaced: list[Unplaced] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    _running: list[set[str]] | None = field(default=None, repr=False)
    _vcpu: VcpuCapRule | None = field(default=None, repr=False)

    @property
    def ram(self) -> RamRule:
        """The RAM rule (always rule 0): the strategies index hosts by its room."""
        rule = self.rules[0]
        assert isinstance(rule, RamRule)
        return rule

    @property
    def vcpu(self) -> VcpuCapRule:
        """The vCPU rule (always built: the layout reports every host's vCPUs)."""
        if self._vcpu is None:
            self._vcpu = next(r for r in self.rules if isinstance(r, VcpuCapRule))
        return self._vcpu

    @property
    def classes(self) -> list[AClass]:
        """The anti-affinity classes, resolved (index = the class index in ``PGuest.classes``)."""
        return [r.cls for r in self.rules if isinstance(r, AntiAffinityRule)]

    def host_name(self, host: int) -> str:
        """The name of host index ``host``."""
        return self.snapshot.hosts[host].name

    def running_names(self) -> list[set[str]]:
        """Per host index: the guests running there now, not ours to place.

        Domains in ``xl list`` (dom0 aside) plus the guests the cluster shows occupying the
        host, on hosts that answered and are not failed or dead.
        """
        if self._running is not None:
            return self._running
        hosts = self.snapshot.hosts
        to_place = {g.name for g in self.guests}
        occupying = self.snapshot.states.occupying
        on_host: list[set[str]] = [set() for _ in hosts]
        index = {h.name: i for i, h in enumerate(hosts)}
        for i, h in enumerate(hosts):
            if h.reachable and h.name not in self.gone:
                on_host[i].update(d.name for d in h.domains if d.name != "Domain-0")
        for g in self.snapshot.guests:
            if g.name in to_place:
                continue
            for where in [g.owner if g.state in occupying else None, *g.running_on]:
                i = index.get(where or "")
                if i is not None and hosts[i].reachable and hosts[i].name not in self.gone:
                    on_host[i].add(g.name)
        self._running = on_host
        return on_host

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
    """Mutable placement state: every rule's counters, and where each guest is."""

    __slots__ = ("model", "counters", "room_mib", "where", "relaxed", "_charged")

    def __init__(self, model: Model) -> None:
        self.model = model
        self.counters = [rule.start() for rule in model.rules]
        # The RAM rule's counters, named: the strategies read them at every step.
        self.room_mib: list[int] = self.counters[0]
        self.where: list[int | None] = [None] * len(model.guests)
        self.relaxed: set[int] = set()
        self._charged = [r for r in model.rules if r.counts]

    def copy(self) -> State:
        """An independent copy."""
        s = State.__new__(State)
        s.model = self.model
        s.counters = [rule.copy(c) for rule, c in zip(self.model.rules, self.counters, strict=True)]
        s.room_mib = s.counters[0]
        s.where = list(self.where)
        s.relaxed = set(self.relaxed)
        s._charged = self._charged
        return s

    def counter(self, rule: Rule) -> Any:
        """``rule``'s counters in this state."""
        return self.counters[rule.index]

    def fits(self, guest: PGuest, host: int) -> bool:
        """True when ``guest`` may go on usable ``host`` now (every rule)."""
        # A plain loop: greedy asks this for every candidate host, and a generator costs more.
        for rule in self.model.rules:  # noqa: SIM110
            if not rule.fits(self, guest, host):
                return False
        return True

    def max_copies(self, guest: PGuest, host: int) -> int:
        """How many guests like ``guest`` usable ``host`` could still take (every rule)."""
        return min(min(rule.copies(self, guest, host) for rule in self.model.rules), NO_LIMIT)

    def refusals(self, guest: PGuest, host: int) -> list[Refusal]:
        """Every rule that refuses ``guest`` on usable ``host`` now, with its figures."""
        out = []
        for rule in self.model.rules:
            refusal = rule.refusal(self, guest, host)
            if refusal is not None:
                out.append(refusal)
        return out

    def placed_text(self, guest: PGuest, host: int) -> str:
        """Why ``guest`` fits ``host``, before it is charged: every rule that has a say."""
        texts = (rule.placed_text(self, guest, host) for rule in self.model.rules)
        return ", ".join(t for t in texts if t)

    def breaks_class(self, guest: PGuest, host: int) -> list[Rule]:
        """The relaxed rules ``guest`` would break on ``host`` (to explain a soft violation)."""
        return [rule for rule in self.model.rules if rule.breaks(self, guest, host)]

    def host_signature(self, host: int) -> tuple:
        """What every rule's counters say of ``host``: equal signatures, interchangeable now."""
        return tuple(rule.host_key(self, host) for rule in self._charged)

    def place(self, guest: PGuest, host: int) -> None:
        """Charge ``guest`` to ``host``."""
        for rule in self._charged:
            rule.charge(self.counters[rule.index], guest, host, 1)
        self.where[guest.idx] = host

    def remove(self, guest: PGuest) -> int:
        """Take ``guest`` off its host and return that host."""
        host = self.where[guest.idx]
        assert host is not None
        for rule in self._charged:
            rule.charge(self.counters[rule.index], guest, host, -1)
        self.where[guest.idx] = None
        return host


def build_model(
    snapshot: Snapshot,
    policy: Policy,
    without: Iterable[str] = (),
    avoid: Mapping[str, Collection[str]] | None = None,
    *,
    dead: Iterable[str] = (),
) -> Model:
    """Resolve snapshot + policy into a Model: usable hosts, guests to place, their rules."""
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
        elif host_matches(h.name, policy.exclude) or h.disabled:
            # h.disabled: the cluster manager's own maintenance mode (an XAPI host disabled).
            status.append(EXCLUDED)
        else:
            status.append(None)
    usable = [i for i, s in enumerate(status) if s is None]
    by_name = sorted(range(len(hosts)), key=lambda i: names[i])
    rank = [0] * len(hosts)
    for r, i in enumerate(by_name):
        rank[i] = r
    model = Model(
        snapshot=snapshot,
        policy=policy,
        status=status,
        usable=usable,
        total_mib=[max(h.total_mib, h.free_mib, 1) for h in hosts],
        rank=rank,
        gone=failed | declared,
        warnings=warnings,
        without=without,
        dead=[d for d in dead if d in declared],
    )
    _select_guests(model, failed | declared, avoid or {})
    # The rules last: they read the guests to place (members, pins) and what runs where.
    model.rules = rules_of(model)
    return model


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


def _select_guests(model: Model, gone: set[str], avoid: Mapping[str, Collection[str]]) -> None:
    """Sort every guest into placed-to-be (model.guests), still down (model.unplaced) or skipped.

    ``gone``: hosts failed (what-if) or declared dead; what the cluster shows on them is lost.
    """
    snap, policy = model.snapshot, model.policy
    states = snap.states
    expect = policy.expect  # --expect: plan.expect.Expectation, or None
    # What the history remembers of the --dead hosts (plan.recall.Recall); None: nothing.
    recall = policy.recall if policy.recall is not None else _NOTHING_RECALLED
    dead = set(model.dead)
    forgotten = recall.forgotten(dead) if states.unclaimed else []
    if dead and states.unclaimed:
        model.warnings.extend(recall.warnings(dead))
    hosts = snap.hosts
    index = {h.name: i for i, h in enumerate(hosts)}
    # Domains seen in xl list on live hosts: a guest found there must never be started again.
    seen: dict[str, list[str]] = {}
    for h in hosts:
        if h.reachable and h.name not in gone:
            for d in h.domains:
                seen.setdefault(d.name, []).append(h.name)
    managed = {g.name for g in snap.guests}
    for w in [*model.without, *model.dead]:
        doms = hosts[index[w]].domains
        others = sorted(d.name for d in doms if d.name != "Domain-0" and d.name not in managed)
        if others:
            what = f"what-if: {w} also runs" if w in model.without else f"{w} (declared dead) ran"
            model.warnings.append(
                f"{what} {', '.join(others)} (not cluster services): not replanned"
            )
    usable = set(model.usable)
    pin_sets: dict[tuple, frozenset[int]] = {}
    prefer_lists: dict[tuple, tuple[int, ...]] = {}
    by_rank = sorted(usable, key=lambda i: model.rank[i])
    entries_of = Counter(g.name for g in snap.guests)
    names_seen: set[str] = set()
    # Listed by two hosts or more, whatever its state: two copies write one disk, and which one
    # to stop is the admin's call (xenfab.duplicates). Every host counts, --without/--dead ones
    # too: declaring a host gone does not stop the copy it runs.
    twice = {
        d.guest: d for d in find_duplicates({h.name: [x.name for x in h.domains] for h in hosts})
    }
    for g in snap.guests:
        if g.name in names_seen:
            continue  # reported with its first entry
        names_seen.add(g.name)
        if g.name in twice:
            reason = f"DUPLICATE: {describe_duplicate(twice[g.name])}: never started or moved"
            model.skipped.append(Skipped(g.name, g.state, reason))
            continue
        kind = states.kind(g.state)
        if expect is not None:
            kind = expect.kind_of(g, kind, states)
        if dead and g.state in states.unclaimed and kind != "down":
            # A dead host cannot say what it linked or ran; its last answer in the history can.
            if recall.claim(g.name, dead) is not None:
                kind = "down"
            elif forgotten and expect is None:
                reason = recall.unknown_reason(forgotten)
                model.unplaced.append(_still_down(g, policy, LIVENESS, reason))
                continue
        owner = hosts[index[g.owner]] if g.owner in index else None
        takeover: str | None = None
        if kind in ("running", "transition") and owner is not None:
            if owner.name in gone:
                takeover = owner.name
            elif not owner.reachable and owner.member == "fenced" and snap.quorate is True:
                # A quorate cluster's record that it fenced the member after it left is proof;
                # offline alone is not (a partitioned host runs on), nor a timeout, nor an
                # inquorate node's view (it may be the partitioned side).
                takeover = owner.name
            elif not owner.reachable and owner.member == "offline":
                model.unplaced.append(
                    _still_down(g, policy, LIVENESS, _unfenced_reason(owner.name))
                )
                continue
            elif not owner.reachable:
                model.unplaced.append(
                    _still_down(g, policy, LIVENESS, _liveness_reason(owner.name))
                )
                continue
        if takeover is None and kind != "down":
            if g.state in states.unclaimed:
                if expect is not None:
                    model.skipped.append(Skipped(g.name, g.state, expect.not_brought_back(g) or ""))
                    continue
                # Claimed by no host that answered: one that did not may claim it (and run it).
                # A manager that tracks where every guest runs (an XAPI pool) has no blind spot.
                blind = [
                    h.name
                    for h in hosts
                    if not h.reachable and h.name not in gone and not states.owners_tracked
                ]
                if blind:
                    model.unplaced.append(
                        _still_down(g, policy, LIVENESS, _unclaimed_reason(blind))
                    )
                    continue
            why = _skip_reason(g, kind)
            if dead and g.state in states.unclaimed:
                remembered = [recall.hosts[h] for h in sorted(dead) if h in recall.hosts]
                why += "".join(
                    f"; {r.host} neither ran nor linked it in {r.label}" for r in remembered
                )
            model.skipped.append(Skipped(g.name, g.state, why))
            continue
        running = [h for h in dict.fromkeys([*g.running_on, *seen.get(g.name, [])])]
        running = [h for h in running if h not in gone]
        if running:
            model.skipped.append(
                Skipped(g.name, g.state, f"domain running on {', '.join(running)}")
            )
            continue
        if kind == "down" and takeover is None and expect is not None:
            skip = expect.not_brought_back(g)
            if skip:
                model.skipped.append(Skipped(g.name, g.state, skip))
                continue
        if kind == "down" and takeover is None and not states.owners_tracked:
            # No manager records where a guest runs: any host that did not answer may run it.
            blind = [h.name for h in hosts if not h.reachable and h.name not in gone]
            if blind:
                model.unplaced.append(_still_down(g, policy, LIVENESS, _blind_reason(blind)))
                continue
        why_not = _cannot_plan(g, entries_of[g.name])
        if why_not:
            model.unplaced.append(_still_down(g, policy, CANNOT_PLAN, why_not))
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
        # Hosts its manager would refuse it on (XAPI: its SR not plugged) are never tried.
        refused = {index[n]: why for n, why in g.refused_hosts.items() if n in index}
        avoided = frozenset(index[n] for n in avoid.get(g.name, ()) if n in index) | frozenset(
            refused
        )
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
        model.guests.append(
            PGuest(
                idx=len(model.guests),
                name=g.name,
                guest=g,
                mem=g.memory_mib + g.overhead_mib + policy.overhead_mib,
                vcpus=max(g.vcpus, 0),
                tier=policy.tier_of(g.name, g.tier),
                pinned=pinned,
                avoided=avoided,
                refused=refused,
                prefer=prefer_lists[wanted],
                last_owner=last if last is not None and last in usable else None,
                last_owner_why=last_why,
                last_seen=last,
                takeover_from=takeover,
            )
        )
    if dead and states.unclaimed:
        # Linked then by a dead host, with no guest entry now (its config unreadable or gone):
        # its xendomains would have started it, so it is down and ours, and cannot be planned.
        for name, reason in recall.missing(dead, names_seen, seen):
            model.unplaced.append(
                Unplaced(name, 0, reason, {}, policy.tier_of(name), 0, CANNOT_PLAN)
            )
    if expect is not None:
        for name, ran in expect.missing(names_seen, seen):
            reason = expect.no_config_reason(ran)
            tier = policy.tier_of(name)
            model.unplaced.append(
                Unplaced(name, ran.memory_mib, reason, {}, tier, ran.vcpus, CANNOT_PLAN)
            )
    model.unplaced.sort(key=lambda u: (u.tier, u.guest))


def _cannot_plan(guest: Guest, entries: int) -> str | None:
    """Why a down guest of ours cannot be planned at all, or None when it can."""
    if entries > 1:
        # Two entries for one guest would mean two starts of one domain: never.
        return f"{entries} entries for {guest.name} in the snapshot"
    if not guest.plannable:
        return guest.reason or "cannot be planned (no reason recorded)"
    if not GUEST_NAME.match(guest.name):
        # Text from a host, kept raw in data (no repr): display escapes it (textsafe.printable).
        return f"name '{guest.name}' has characters xenfab will not send to a shell"
    if guest.memory_mib <= 0:
        where = f" ({guest.config_file})" if guest.config_file else ""
        return f"memory size unknown{where}"
    return None


_NOTHING_RECALLED = Recall()


def _still_down(guest: Guest, policy: Policy, kind: str, reason: str) -> Unplaced:
    return Unplaced(
        guest.name,
        max(guest.memory_mib, 0),
        reason,
        {},
        policy.tier_of(guest.name, guest.tier),
        max(guest.vcpus, 0),
        kind,
    )


def _liveness_reason(owner: str) -> str:
    return (
        f"owner {owner} unreachable, liveness unknown: fence or power off {owner}, "
        f"or declare it dead: --dead {owner}"
    )


def _unfenced_reason(owner: str) -> str:
    return (
        f"liveness unknown: {owner} is offline but not fenced: fence it (fence_node {owner}), "
        f"or power it off and declare it dead: --dead {owner}"
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


def _skip_reason(guest: Guest, kind: str) -> str:
    where = guest.owner or "an unknown host"
    if kind == "running":
        return f"already {guest.state} on {where}"
    if kind in ("running", "transition"):
        return f"{guest.state} on {where}"
    if guest.reason:
        return f"state {guest.state}: {guest.reason}"
    return f"state {guest.state}: not a down state of the cluster manager"
