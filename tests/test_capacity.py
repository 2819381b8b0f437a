"""The N+k report (xenfab.plan.capacity), pure: synthetic snapshots, checked against brute force."""

from __future__ import annotations

import itertools
import json
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenfab.errors import ConfigError
from xenfab.plan import plan, policy_from_dict
from xenfab.plan.capacity import _Judge, capacity, counted_snapshot
from xenfab.show import capacity_text as report_text
from xenfab.snapshot import Domain, Guest, Host, Snapshot


def cluster(hosts, running=(), down=(), unreachable=(), cpus=8, vcpus=1):
    """hosts: {name: total MiB}; running: (guest, host, MiB); down: (guest, MiB, last owner)."""
    used: dict[str, int] = {}
    doms: dict[str, list[Domain]] = {h: [Domain("Domain-0", 1024, 2)] for h in hosts}
    guests = []
    for name, where, mem in running:
        used[where] = used.get(where, 0) + mem
        doms[where].append(Domain(name, mem, vcpus))
        guests.append(
            Guest(name, mem, vcpus, "started", owner=where, last_owner=where, running_on=[where])
        )
    for name, mem, last in down:
        guests.append(Guest(name, mem, vcpus, "disabled", last_owner=last))
    return Snapshot(
        "test",
        "2026-01-01T00:00:00Z",
        next(iter(hosts)),
        True,
        [
            Host(
                h,
                reachable=h not in unreachable,
                total_mib=total,
                free_mib=total - used.get(h, 0),
                cpus=cpus,
                domains=doms[h],
            )
            for h, total in hosts.items()
        ],
        guests,
    )


def policy(**kw):
    return policy_from_dict(kw)


def no_room(layout):
    """The guests left down for want of room (a failure set is to blame only for those)."""
    return [u for u in layout.unplaced if u.kind == "no-room"]


def brute_k(snap, pol, mode="recovered"):
    """The definition, by plan() on every failure set: largest k whose sets of size <= k all pass."""
    s = counted_snapshot(snap, mode)
    gone = [h.name for h in s.hosts if not h.reachable]  # failed already, in every set
    if no_room(plan(s, pol, without=gone)):
        return -1
    names = [h.name for h in s.hosts if h.reachable]
    for size in range(1, len(names) + 1):
        for c in itertools.combinations(names, size):
            if no_room(plan(s, pol, without=[*gone, *c])):
                return size - 1
    return len(names)


def host_row(report, name):
    return next(h for h in report.hosts if h.host == name)


# --- exact k on small clusters -------------------------------------------------------------------


