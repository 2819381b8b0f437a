"""Time to all-up: expected start times from the audit log, the schedule model, the objective."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace

import pytest
from planfixtures import guest, host, snap

from xenfab.config import StartPolicy
from xenfab.errors import ConfigError
from xenfab.history import start_history, start_samples
from xenfab.plan import plan, policy_from_dict
from xenfab.plan.timing import (
    ESTIMATE,
    HISTORY,
    SIZE_CLASS,
    Estimate,
    Timing,
    expected_times,
    makespan,
    simulate,
    size_class,
)
from xenfab.show import expected_lines


def audit_line(action, guest, env="lab", run="r1", **kw):
    return json.dumps({"environment": env, "run": run, "action": action, "guest": guest, **kw})


# --- the audit log -------------------------------------------------------------------------------


def test_samples_prefer_ready_s_and_keep_only_the_environment(tmp_path):
    log = tmp_path / "audit.jsonl"
    lines = [
        audit_line("intent", "a", host="xen01"),
        audit_line("start", "a", outcome="accepted", seconds=2.0),
        audit_line("ready", "a", host="xen01", ready_s=7.5),  # h21ready's line wins
        audit_line("start", "b", outcome="accepted", seconds=3.0),
        audit_line("start", "c", outcome="failed", seconds=1.0),  # not a start that worked
        audit_line("start", "a", run="r2", outcome="accepted", seconds=4.0),
        audit_line("start", "a", env="prod", outcome="accepted", seconds=99.0),
        "not json",
        audit_line("start", "b", run="r3", outcome="accepted", seconds=True),  # not a number
    ]
    t = "2026-12-07T10:00:{:02d}.000+00:00"
    lines += [
        audit_line("intent", "d", run="r4", time=t.format(1)),
        audit_line("start", "d", run="r4", outcome="accepted", seconds=0.2),
        audit_line("intent", "d", run="r4", time=t.format(10)),  # a retry: its last intent
        audit_line("result", "d", run="r4", outcome="started", time=t.format(16)),
    ]
    log.write_text("\n".join(lines) + "\n")
    # ready_s first; else seen started after the last intent; else the command's seconds.
    assert start_samples(str(log), "lab") == {"a": [7.5, 4.0], "b": [3.0], "d": [6.0]}
    assert start_samples(str(tmp_path / "missing.jsonl"), "lab") == {}


def test_gap_between_start_commands_is_the_median_within_runs(tmp_path):
    log = tmp_path / "audit.jsonl"
    at = "2026-12-07T10:00:{:06.3f}+00:00"
    lines = [
        audit_line("intent", f"g{i}", time=at.format(t)) for i, t in enumerate((0, 0.2, 0.4, 5))
    ]
    # Another run, much later: the gap between runs is not a gap between starts.
    lines += [audit_line("intent", "h", run="r2", time=at.format(40)), "\x00garbage"]
    log.write_text("\n".join(lines) + "\n")
    samples, gap = start_history(str(log), "lab")
    assert samples == {} and gap == 0.2
    assert start_history(str(tmp_path / "none"), "lab") == ({}, 0.0)


def test_estimates_own_median_then_size_class_then_default():
    guests = [
        guest("a", 1000),
        guest("b", 900, maxmem_mib=1024),
        guest("big", 8000, maxmem_mib=16384),
        guest("c", 3000),
    ]
    samples = {"a": [10.0, 30.0, 20.0], "c": [5.0], "zzz": [1.0]}
    est = expected_times(guests, samples, boot_estimate_s=45)
    assert est["a"] == Estimate(20.0, HISTORY, 3)
    assert est["b"] == Estimate(20.0, SIZE_CLASS, 1)  # a is its class's only guest with starts
    assert est["c"].source == HISTORY and est["c"].seconds == 5.0
    assert est["big"] == Estimate(45.0, ESTIMATE)
    assert [size_class(m) for m in (512, 1024, 1025, 70000)] == ["<=1G", "<=1G", "<=2G", ">64G"]


def test_boot_estimate_is_a_start_key():
    assert StartPolicy().boot_estimate_s == 60.0


# --- the model -----------------------------------------------------------------------------------


def test_makespan_is_list_scheduling_longest_first():
    assert makespan([], 2) == 0
    assert makespan([5.0] * 10, 2) == 25.0
    assert makespan([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0  # LPT: 3+2+2 / 3+2


def test_simulate_respects_both_caps_and_runs_tiers_in_turn():
    timing = Timing(per_host=2, in_flight=3)
    jobs = [(f"a{i}", "h1", 1, 10.0) for i in range(4)] + [("b0", "h2", 1, 10.0)]
    jobs += [("t2", "h2", 2, 5.0)]
    sched = simulate(jobs, timing)
    starts = sorted(sched.start_s.values())
    # At any instant at most 3 in flight and 2 per host: events compared, not wall time.
    for t in starts:
        live = [g for g in sched.start_s if sched.start_s[g] <= t < sched.ready_s[g]]
        assert len(live) <= 3
        assert sum(1 for g in live if g.startswith("a")) <= 2
    assert sched.tiers_s[1] == 20.0  # 5 starts of 10 s, 3 at a time, h1 2 at a time
    assert sched.start_s["t2"] == sched.tiers_s[1]
    assert sched.all_up_s == sched.ready_s["t2"] == 25.0


def test_a_start_delay_holds_the_next_tier_as_the_engine_does():
    jobs = [("db", "h1", 1, 10.0), ("web", "h2", 1, 4.0), ("app", "h1", 2, 5.0)]
    plain = simulate(jobs, Timing())
    gated = simulate(jobs, Timing(), gates={"web": 30.0, "db": 2.0})
    assert plain.start_s["app"] == 10.0 and plain.all_up_s == 15.0
    # web is up at 4 s and holds tier 2 for 30 s more; db's 2 s end sooner (at 12 s).
    assert gated.tiers_s[1] == 10.0
    assert gated.start_s["app"] == 34.0 and gated.all_up_s == 39.0
    # ... and one in the last tier holds nothing back.
    assert simulate(jobs, Timing(), gates={"app": 60.0}).all_up_s == 15.0


def test_the_plan_carries_the_managers_start_delays_into_its_schedule():
    hosts = [host("xen01", 64000), host("xen02", 64000)]
    db, web = guest("db01", 1000), guest("web01", 1000)
    timing = Timing(boot_estimate_s=5.0)
    pol = replace(policy_from_dict({"priority": {"db*": 1, "web*": 2}}), timing=timing)
    plain = plan(snap(hosts, [db, web]), pol)
    gated = plan(snap(hosts, [replace(db, gate_s=20.0), web]), pol)
    start = {
        p: {a.guest: a.expected_start_s for a in lay.assignments}
        for p, lay in (("plain", plain), ("gated", gated))
    }
    assert start["plain"]["web01"] == 5.0 and plain.expected_all_up_s == 10.0
    assert start["gated"]["web01"] == 25.0 and gated.expected_all_up_s == 30.0


def test_dispatch_gap_spaces_the_start_commands():
    jobs = [(f"g{i}", f"h{i % 4}", 1, 5.0) for i in range(8)]
    free = simulate(jobs, Timing(per_host=2, in_flight=100))
    paced = simulate(jobs, Timing(per_host=2, in_flight=100, dispatch_s=0.5))
    assert free.all_up_s == 5.0
    sent = sorted(paced.start_s.values())
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(sent, sent[1:], strict=False))
    assert paced.all_up_s == 3.5 + 5.0  # the 8th command leaves 7 gaps after the first


# --- the objective -------------------------------------------------------------------------------


def crowded(n_hosts=4, per_owner=8):
    """Every guest's last owner is xen00: greedy (last owner first) crowds it."""
    hosts = [host(f"xen{i:02d}", 64000) for i in range(n_hosts)]
    guests = [guest(f"g{i:02d}", 1000, last_owner="xen00") for i in range(per_owner)]
    return snap(hosts, guests)


