"""The N+k report: how many hosts may fail with every guest still restarted under the policy.

Pure: a Snapshot and a Policy in, a :class:`CapacityReport` out; no SSH, no Fabric. Every failure
set is judged by the planner itself (``plan(..., without=hosts)``), so the report and the plan that
``fab start-all`` would run after such a failure can never disagree. See docs/capacity.md.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..snapshot import Snapshot
from .layout import Layout
from .model import build_model
from .planner import plan as _plan
from .policy import Policy
from .rules import Demand

MODES = ("recovered", "running")
DEFAULT_TIME_BUDGET_S = 10.0


@dataclass
class Down:
    """A guest the planner could not restart after a failure, with its tier and why."""

    guest: str
    tier: int
    memory_mib: int
    reason: str


@dataclass
class HostReport:
    """What happens when this one host fails: do its guests restart elsewhere, and who would not."""

    host: str
    status: str  # "ok", "excluded" (may still run guests) or "unreachable" (failed already)
    survives: bool | None  # None: not checked (unreachable, or the time budget ran out first)
    guests: int  # guests running there now (per rgmanager) that its failure sends elsewhere
    planned: int  # down guests the recovery plan puts there (mode "recovered")
    ram_mib: int  # RAM those running guests need elsewhere (with overhead)
    stay_down: list[Down] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class CapacityReport:
    """The N+k answer: k, whether it is exact, the per-host table and who stays down first."""

    environment: str
    mode: str
    k: int
    proven: bool
    hosts: list[HostReport]
    hosts_failed: list[str]  # the first failing set found (empty: none found)
    first_to_stay_down: list[Down]
    planner_proven: bool | None  # the planner's proof that no layout saves more in that set
    checked_sets: int
    planned_sets: int
    pruned_sets: int
    seconds: float
    candidates: list[str]
    guests_down: int  # down guests counted (mode "recovered"): they are placed in every plan
    guests_running: int  # running guests that some single host failure sends elsewhere
    stopped: str | None  # None, "time budget" or "max-k"
    next_size: dict[str, int] | None  # the size K+1 left unfinished: {size, checked, total}
    strategy: str
    warnings: list[str] = field(default_factory=list)
    # Down guests that stay down whatever fails (facts unusable, liveness unknown): not in
    # guests_down, named in ``warnings`` (mode "recovered").
    guests_not_counted: int = 0

    @property
    def statement(self) -> str:
        """One line saying what k means here, including how far it is proven."""
        if self.k < 0:
            return (
                "k = -1: even with no host failing, some guests cannot be restarted "
                "(see first to stay down)"
            )
        if self.proven:
            if self.k == 0:
                return "k = 0: one host failing can leave guests down (see first to stay down)"
            if self.hosts_failed:
                hosts = "host" if self.k == 1 else "hosts"
                return (
                    f"k = {self.k}: any {self.k} {hosts} may fail and every guest restarts; "
                    f"{len(self.hosts_failed)} failing can leave guests down"
                )
            return f"k = {self.k}: every reachable host may fail and every guest restarts"
        if self.next_size and self.stopped == "time budget":
            n = self.next_size
            return (
                f"k >= {self.k} (not proven beyond: {n['checked']} of {n['total']} sets "
                f"of size {n['size']} checked in budget)"
            )
        return f"k >= {self.k} (not checked beyond --max-k {self.k})"

    def to_dict(self) -> dict[str, Any]:
        """The report as the documented JSON object (docs/capacity.md)."""
        return {
            "environment": self.environment,
            "mode": self.mode,
            "k": self.k,
            "proven": self.proven,
            "statement": self.statement,
            "hosts": [
                {
                    "host": h.host,
                    "status": h.status,
                    "survives": h.survives,
                    "guests": h.guests,
                    "planned": h.planned,
                    "ram_mib": h.ram_mib,
                    "stay_down": [_down_dict(d) for d in h.stay_down],
                    "warnings": list(h.warnings),
                }
                for h in self.hosts
            ],
            "first_to_stay_down": {
                "hosts_failed": list(self.hosts_failed),
                "guests": [_down_dict(d) for d in self.first_to_stay_down],
                "planner_proven": self.planner_proven,
            },
            "checked_sets": self.checked_sets,
            "planned_sets": self.planned_sets,
            "pruned_sets": self.pruned_sets,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
            "next_size": dict(self.next_size) if self.next_size else None,
            "candidates": list(self.candidates),
            "guests_counted": self.guests_down + self.guests_running,
            "guests_down": self.guests_down,
            "guests_running": self.guests_running,
            "guests_not_counted": self.guests_not_counted,
            "strategy": self.strategy,
            "warnings": list(self.warnings),
        }


def plan(snapshot: Snapshot, policy: Policy, **kw: Any) -> Layout:
    """The planner's layout with only the guests left down for want of room as unplaced.

    A guest that cannot be planned at all (its facts) or whose owner's liveness is unknown stays
    down whatever fails: no failure set is to blame for it (capacity() warns about them).
    """
    layout = _plan(snapshot, policy, **kw)
    layout.unplaced = [u for u in layout.unplaced if u.kind == "no-room"]
    return layout


def _down_dict(down: Down) -> dict[str, Any]:
    return {
        "guest": down.guest,
        "tier": down.tier,
        "memory_mib": down.memory_mib,
        "reason": down.reason,
    }


def counted_snapshot(snapshot: Snapshot, mode: str) -> Snapshot:
    """The snapshot the report plans on: in mode ``running`` the down guests are left out."""
    if mode not in MODES:
        raise ConfigError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "recovered":
        return snapshot
    # Given a state that is not down rather than dropped: the planner then lists them as
    # skipped, with why (a down guest the planner cannot place would be "still down" instead).
    guests = [
        replace(g, state="not-counted", reason="down now; --running-only counts running guests")
        if snapshot.is_down(g)
        else g
        for g in snapshot.guests
    ]
    return replace(snapshot, guests=guests)


class _Judge:
    """Judges failure sets: a cheap necessary condition first, then the planner."""

    def __init__(
        self,
        snap: Snapshot,
        policy: Policy,
        base: Layout,
        gone: Sequence[str],
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.snap, self.policy, self.deadline, self.clock = snap, policy, deadline, clock
        self.gone = list(gone)
        overhead = policy.overhead_mib
        self.base_names = {a.guest for a in base.assignments} | {u.guest for u in base.unplaced}
        sizes = [a.memory_mib + overhead for a in base.assignments]
        sizes += [u.memory_mib + overhead for u in base.unplaced]
        vcpus = [a.vcpus for a in base.assignments] + [u.vcpus for u in base.unplaced]
        self.base = Demand(len(sizes), sum(sizes), max(sizes, default=0), sum(vcpus))
        # The rules as the planner builds them with no host failing: each one's own figures
        # (room, vCPU caps, guest slots) answer its part of the quick test.
        model = build_model(snap, policy, without=self.gone)
        self.rules = model.rules
        self.host_index = {model.host_name(h): h for h in model.usable}
        self.room = {name: max(model.ram.room_mib[h], 0) for name, h in self.host_index.items()}
        # Per host: what its failure adds to the guests to place (filled by the per-host pass).
        self.lost: dict[str, Demand] = {}
        self.planned = self.pruned = 0
        self.cut = False

    def remember(self, host: str, layout: Layout) -> tuple[int, int]:
        """Record what host's failure adds to the guests to place; returns (count, RAM)."""
        extra = [a for a in layout.assignments if a.guest not in self.base_names]
        extra_u = [u for u in layout.unplaced if u.guest not in self.base_names]
        sizes = [x.memory_mib + self.policy.overhead_mib for x in [*extra, *extra_u]]
        vcpus = sum(x.vcpus for x in [*extra, *extra_u])
        self.lost[host] = Demand(len(sizes), sum(sizes), max(sizes, default=0), vcpus)
        return len(sizes), sum(sizes)

    def cannot(self, failed: Sequence[str]) -> bool:
        """True when the set surely leaves a guest down: some rule's bound says so (not enough
        RAM, no host big enough, not enough vCPUs or guest slots...).

        Sums of single-host losses never exceed the real loss (a guest is lost with its one
        owner), and each rule's bound is a necessary test, so this never condemns a set the
        planner could save.
        """
        if any(h not in self.lost for h in failed):
            return False
        lost = [self.lost[h] for h in failed]
        demand = Demand(
            self.base.guests + sum(d.guests for d in lost),
            self.base.ram_mib + sum(d.ram_mib for d in lost),
            max([self.base.largest_mib, *(d.largest_mib for d in lost)]),
            self.base.vcpus + sum(d.vcpus for d in lost),
        )
        survivors = [h for name, h in self.host_index.items() if name not in failed]
        return any(rule.cannot_hold(demand, survivors) for rule in self.rules)

    def plan(self, failed: Sequence[str], count: bool = True) -> Layout:
        """The planner's layout for this failure set, its search within the time left."""
        self.planned += count
        left = max(self.deadline - self.clock(), 0.0)
        self.cut = left < self.policy.exact_search_s
        return plan(
            self.snap,
            self.policy,
            without=[*self.gone, *failed],
            time_budget_s=min(self.policy.exact_search_s, left),
        )

    def undecided(self, layout: Layout) -> bool:
        """True when guests stayed down only because our budget cut the planner's search short.

        With its full ``exact_search_s`` the planner's word is final (it is what show-layout
        --without would say); with less, an unproven failure proves nothing about k.
        """
        # The planner's budget is work, not time: only a search its wall-clock stop ended
        # (search_stopped) is short of the planner's final word.
        return (
            bool(layout.unplaced)
            and layout.proven_optimal is not True
            and layout.search_stopped is not None
        )


