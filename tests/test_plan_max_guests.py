"""max_guests_per_host, the rule added as one file: greedy, the exact search (MIP), capacity.

Also the rule protocol itself: every rule declares its policy key, and the rules never import
the model (the model imports them).
"""

from __future__ import annotations

import ast
import dataclasses
import random
import time
from pathlib import Path

import pytest
from planfixtures import guest, host, snap

from xenfab.errors import ConfigError
from xenfab.plan import Policy, plan, policy_from_dict, search
from xenfab.plan.budget import Budget
from xenfab.plan.capacity import _Judge, capacity
from xenfab.plan.greedy import guest_order, place_greedy
from xenfab.plan.model import State, build_model
from xenfab.plan.rules import RULES
from xenfab.plan.rules.max_guests import MaxGuestsRule
from xenfab.snapshot import Domain, Guest, Host, Snapshot

RULES_DIR = Path(__file__).resolve().parent.parent / "xenfab" / "plan" / "rules"


def where(layout):
    return {a.guest: a.host for a in layout.assignments}


def per_host_count(layout, snapshot):
    """Guests per host after the layout: xl list's domains (dom0 aside) plus the planned ones."""
    count = {h.name: sum(d.name != "Domain-0" for d in h.domains) for h in snapshot.hosts}
    for a in layout.assignments:
        count[a.host] += 1
    return count


def running(name):
    return Domain(name, 512, 1)


# --- policy key ---------------------------------------------------------------------------------


def test_default_is_no_limit():
    assert Policy().max_guests_per_host is None
    s = snap([host("xen01", 8000), host("xen02", 8000)], [guest(f"g{i}", 1000) for i in range(5)])
    assert set(where(plan(s, policy_from_dict({"strategy": "pack"}))).values()) == {"xen01"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "policy.max_guests_per_host: input should be greater than or equal to 1, got 0"),
        (True, "policy.max_guests_per_host: input should be a valid integer"),
        ("2", "policy.max_guests_per_host: input should be a valid integer"),
    ],
)
def test_bad_values_are_one_line_errors(value, message):
    with pytest.raises(ConfigError, match="^" + message):
        policy_from_dict({"max_guests_per_host": value})


# --- greedy -------------------------------------------------------------------------------------


def test_greedy_counts_running_and_planned_guests():
    s = snap(
        [host("xen01", 8000, domains=[running("old01")]), host("xen02", 9000)],
        [guest(f"g{i}", 1000) for i in range(4)],
    )
    layout = plan(s, policy_from_dict({"strategy": "pack", "max_guests_per_host": 2}))
    assert per_host_count(layout, s) == {"xen01": 2, "xen02": 2}
    assert len(layout.assignments) == 3
    (down,) = layout.unplaced
    assert down.per_host == {
        "xen01": "max guests: 2 of 2 here (1 running, 1 planned)",
        "xen02": "max guests: 2 of 2 here (0 running, 2 planned)",
    }
    assert down.refusals["xen01"] == [
        {
            "rule": "max guests",
            "text": down.per_host["xen01"],
            "guests": 2,
            "max_guests": 2,
            "running": 1,
            "planned": 1,
        }
    ]
    # The slots went to other guests of this plan: the reason says which rule refuses now.
    assert down.reason == (
        "Need SA intervention: room taken by other tier-3 guests (proven: no layout places more)"
        " (max guests on 2 hosts)"
    )
    # The rule says its part of why a host was chosen, after the RAM figures.
    first = layout.for_host("xen01")[0]
    assert first.why == "pack: tightest fit (8000 free >= 1000 needed, guest 2 of at most 2 here)"


def test_a_guest_the_cluster_shows_started_counts_too():
    # app02 is started on xen02 per the cluster but not yet in xl list: it takes a slot.
    s = snap(
        [host("xen01", 8000), host("xen02", 8000)],
        [guest("app02", 1000, state="started", owner="xen02"), guest("a", 1000)],
    )
    layout = plan(s, policy_from_dict({"strategy": "pack", "max_guests_per_host": 1}))
    assert where(layout) == {"a": "xen01"}


def test_refusals_join_the_other_rules():
    s = snap(
        [host("xen01", 500, domains=[running("old01")])],
        [guest("a", 1000)],
    )
    layout = plan(s, policy_from_dict({"max_guests_per_host": 1, "reserve_mib": 100}))
    assert layout.unplaced[0].per_host == {
        "xen01": "RAM: room 400 = free 500 - reserve 100 < 1000 needed; "
        "max guests: 1 of 1 here (1 running, 0 planned)"
    }


# --- the exact search (MIP) ---------------------------------------------------------------------


def preferred_trap():
    """Greedy puts the two small guests on xen01 (preferred), filling its 2 slots, and then
    has a slot but no RAM on xen02 for the second big guest; moving one small guest fixes it."""
    hosts = [host("xen01", 10), host("xen02", 10)]
    guests = [guest("a1", 1), guest("a2", 1), guest("b1", 8), guest("b2", 8)]
    policy = policy_from_dict(
        {"max_guests_per_host": 2, "prefer": {"a*": ["xen01"]}, "prefer_last_owner": False}
    )
    return snap(hosts, guests), policy


def test_greedy_alone_falls_short_on_the_trap():
    s, policy = preferred_trap()
    layout = plan(s, policy, time_budget_s=0)
    assert [u.guest for u in layout.unplaced] == ["b2"]
    assert layout.unplaced[0].per_host == {
        "xen01": "max guests: 2 of 2 here (0 running, 2 planned)",
        "xen02": "RAM: 2 free < 8 needed",
    }