def where(layout):
    return {a.guest: a.host for a in layout.assignments}


def test_all_up_spreads_the_starts_and_keeps_what_it_can_on_the_last_owner():
    s = crowded()
    timing = Timing(per_host=2, in_flight=100, boot_estimate_s=5)
    last = plan(s, replace(policy_from_dict({"objective": "last-owner"}), timing=timing))
    up = plan(s, replace(policy_from_dict({}), timing=timing))
    assert set(where(last).values()) == {"xen00"}
    assert last.expected_all_up_s == 20.0  # 8 starts, 2 at a time, 5 s each
    assert up.expected_all_up_s == 5.0  # 2 per host on 4 hosts
    assert sum(h == "xen00" for h in where(up).values()) == 2  # ties go to the last owner
    moved = [a for a in up.assignments if a.host != "xen00"]
    said = "time to all-up: moved from xen00 (its last owner): tier 3 all up in 5 s, not 20 s ("
    assert all(a.why.startswith(said) for a in moved), moved[0].why
    assert max(a.expected_ready_s for a in up.assignments) == up.expected_all_up_s


def test_all_up_never_places_fewer_and_is_optimal_on_small_cases():
    """Exhaustive check: on tiny clusters the pass reaches the best all-up over every layout."""
    timing = Timing(per_host=1, in_flight=100)
    for sizes in [(3000, 1000, 1000, 1000), (2000, 2000, 1000, 1000, 1000)]:
        est = {f"g{i}": Estimate(float(10 + 5 * i), ESTIMATE) for i in range(len(sizes))}
        t = replace(timing, estimates=est)
        hosts = [host("xen00", 4000), host("xen01", 3000), host("xen02", 2000)]
        guests = [guest(f"g{i}", m, last_owner="xen00") for i, m in enumerate(sizes)]
        layout = plan(snap(hosts, guests), replace(policy_from_dict({}), timing=t))
        assert layout.complete
        free = {h.name: h.free_mib for h in hosts}
        best = None
        for combo in itertools.product(free, repeat=len(sizes)):
            use = dict.fromkeys(free, 0)
            for h, m in zip(combo, sizes, strict=True):
                use[h] += m
            if any(use[h] > free[h] for h in free):
                continue
            span = max(
                sum(est[f"g{i}"].seconds for i, h in enumerate(combo) if h == name) for name in free
            )
            best = span if best is None else min(best, span)
        assert layout.expected_all_up_s == best


