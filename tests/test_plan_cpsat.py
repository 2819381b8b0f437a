"""The optional CP-SAT path (ortools); skipped when ortools is not installed."""

from __future__ import annotations

import random

import pytest
from test_plan_properties import check_layout  # tests/ is on sys.path under pytest

from xenfab.plan import cpsat, plan, policy_from_dict, search
from xenfab.snapshot import Guest, Host, Snapshot


def test_available_matches_import():
    try:
        import ortools  # noqa: F401
    except ImportError:
        assert not cpsat.available()
    else:
        assert cpsat.available()


@pytest.fixture
def only_cpsat(monkeypatch):
    """Make CP-SAT the exact search and the branch and bound give up at once."""
    pytest.importorskip("ortools")
    monkeypatch.setattr(search, "SOLVER", "cpsat")
    monkeypatch.setattr(search, "vector_packing", lambda m, st, deadline: None)
    monkeypatch.setattr(search, "exact", lambda m, st, deadline: search.ExactResult(None, False, 0))


def instance(seed, n_hosts=4):
    rng = random.Random(seed)
    hosts = [
        Host(f"xen{i}", total_mib=10, free_mib=10, cpus=4, domain=f"r{i % 2}")
        for i in range(n_hosts)
    ]
    sizes = []
    for _ in hosts:
        left = 10
        while left:
            x = min(left, rng.randint(2, 6))
            sizes.append(x)
            left -= x
    rng.shuffle(sizes)
    guests = [
        Guest(f"g{i:02d}", memory_mib=x, vcpus=1, state="failed") for i, x in enumerate(sizes)
    ]
    return Snapshot("cp", "now", None, True, hosts, guests)


@pytest.mark.parametrize("seed", range(6))
def test_cpsat_solves_and_keeps_every_rule(only_cpsat, seed):
    snap = instance(seed)
    pol = {
        "strategy": "most-free",
        "vcpu_ratio": 1.5,
        "anti_affinity": {"a": {"members": ["g0[0-3]"], "spread": "domain"}},
        "priority": {"g1*": 1},
    }
    layout = plan(snap, policy_from_dict(pol))
    check_layout(snap, pol, [], {}, layout)
    if layout.method == "exact":
        assert any("CP-SAT" in a.why for a in layout.assignments)
    assert layout.proven_optimal in (True, False)


def test_cpsat_fills_a_tight_instance(only_cpsat):
    snap = instance(1, n_hosts=6)
    layout = plan(snap, policy_from_dict({"strategy": "most-free"}))
    assert layout.complete and layout.proven_optimal is True