def test_mip_rows_carry_the_limit_and_solve_the_trap():
    pytest.importorskip("highspy")
    from xenfab.plan import mip

    s, policy = preferred_trap()
    model = build_model(s, policy)
    rule = next(r for r in model.rules if isinstance(r, MaxGuestsRule))
    state = State(model)
    place_greedy(model, state, guest_order(model), {})
    assert sum(h is None for h in state.where) == 1
    base = State(model)
    program = mip.build(model, base, list(model.guests), list(model.usable), False)
    own = rule.rows(base, program.kinds, program.columns, False)
    assert own and all(row in program.rows for row in own)
    assert {row.upper for row in own} == {2}
    solved = mip.solve(model, state, Budget(deadline=time.monotonic() + 5.0))
    assert solved is not None
    better, proven = solved
    assert better is not None and all(h is not None for h in better) and proven
    counts = [sum(1 for h in better if h == host) for host in model.usable]
    assert max(counts) <= 2


@pytest.fixture
def mip_only(monkeypatch):
    """Repair and vector packing off: what greedy leaves down is the exact search's."""
    pytest.importorskip("highspy")
    monkeypatch.setattr(search, "repair", lambda *args: 0)
    monkeypatch.setattr(search, "vector_packing", lambda *args, **kw: None)


def test_plan_places_the_trap_by_exact_search(mip_only):
    s, policy = preferred_trap()
    layout = plan(s, policy)
    assert layout.complete and layout.method == "exact" and layout.proven_optimal is True
    assert max(per_host_count(layout, s).values()) <= 2


@pytest.mark.parametrize("seed", range(6))
def test_exact_search_never_breaks_the_limit(mip_only, seed):
    rng = random.Random(seed)
    hosts = [
        Host(
            f"xen{i}",
            total_mib=16,
            free_mib=16,
            cpus=8,
            domains=[running(f"r{i}-{j}") for j in range(rng.randint(0, 2))],
        )
        for i in range(4)
    ]
    guests = [Guest(f"g{i:02d}", rng.choice([1, 2, 4, 8]), 1, "disabled") for i in range(14)]
    s = Snapshot("t", "2026-01-01T00:00:00Z", "xen0", True, hosts, guests)
    limit = rng.randint(2, 4)
    layout = plan(s, policy_from_dict({"max_guests_per_host": limit, "strategy": "pack"}))
    assert max(per_host_count(layout, s).values()) <= limit
    free = {h.name: h.free_mib for h in hosts}
    for a in layout.assignments:
        free[a.host] -= a.memory_mib
    assert min(free.values()) >= 0
    # Never fewer than greedy; and with the slots all taken, proven.
    greedy = plan(
        s, policy_from_dict({"max_guests_per_host": limit, "strategy": "pack"}), time_budget_s=0
    )
    assert len(layout.assignments) >= len(greedy.assignments)


# --- capacity -----------------------------------------------------------------------------------


def slots_cluster():
    """Three roomy hosts running two guests each: RAM never binds, guest slots do."""
    hosts = []
    guests = []
    for i in range(1, 4):
        name = f"xen0{i}"
        names = [f"v{i}{j}" for j in range(2)]
        doms = [Domain("Domain-0", 1024, 2)] + [Domain(n, 1024, 1) for n in names]
        hosts.append(Host(name, total_mib=65536, free_mib=60000, cpus=16, domains=doms))
        guests += [Guest(n, 1024, 1, "started", owner=name, running_on=[name]) for n in names]
    return Snapshot("t", "2026-01-01T00:00:00Z", "xen01", True, hosts, guests)


def test_capacity_counts_guest_slots():
    s = slots_cluster()
    assert capacity(s, Policy()).k == 2  # RAM alone: any two may fail
    report = capacity(s, policy_from_dict({"max_guests_per_host": 3}))
    # One failure: its 2 guests take the one free slot on each survivor. Two: 4 guests, 1 slot.
    assert (report.k, report.proven) == (1, True)
    assert all(h.survives for h in report.hosts)
    assert len(report.hosts_failed) == 2
    assert "max guests" in report.first_to_stay_down[0].reason


def test_capacity_bound_of_the_rule_prunes_and_never_condemns_a_savable_set():
    s = slots_cluster()
    policy = policy_from_dict({"max_guests_per_host": 3})
    base = plan(s, policy)
    judge = _Judge(s, policy, base, [], time.monotonic() + 60, time.monotonic)
    names = [h.name for h in s.hosts]
    for name in names:
        judge.remember(name, plan(s, policy, without=[name]))
    assert not judge.cannot(["xen01"])
    assert judge.cannot(["xen01", "xen02"])
    assert plan(s, policy, without=["xen01", "xen02"]).unplaced
    # The same figures with a limit that holds everyone: the bound stays quiet.
    roomy = dataclasses.replace(policy, max_guests_per_host=6)
    judge = _Judge(s, roomy, plan(s, roomy), [], time.monotonic() + 60, time.monotonic)
    for name in names:
        judge.remember(name, plan(s, roomy, without=[name]))
    assert not judge.cannot(["xen01", "xen02"])
    assert not plan(s, roomy, without=["xen01", "xen02"]).unplaced


# --- the protocol -------------------------------------------------------------------------------


def test_every_rule_declares_an_order_and_a_real_policy_key():
    fields = {f.name for f in dataclasses.fields(Policy)}
    assert MaxGuestsRule in RULES
    assert [r.order for r in RULES] == sorted(r.order for r in RULES)
    for rule in RULES:
        assert rule.name
        assert rule.policy_field is None or rule.policy_field in fields, rule


def test_the_rules_never_import_the_model():
    for path in RULES_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert not module.endswith("model"), f"{path.name} imports {module}"
                assert module not in ("..", "...plan"), f"{path.name} imports {module}"