def test_objective_is_a_checked_key():
    with pytest.raises(ConfigError, match="policy.objective"):
        policy_from_dict({"objective": "fastest"})
    with pytest.raises(ConfigError, match="policy.timing"):
        policy_from_dict({"timing": {}})


def test_same_input_same_plan():
    s = crowded(5, 13)
    policy = replace(policy_from_dict({}), timing=Timing(boot_estimate_s=7))
    first = plan(s, policy).to_dict()
    assert all(plan(s, policy).to_dict() == first for _ in range(3))


def test_table_lines_fit_and_say_each_tier():
    layout = {
        "expected_all_up_s": 3725.0,
        "expected_tiers_s": {"1": 25.0, "2": 3725.0},
        "expected_sources": {"estimate": 1230, "history": 45600, "size class": 78900},
        "start_caps": {"per_host": 2, "in_flight": 8},
    }
    lines = expected_lines(layout)
    assert lines[0].startswith("Expected all-up: 1h02m05s after the first start")
    assert [line.strip() for line in lines[1:]] == [
        "tier 1 all up at 25.0s",
        "tier 2 all up at 1h02m05s",
    ]
    assert all(len(line) <= 100 for line in lines)
    assert expected_lines({"expected_all_up_s": None}) == []


def test_pack_keeps_its_empty_hosts_and_prefer_stays():
    hosts = [host("xen00", 8000), host("xen01", 64000), host("xen02", 64000)]
    guests = [guest(f"g{i}", 1000) for i in range(6)]
    timing = Timing(per_host=2, in_flight=100, boot_estimate_s=5)
    packed = plan(
        snap(hosts, guests), replace(policy_from_dict({"strategy": "pack"}), timing=timing)
    )
    assert set(where(packed).values()) == {"xen00"}  # pack filled one host; it stays the only one
    assert packed.expected_all_up_s == 15.0
    pinned = policy_from_dict({"prefer": {"g*": ["xen00"]}})
    kept = plan(snap(hosts, guests), replace(pinned, timing=timing))
    assert set(where(kept).values()) == {"xen00"}  # admin intent is not moved for time


def test_near_equal_times_count_as_ties_for_the_last_owner():
    """Estimates are noisy medians: 5.0-5.2 s boots keep as many last owners as equal 5 s boots,
    for an all-up within a step (2%) of theirs."""
    rng = random.Random(4)
    hosts = [host(f"xen{i:02d}", 64000) for i in range(5)]
    owners = [f"xen0{min(int(rng.expovariate(0.7)), 4)}" for _ in range(40)]
    guests = [guest(f"g{i:02d}", 1000, last_owner=o) for i, o in enumerate(owners)]
    s = snap(hosts, guests)
    flat = Timing(per_host=2, in_flight=100, boot_estimate_s=5.0)
    est = {g.name: Estimate(round(rng.uniform(5.0, 5.2), 2), HISTORY, 3) for g in guests}
    out = []
    for timing in (flat, replace(flat, estimates=est)):
        layout = plan(s, replace(policy_from_dict({}), timing=timing))
        sticky = sum(1 for a in layout.assignments if s.guest(a.guest).last_owner == a.host)
        out.append((layout.expected_all_up_s, sticky))
    (flat_s, flat_sticky), (noisy_s, noisy_sticky) = out
    assert flat_sticky < len(guests)  # the time pass did move guests off their last owner
    assert noisy_sticky == flat_sticky
    assert noisy_s <= flat_s * 1.2 * 1.02 + 0.1  # boots up to 1.2x longer, within a step


def test_an_audit_log_that_is_not_a_file_gives_no_history_and_ends():
    # /dev/full reads zeros for ever: the planner must not read the log to its "end".
    samples, _gap = start_history("/dev/full", "lab")
    assert samples == {}
    assert start_samples("/dev/null", "lab") == {}