@st.composite
def small_clusters(draw):
    n = draw(st.integers(2, 5))
    hosts = {f"xen{i:02d}": draw(st.sampled_from([4096, 8192, 12288, 16384])) for i in range(n)}
    names = list(hosts)
    running, left = [], dict(hosts)
    for j in range(draw(st.integers(0, 8))):
        h = draw(st.sampled_from(names))
        mem = draw(st.sampled_from([512, 1024, 2048, 4096, 6144]))
        if mem <= left[h]:
            left[h] -= mem
            running.append((f"r{j}", h, mem))
    down = [
        (f"d{j}", draw(st.sampled_from([512, 1024, 2048, 4096])), draw(st.sampled_from(names)))
        for j in range(draw(st.integers(0, 3)))
    ]
    unreachable = {names[-1]} if n > 2 and draw(st.booleans()) else set()
    snap = cluster(hosts, running, down, unreachable)
    pol = policy(
        strategy=draw(st.sampled_from(["round-robin", "most-free", "balanced", "pack"])),
        reserve_mib=draw(st.sampled_from([0, 512])),
        overhead_mib=draw(st.sampled_from([0, 64])),
        vcpu_ratio=draw(st.sampled_from([None, 1])),
        anti_affinity={"pair": ["r0", "r1"]} if draw(st.booleans()) else {},
        priority={"r*": 1} if draw(st.booleans()) else {},
    )
    return snap, pol, draw(st.sampled_from(["recovered", "running"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_clusters())
def test_k_is_exact_against_brute_force(case):
    snap, pol, mode = case
    report = capacity(snap, pol, mode=mode, time_budget_s=60)
    assert report.proven and report.stopped is None
    assert report.k == brute_k(snap, pol, mode)
    assert report.checked_sets == report.planned_sets + report.pruned_sets
    # The failing set named is real and of size k+1, and its guests are the planner's unplaced.
    s = counted_snapshot(snap, mode)
    gone = [h.name for h in snap.hosts if not h.reachable]
    if report.hosts_failed or report.first_to_stay_down:
        assert len(report.hosts_failed) == report.k + 1
        layout = plan(s, pol, without=[*gone, *report.hosts_failed])
        assert [d.guest for d in report.first_to_stay_down] == [u.guest for u in no_room(layout)]
        assert no_room(layout)
    # Per host: exactly what the planner says for that one failure.
    for h in snap.hosts:
        row = host_row(report, h.name)
        if not h.reachable:
            assert row.status == "unreachable" and row.survives is None
            continue
        layout = plan(s, pol, without=[*gone, h.name])
        assert row.survives == (not no_room(layout))
        assert [d.guest for d in row.stay_down] == [u.guest for u in no_room(layout)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_clusters())
def test_pruning_never_condemns_a_set_the_planner_saves(case):
    snap, pol, mode = case
    s = counted_snapshot(snap, mode)
    gone = [h.name for h in s.hosts if not h.reachable]
    base = plan(s, pol, without=gone)
    judge = _Judge(s, pol, base, gone, time.monotonic() + 60, time.monotonic)
    names = [h.name for h in s.hosts if h.reachable]
    for name in names:
        judge.remember(name, plan(s, pol, without=[*gone, name]))
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(names, size):
            if judge.cannot(combo):
                assert plan(s, pol, without=[*gone, *combo]).unplaced, combo


def test_three_equal_hosts_half_full_tolerate_one_failure():
    # Each host 8 GiB with 4 GiB running: one failure spreads over two hosts, two cannot.
    hosts = {"xen01": 8192, "xen02": 8192, "xen03": 8192}
    running = [
        ("a1", "xen01", 2048),
        ("a2", "xen01", 2048),
        ("b1", "xen02", 2048),
        ("b2", "xen02", 2048),
        ("c1", "xen03", 2048),
        ("c2", "xen03", 2048),
    ]
    report = capacity(cluster(hosts, running), policy())
    assert (report.k, report.proven) == (1, True)
    assert all(h.survives for h in report.hosts)
    assert len(report.hosts_failed) == 2 and report.first_to_stay_down
    assert report.statement.startswith("k = 1: any 1 host may fail")


# --- one big guest ------------------------------------------------------------------------------


def test_one_big_guest_that_fits_nowhere_else_makes_k_zero():
    hosts = {"xen01": 65536, "xen02": 24576, "xen03": 24576}
    running = [("big01", "xen01", 32768), ("web01", "xen02", 2048), ("web02", "xen03", 2048)]
    report = capacity(cluster(hosts, running), policy())
    assert (report.k, report.proven) == (0, True)
    big = host_row(report, "xen01")
    assert big.survives is False and big.guests == 1 and big.ram_mib == 32768
    assert [d.guest for d in big.stay_down] == ["big01"]
    assert "no host has room" in big.stay_down[0].reason
    assert host_row(report, "xen02").survives and host_row(report, "xen03").survives
    assert report.hosts_failed == ["xen01"]
    assert [(d.guest, d.tier) for d in report.first_to_stay_down] == [("big01", 3)]
    # Plenty of free RAM in total: only the per-guest check (largest guest) rules xen01 out.
    assert sum(h.free_mib for h in cluster(hosts, running).hosts[1:]) > 32768


# --- time budget --------------------------------------------------------------------------------


def big_cluster(n_hosts=40, per_host=6):
    hosts = {f"xen{i:03d}": 65536 for i in range(n_hosts)}
    running = [
        (f"g{i:03d}-{j}", f"xen{i:03d}", 4096) for i in range(n_hosts) for j in range(per_host)
    ]
    return cluster(hosts, running)


def test_time_budget_is_honoured_and_k_is_a_lower_bound():
    snap = big_cluster()
    started = time.monotonic()
    report = capacity(snap, policy(), time_budget_s=0.5)
    took = time.monotonic() - started
    # Checked between plan calls, each of which takes milliseconds here; unbounded, the count
    # runs far longer, and the slack only absorbs a loaded machine.
    assert report.seconds < 0.5 + 2.5 and took < 0.5 + 3.0
    assert report.stopped == "time budget" and not report.proven
    n = report.next_size
    assert n is not None and n["size"] == report.k + 1
    assert n["total"] == math.comb(40, n["size"]) and 0 <= n["checked"] < n["total"]
    assert report.statement == (
        f"k >= {report.k} (not proven beyond: {n['checked']} of {n['total']} sets "
        f"of size {n['size']} checked in budget)"
    )
    assert report.to_dict()["proven"] is False
    assert report.checked_sets == report.planned_sets + report.pruned_sets


def test_a_fake_clock_stops_the_enumeration_exactly():
    ticks = iter(range(10_000))
    report = capacity(big_cluster(8, 2), policy(), time_budget_s=20, clock=lambda: next(ticks))
    # The clock advances once per look: the per-host pass then some sets of size 2 fit in 20.
    assert all(h.survives for h in report.hosts)
    assert report.k == 1 and not report.proven
    assert report.next_size["size"] == 2 and report.next_size["checked"] < 28


def test_zero_budget_checks_nothing_and_claims_nothing():
    report = capacity(big_cluster(5, 2), policy(), time_budget_s=0)
    assert (report.k, report.proven, report.checked_sets) == (0, False, 0)
    assert all(h.survives is None for h in report.hosts)
    assert report.next_size == {"size": 1, "checked": 0, "total": 5}


def test_a_search_cut_short_by_the_budget_proves_no_failure():
    # Round robin leaves a guest down when xen02 fails; the planner's search finds the layout.
    # With no time left for that search, the failure must not count as proof that k = 0.
    hosts = {"xen01": 6144, "xen02": 12288, "xen03": 6144}
    running = [("r0", "xen03", 2048), ("r1", "xen02", 4096)]
    down = [("d0", 1024, None), ("d1", 2048, None), ("d2", 2048, None)]
    snap = cluster(hosts, running, down)
    pol = policy(strategy="round-robin", prefer_last_owner=False)
    assert plan(snap, pol, without=["xen02"], time_budget_s=0).unplaced
    full = capacity(snap, pol, time_budget_s=60)
    assert (full.k, full.proven) == (1, True) and full.k == brute_k(snap, pol)
    # A frozen clock never reaches the deadline, so only the search's own tiny budget is cut.
    cut = capacity(snap, pol, time_budget_s=1e-9, clock=lambda: 0.0)
    assert (cut.k, cut.proven, cut.stopped) == (0, False, "time budget")
    assert [h.survives for h in cut.hosts] == [True, None, None]
    assert cut.next_size == {"size": 1, "checked": 1, "total": 3}
    assert (cut.checked_sets, cut.planned_sets, cut.pruned_sets) == (1, 1, 0)


def test_max_k_stops_early_and_says_so():
    report = capacity(big_cluster(6, 2), policy(), max_k=2, time_budget_s=60)
    assert (report.k, report.proven, report.stopped) == (2, False, "max-k")
    assert report.next_size == {"size": 3, "checked": 0, "total": 20}
    assert report.statement == "k >= 2 (not checked beyond --max-k 2)"
    assert report.checked_sets == 6 + 15


# --- per-host table -----------------------------------------------------------------------------


def test_per_host_table():
    hosts = {"xen01": 20480, "xen02": 16384, "xen03": 8192, "xen04": 8192}
    running = [("db01", "xen01", 12288), ("web01", "xen02", 2048), ("web02", "xen02", 2048)]
    snap = cluster(hosts, running, down=[("app01", 1024, "xen03")], unreachable={"xen04"})
    snap.host("xen02").domains.append(Domain("scratch", 512, 1))  # not a cluster service
    report = capacity(snap, policy(exclude=["xen03"]))
    rows = {h.host: h for h in report.hosts}
    assert [h.host for h in report.hosts] == ["xen01", "xen02", "xen03", "xen04"]
    assert (rows["xen01"].guests, rows["xen01"].ram_mib, rows["xen01"].survives) == (
        1,
        12288,
        False,
    )
    assert [d.guest for d in rows["xen01"].stay_down] == ["db01"]
    assert (rows["xen02"].guests, rows["xen02"].ram_mib, rows["xen02"].survives) == (2, 4096, True)
    assert rows["xen02"].warnings == [
        "what-if: xen02 also runs scratch (not cluster services): not replanned"
    ]
    # Excluded: it takes no guests but may still fail; unreachable: already down.
    assert rows["xen03"].status == "excluded" and rows["xen03"].survives is True
    assert rows["xen04"].status == "unreachable" and rows["xen04"].survives is None
    assert report.candidates == ["xen01", "xen02", "xen03"]
    assert (
        "xen04 unreachable: counted as failed already; its 0 guest(s) restart elsewhere "
        "in every set"
    ) in report.warnings
    # app01 (down) is counted and planned on a usable host.
    assert report.guests_down == 1 and report.guests_running == 3
    assert sum(h.planned for h in report.hosts) == 1 and rows["xen03"].planned == 0
    text = report_text(report)
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert lines["xen01"] == ["xen01", "ok", "1", "12288", "1", "NO", "db01", "(tier", "3)"]
    assert lines["xen04"] == ["xen04", "unreachable", "0", "0", "0", "-", "-"]
    assert "First to stay down (when xen01 fails):" in text


def test_an_unreachable_hosts_guests_restart_in_every_set():
    # rgmanager still says lb01 runs on xen03, which did not answer: it may be down, so its
    # guests are counted as to restart whatever else fails (the safe side).
    hosts = {"xen01": 8192, "xen02": 8192, "xen03": 8192}
    running = [("a", "xen01", 2048), ("b", "xen02", 2048), ("lb01", "xen03", 6144)]
    snap = cluster(hosts, running, unreachable={"xen03"})
    report = capacity(snap, policy())
    row = host_row(report, "xen03")
    assert (row.status, row.survives, row.guests, row.ram_mib) == ("unreachable", None, 1, 6144)
    assert report.candidates == ["xen01", "xen02"]
    assert (report.guests_running, report.guests_down) == (3, 0)
    # lb01 fits on xen01 or xen02 now; once either fails, 8192 MiB must fit in the other's 6144.
    assert (report.k, report.proven) == (0, True) and report.k == brute_k(snap, policy())
    assert {d.guest for d in report.first_to_stay_down} & {"a", "b", "lb01"}


# --- who stays down first -----------------------------------------------------------------------


def test_first_to_stay_down_are_the_least_important_and_carry_their_tier():
    hosts = {"xen01": 16384, "xen02": 16384}
    running = [
        ("db01", "xen01", 6144),
        ("web01", "xen01", 4096),
        ("web02", "xen01", 4096),
        ("db02", "xen02", 6144),
    ]
    pol = policy(priority={"db*": 1, "web*": 2})
    report = capacity(cluster(hosts, running), pol)
    assert report.k == 0 and report.hosts_failed == ["xen01"]
    # 10240 MiB free on xen02: db01 (tier 1) and one web guest fit; the other web guest does not.
    downs = report.first_to_stay_down
    assert [d.tier for d in downs] == [2] and downs[0].guest in ("web01", "web02")
    assert report.planner_proven is True
    data = report.to_dict()["first_to_stay_down"]
    assert data["hosts_failed"] == ["xen01"]
    assert data["guests"][0]["tier"] == 2 and data["guests"][0]["memory_mib"] == 4096


def test_recovered_counts_down_guests_running_only_does_not():
    hosts = {"xen01": 8192, "xen02": 8192}
    running = [("a", "xen01", 4096)]
    snap = cluster(hosts, running, down=[("b", 6144, "xen02")])
    recovered = capacity(snap, policy())
    running_only = capacity(snap, policy(), mode="running")
    assert recovered.k == 0 and recovered.hosts_failed == ["xen01"]
    assert [d.guest for d in recovered.first_to_stay_down] in (["a"], ["b"])
    assert running_only.k == 1 and running_only.proven
    assert (running_only.guests_down, running_only.guests_running) == (0, 1)
    assert "down guests not counted" in report_text(running_only)


def test_k_is_minus_one_when_the_down_guests_do_not_fit_even_now():
    snap = cluster({"xen01": 4096, "xen02": 4096}, down=[("huge", 8192, None)])
    report = capacity(snap, policy())
    assert (report.k, report.proven, report.hosts_failed) == (-1, True, [])
    assert [d.guest for d in report.first_to_stay_down] == ["huge"]
    assert report.statement.startswith("k = -1: even with no host failing")
    assert "First to stay down (now, with no host failing):" in report_text(report)
    assert capacity(snap, policy(), mode="running").k == 2


# --- JSON and errors ----------------------------------------------------------------------------


def test_json_shape():
    report = capacity(big_cluster(4, 2), policy())
    data = json.loads(json.dumps(report.to_dict()))
    assert {"k", "proven", "hosts", "first_to_stay_down", "checked_sets", "seconds"} <= set(data)
    assert isinstance(data["k"], int) and isinstance(data["seconds"], float)
    for h in data["hosts"]:
        assert {"host", "survives", "guests", "stay_down"} <= set(h)
    assert set(data["first_to_stay_down"]) >= {"hosts_failed", "guests"}


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"max_k": 0}, "--max-k: expected a whole number >= 1, got 0"),
        ({"time_budget_s": -1}, "--time-budget: expected seconds >= 0, got -1"),
        ({"time_budget_s": float("nan")}, "--time-budget: expected seconds >= 0, got nan"),
        ({"mode": "all"}, "mode: 'all' is not one of recovered, running"),
    ],
)
def test_bad_arguments_are_one_line_errors(kw, message):
    with pytest.raises(ConfigError) as err:
        capacity(big_cluster(2, 1), policy(), **kw)
    assert str(err.value) == message
