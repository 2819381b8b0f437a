"""plan(): snapshot + policy -> Layout; greedy first, then repair and exact search."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping

from ..snapshot import Snapshot
from .explain import Explainer
from .greedy import guest_order, place_greedy
from .layout import Assignment, HostUse, Layout, Unplaced
from .model import Model, PGuest, State, build_model
from .policy import Policy
from .saved import facts_digest, plan_id
from .search import Budget, SearchHook
from .timing import Timing, optimise, simulate


def plan(
    snapshot: Snapshot,
    policy: Policy,
    *,
    without: Iterable[str] = (),
    dead: Iterable[str] = (),
    avoid: Mapping[str, Collection[str]] | None = None,
    time_budget_s: float | None = None,
    on_search: SearchHook | None = None,
) -> Layout:
    """Place every down guest on a host, or say why it stays down (per host when it is room).

    ``without``: what-if, plan as if these hosts had failed. ``dead``: hosts declared dead for
    this run; the guests the cluster still shows on them are replanned, the hosts unused.
    The search's budget is deterministic work (search.py); ``time_budget_s`` (default
    ``policy.exact_search_s``) is only its wall-clock safety stop, and 0 means greedy only.
    ``on_search(seconds)`` is called when the search beyond greedy starts, with the most it may
    take; if it returns a callable, that is called when the search ends. The caller shows it
    (the planner itself does no I/O). The layout carries its ``plan_id`` (saved.plan_id).
    """
    started = time.monotonic()
    safety = policy.exact_search_s if time_budget_s is None else max(time_budget_s, 0.0)
    budget = Budget(started + safety, search=safety > 0)
    without, dead = list(without), list(dead)
    m = build_model(snapshot, policy, without, avoid, dead=dead)
    st = State(m)
    why: dict[int, str] = {}
    order = guest_order(m)
    place_greedy(m, st, order, why)
    method = "greedy"
    proven: bool | None = True
    if any(st.where[g.idx] is None for g in m.guests):
        proven = None
        from .search import improve  # local: the search is only needed when greedy falls short

        st, method, proven = improve(m, st, why, order, budget, on_search)
    # The same guests placed, laid out for policy.objective (time to all-up, last owner).
    timing = policy.timing if policy.timing is not None else Timing()
    if not (budget.search and budget.out_of_time()):
        # Work-bounded too; but once the safety stop has fired, nothing more is tried.
        st, _ = optimise(m, st, why, timing)
    out = _layout(m, st, why, order, method, proven)
    _expected(out, timing, {g.name: g.gate_s for g in snapshot.guests if g.gate_s})
    out.search_stopped = budget.stopped
    # Computed on first use (Layout.plan_id), from the inputs as they are now.
    out._id_of = lambda: plan_id(facts_digest(snapshot), policy, out, dead=dead, avoid=avoid)
    return out


def _layout(
    m: Model,
    st: State,
    why: dict[int, str],
    order: list,
    method: str,
    proven: bool | None,
) -> Layout:
    out = Layout(
        strategy=m.policy.strategy,
        method=method,
        proven_optimal=proven,
        skipped=list(m.skipped),
        warnings=list(m.warnings),
        without=list(m.without),
    )
    rank = {g.idx: i for i, g in enumerate(order)}
    placed_on: dict[int, list[str]] = {}
    explainer = Explainer(m, st, proven)
    for g in sorted(m.guests, key=lambda g: (g.tier, rank[g.idx])):
        h = st.where[g.idx]
        if h is None:
            reason, per_host, refusals = explainer.unplaced(g)
            out.unplaced.append(
                Unplaced(
                    g.name,
                    g.guest.memory_mib,
                    reason,
                    per_host,
                    g.tier,
                    g.vcpus,
                    refusals=refusals,
                )
            )
            continue
        placed_on.setdefault(h, []).append(g.name)
        out.assignments.append(
            Assignment(
                g.name,
                m.host_name(h),
                g.guest.memory_mib,
                g.vcpus,
                g.tier,
                why[g.idx] + _backend_why(m, g),
                state=g.guest.state,
                takeover_from=g.takeover_from,
            )
        )
    # Down guests the model could not plan at all (facts, liveness) stay down too.
    out.unplaced.extend(m.unplaced)
    ram, vcpu = m.ram, m.vcpu
    vcpus_used = st.counter(vcpu)
    for h, host in enumerate(m.snapshot.hosts):
        # Free after = measured free less what the plan charged (room before - room after).
        charged = ram.room_mib[h] - st.room_mib[h]
        out.hosts.append(
            HostUse(
                name=host.name,
                status=m.status[h] or "ok",
                free_mib_before=host.free_mib,
                free_mib_after=host.free_mib - charged,
                vcpus_before=vcpu.running[h],
                vcpus_after=vcpus_used[h],
                vcpu_cap=vcpu.cap[h],
                guests=placed_on.get(h, []),
                reserve_mib=ram.reserve_mib,
            )
        )
    return out


def _expected(out: Layout, timing: Timing, gates: dict[str, float]) -> None:
    """The layout's expected schedule under the start caps and the manager's start delays
    (``gates``): each guest's ready time, each tier's and the all-up time (from the first start
    command)."""
    sched = simulate(
        ((a.guest, a.host, a.tier, timing.seconds(a.guest)) for a in out.assignments),
        timing,
        gates,
    )
    for a in out.assignments:
        a.expected_boot_s = timing.seconds(a.guest)
        a.expected_start_s = sched.start_s.get(a.guest)
        a.expected_ready_s = sched.ready_s.get(a.guest)
    out.expected_all_up_s = sched.all_up_s if out.assignments else None
    out.expected_tiers_s = dict(sched.tiers_s)
    out.expected_sources = {}
    for a in out.assignments:
        src = timing.source(a.guest)
        out.expected_sources[src] = out.expected_sources.get(src, 0) + 1
    out.start_caps = {"per_host": timing.per_host, "in_flight": timing.in_flight}
    if timing.dispatch_s:
        out.start_caps["dispatch_s"] = timing.dispatch_s


def _backend_why(m: Model, g: PGuest) -> str:
    """What the cluster manager's own start policy added to the plan of ``g``, said."""
    parts = []
    if g.guest.overhead_mib:
        parts.append(
            f"planned as {g.mem} MiB: {g.guest.memory_mib} MiB + {g.guest.overhead_mib} MiB "
            "its manager adds to start it"
            + (f" + policy overhead {m.policy.overhead_mib} MiB" if m.policy.overhead_mib else "")
        )
    if g.guest.tier is not None and m.policy.priority_tier(g.name) is None:
        parts.append(f"tier {g.tier}: its manager's start order")
    by_why: dict[str, list[str]] = {}
    for h, text in sorted(g.refused.items()):
        by_why.setdefault(text, []).append(m.host_name(h))
    for text, hosts in by_why.items():
        parts.append(f"not on {', '.join(hosts)}: {text}")
    if g.guest.gate_s:
        parts.append(f"the next tier waits {g.guest.gate_s:g} s after it started")
    return "".join(f"; {p}" for p in parts)