def capacity(
    snapshot: Snapshot,
    policy: Policy,
    *,
    mode: str = "recovered",
    max_k: int | None = None,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> CapacityReport:
    """Compute the N+k report: per-host failure, the largest k proven, and who stays down first."""
    if max_k is not None and max_k < 1:
        raise ConfigError(f"--max-k: expected a whole number >= 1, got {max_k}")
    if not time_budget_s >= 0:  # also refuses NaN
        raise ConfigError(f"--time-budget: expected seconds >= 0, got {time_budget_s}")
    started = clock()
    deadline = started + time_budget_s
    snap = counted_snapshot(snapshot, mode)
    # A host that did not answer counts as failed already: the guests rgmanager says it runs are
    # among the guests to restart in every set (the safe assumption), and it is no candidate.
    gone = [h.name for h in snap.hosts if not h.reachable]
    candidates = [h.name for h in snap.hosts if h.reachable]
    # The plan with no failure gets the planner's full search time, whatever our budget: every
    # set builds on it, and a k of -1 from a search we cut short would be a false alarm.
    base = _plan(snap, policy, without=gone)
    elsewise = [u for u in base.unplaced if u.kind != "no-room"]
    base.unplaced = [u for u in base.unplaced if u.kind == "no-room"]
    judge = _Judge(snap, policy, base, gone, deadline, clock)
    planned_here: dict[str, int] = {}
    for a in base.assignments:
        planned_here[a.host] = planned_here.get(a.host, 0) + 1
    warnings = list(base.warnings)
    if elsewise and mode == "recovered":
        n = len(elsewise)
        warnings.append(
            f"{n} down guest{'s' if n > 1 else ''} not counted: "
            f"{'they stay' if n > 1 else 'it stays'} down whatever fails: "
            + "; ".join(f"{u.guest}: {u.reason}" for u in elsewise)
        )
    status = {h.name: h.status for h in base.hosts}

    hosts: dict[str, HostReport] = {
        h.name: HostReport(
            host=h.name,
            status=status.get(h.name, "ok") if h.reachable else "unreachable",
            survives=None,
            guests=0,
            planned=planned_here.get(h.name, 0),
            ram_mib=0,
        )
        for h in snap.hosts
    }
    if gone:
        # Only the names matter here (which guests the unreachable hosts add), so no search.
        present = plan(snap, policy, time_budget_s=0)
        owner = {g.name: g.owner for g in snap.guests}
        # A guest taken over from a member the cluster shows fenced is one the host adds too.
        known = {a.guest for a in present.assignments if a.takeover_from is None} | {
            u.guest for u in present.unplaced if owner.get(u.guest) not in gone
        }
        for a in [*base.assignments, *base.unplaced]:
            where = owner.get(a.guest)
            if a.guest not in known and where in hosts:
                hosts[where].guests += 1
                hosts[where].ram_mib += a.memory_mib + policy.overhead_mib
        for name in gone:
            warnings.append(
                f"{name} unreachable: counted as failed already; its {hosts[name].guests} "
                "guest(s) restart elsewhere in every set"
            )
    checked = 0
    single: dict[str, Layout] = {}
    failing: list[tuple[list[str], Layout]] = []
    if base.unplaced:
        # The cluster cannot hold its guests even now, so every failure set fails for that reason
        # alone: k is -1. The per-host table still shows what each failure adds.
        failing.append(([], base))
    stopped: str | None = None
    next_size: dict[str, int] | None = None

    # Size 1 is every host, always, for the per-host table (the report's main use).
    for name in candidates:
        if clock() >= deadline:
            stopped = "time budget"
            break
        layout = single[name] = judge.plan([name])
        n, ram = judge.remember(name, layout)
        hr = hosts[name]
        hr.guests, hr.ram_mib = n, ram
        if judge.undecided(layout):
            judge.planned -= 1
            stopped = "time budget"
            break
        checked += 1
        hr.survives = not layout.unplaced
        hr.stay_down = _downs(layout)
        hr.warnings = [w for w in layout.warnings if w.startswith("what-if:")]
    # The hosts whose loss costs the most RAM (guests to move + room lost) first: the sets most
    # likely to fail are tried first, so a failure, which proves k, comes early.
    order = sorted(candidates, key=lambda n: (-hosts[n].ram_mib - judge.room.get(n, 0), n))
    first_bad = next((n for n in order if hosts[n].survives is False), None)
    if first_bad is not None and not failing:
        failing.append(([first_bad], single[first_bad]))
    if stopped and not failing:
        done = sum(1 for n in candidates if hosts[n].survives is not None)
        next_size = {"size": 1, "checked": done, "total": len(candidates)}

    limit = len(candidates) if max_k is None else min(max_k, len(candidates))
    size = 2
    while not failing and not stopped and size <= limit:
        total = math.comb(len(candidates), size)
        for done, combo in enumerate(itertools.combinations(order, size)):
            if clock() >= deadline:
                stopped = "time budget"
                next_size = {"size": size, "checked": done, "total": total}
                break
            failed = list(combo)
            checked += 1
            if judge.cannot(failed):
                judge.pruned += 1
                # One plan still runs: it names the guests that would stay down.
                failing.append((failed, judge.plan(failed, count=False)))
                break
            layout = judge.plan(failed)
            if judge.undecided(layout):
                checked -= 1
                judge.planned -= 1
                stopped = "time budget"
                next_size = {"size": size, "checked": done, "total": total}
                break
            if layout.unplaced:
                failing.append((failed, layout))
                break
        size += 1
    # k is one less than the smallest size with a failing set (or the size left unfinished).
    if failing:
        k = len(failing[0][0]) - 1
    elif next_size:
        k = next_size["size"] - 1
    elif limit < len(candidates):
        stopped = "max-k"
        k = limit
        total = math.comb(len(candidates), limit + 1)
        next_size = {"size": limit + 1, "checked": 0, "total": total}
    else:
        k = len(candidates)

    failed_hosts, layout = failing[0] if failing else ([], None)
    return CapacityReport(
        environment=snapshot.environment,
        mode=mode,
        k=k,
        proven=bool(failing) or stopped is None,
        hosts=[hosts[h.name] for h in snap.hosts],
        hosts_failed=list(failed_hosts),
        first_to_stay_down=_downs(layout) if layout is not None else [],
        planner_proven=layout.proven_optimal if layout is not None else None,
        checked_sets=checked,
        planned_sets=judge.planned,
        pruned_sets=judge.pruned,
        seconds=clock() - started,
        candidates=candidates,
        guests_down=len(judge.base_names) - sum(hosts[n].guests for n in gone),
        guests_running=sum(h.guests for h in hosts.values()),
        stopped=stopped,
        next_size=next_size,
        strategy=policy.strategy,
        warnings=warnings,
        guests_not_counted=len(elsewise) if mode == "recovered" else 0,
    )


def _downs(layout: Layout) -> list[Down]:
    return [Down(u.guest, u.tier, u.memory_mib, u.reason) for u in layout.unplaced]
