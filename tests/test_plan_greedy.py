"""Greedy strategies, skipped guests, unplaced reasons and the Layout JSON."""

from __future__ import annotations

import json

from planfixtures import guest, host, snap

from xenfab.plan import Policy, plan, policy_from_dict
from xenfab.snapshot import Domain


def where(layout):
    return {a.guest: a.host for a in layout.assignments}


def test_round_robin_rotates_over_hosts_largest_first():
    s = snap(
        [host("xen01", 8000, 16000), host("xen02", 8000, 32000), host("xen03", 8000, 16000)],
        [guest(f"g{i}", 1000) for i in range(4)],
    )
    layout = plan(s, Policy(prefer_last_owner=False))
    # Order by total RAM (xen02 first), then by name; guest i starts at host i mod 3.
    assert where(layout) == {"g0": "xen02", "g1": "xen01", "g2": "xen03", "g3": "xen02"}
    assert layout.complete and layout.method == "greedy" and layout.proven_optimal is True
    assert layout.assignments[0].why.startswith("round-robin: first host with room in rotation")


def test_round_robin_compares_numbers_not_strings():
    # The seed compared "900" > "10000" as strings; 900 MiB must not fit a 10000 MiB guest check.
    s = snap([host("xen01", 900), host("xen02", 10000)], [guest("big", 5000)])
    assert where(plan(s, Policy())) == {"big": "xen02"}


def test_round_robin_tries_every_host_in_turn():
    s = snap(
        [host("xen01", 1000), host("xen02", 1000), host("xen03", 6000)],
        [guest("a", 500), guest("b", 4000)],
    )
    got = where(plan(s, Policy()))
    assert got["b"] == "xen03"


def test_most_free_picks_the_roomiest_host():
    s = snap(
        [host("xen01", 4000), host("xen02", 9000), host("xen03", 6000)],
        [guest("a", 2000), guest("b", 2000), guest("c", 2000)],
    )
    layout = plan(s, policy_from_dict({"strategy": "most-free"}))
    assert where(layout) == {"a": "xen02", "b": "xen02", "c": "xen03"}
    assert layout.assignments[0].why == (
        "most-free: most free RAM of the hosts that fit (9000 free >= 2000 needed)"
    )


def test_most_free_ties_broken_by_name():
    s = snap([host("xen02", 4000), host("xen01", 4000)], [guest("a", 1000)])
    assert where(plan(s, policy_from_dict({"strategy": "most-free"}))) == {"a": "xen01"}


def test_skipped_guests_and_reasons():
    s = snap(
        [host("xen01", 8000, domains=[Domain("ghost", 1024, 1)]), host("xen02", 8000)],
        [
            guest("up", 1000, state="started", owner="xen02"),
            guest("boot", 1000, state="starting", owner="xen01"),
            guest("twice", 1000, running_on=["xen02"]),
            guest("ghost", 1024),  # rgmanager says disabled but xl list shows it on xen01
            guest("broken", 1000, plannable=False, reason="no config file"),
            guest("stopped", 1000, state="stopped"),
            guest("nomem", 0),
            guest("down", 1000),
        ],
    )
    layout = plan(s, Policy())
    reasons = {k.guest: k.reason for k in layout.skipped}
    # Skipped means only "not down" (or not ours): a down guest we cannot plan stays down.
    assert reasons == {
        "up": "already started on xen02",
        "boot": "starting on xen01",
        "twice": "domain running on xen02",
        "ghost": "domain running on xen01",
    }
    assert {u.guest: (u.kind, u.reason) for u in layout.unplaced} == {
        "broken": ("cannot-plan", "no config file"),
        "nomem": ("cannot-plan", "memory size unknown"),
    }
    assert sorted(a.guest for a in layout.assignments) == ["down", "stopped"]


def test_unplaced_reason_and_per_host():
    s = snap(
        [host("xen01", 8192), host("xen02", 4096), host("xen03", 1, reachable=False)],
        [guest("huge", 16384)],
    )
    layout = plan(s, Policy())
    assert not layout.complete
    (u,) = layout.unplaced
    assert u.reason == (
        "Need SA intervention: no host has room (largest free 8192 MiB < 16384 MiB needed)"
    )
    assert u.per_host == {
        "xen01": "RAM: 8192 free < 16384 needed",
        "xen02": "RAM: 4096 free < 16384 needed",
        "xen03": "unreachable",
    }


def test_unreachable_host_never_used():
    s = snap([host("xen01", 64000, reachable=False), host("xen02", 4000)], [guest("a", 1000)])
    layout = plan(s, Policy())
    assert where(layout) == {"a": "xen02"}


def test_to_dict_is_json_with_documented_keys():
    s = snap([host("xen01", 4000)], [guest("a", 1000), guest("b", 9000), guest("c", 1, "started")])
    data = json.loads(json.dumps(plan(s, Policy()).to_dict()))
    for key in ("assignments", "skipped", "unplaced", "hosts", "strategy", "method"):
        assert key in data
    assert {"proven_optimal", "warnings"} <= set(data)
    assert set(data["assignments"][0]) == {
        "guest",
        "host",
        "memory_mib",
        "vcpus",
        "tier",
        "why",
        "state",
        "takeover_from",
        "expected_boot_s",
        "expected_start_s",
        "expected_ready_s",
    }
    assert {"expected_all_up_s", "expected_tiers_s"} <= set(data)
    assert {"guest", "state", "reason"} == set(data["skipped"][0])
    assert {"guest", "memory_mib", "reason", "per_host"} <= set(data["unplaced"][0])
    assert {"name", "free_mib_before", "free_mib_after"} <= set(data["hosts"][0])
    assert data["hosts"][0]["free_mib_after"] == 3000


def test_for_host():
    s = snap([host("xen01", 4000), host("xen02", 4000)], [guest("a", 1000), guest("b", 1000)])
    layout = plan(s, Policy())
    assert [a.guest for a in layout.for_host("xen01")] == ["a"]
    assert [a.guest for a in layout.for_host("xen02")] == ["b"]


def test_duplicate_guest_entry_is_never_placed_twice():
    s = snap([host("xen01", 8000), host("xen02", 8000)], [guest("a", 1000), guest("a", 1000)])
    layout = plan(s, Policy())
    # Which entry is right is unknown: neither is started, the guest stays down, said once.
    assert layout.assignments == [] and layout.skipped == []
    assert [(u.guest, u.reason) for u in layout.unplaced] == [
        ("a", "2 entries for a in the snapshot")
    ]


def test_explain_and_the_layout_table_agree_and_name_the_reserve():
    # Issue 24: --explain said "7952 free" where the table said 10000 for the same host.
    from xenfab.cluster import backend
    from xenfab.show import layout_text

    s = snap([host("xen01", 10000)], [guest("a", 4000), guest("b", 3000), guest("c", 4000)])
    layout = plan(s, policy_from_dict({"reserve_mib": 2048, "strategy": "pack"}))
    assert [a.why for a in layout.assignments] == [
        "pack: tightest fit (room 7952 = free 10000 - reserve 2048 >= 4000 needed)",
        "pack: tightest fit (room 3952 = free 6000 - reserve 2048 >= 3000 needed)",
    ]
    (use,) = layout.hosts
    assert (use.free_mib_before, use.free_mib_after, use.reserve_mib) == (10000, 3000, 2048)
    (down,) = layout.unplaced
    assert down.per_host == {"xen01": "RAM: room 952 = free 3000 - reserve 2048 < 4000 needed"}
    assert down.refusals["xen01"][0]["free_mib"] == use.free_mib_after
    assert down.reason == (
        "Need SA intervention: room taken by other tier-3 guests (proven: no layout places more) "
        "(largest room now 952 MiB = free 3000 - reserve 2048, 4000 MiB needed)"
    )
    text = layout_text(layout.to_dict(), s, backend("rgmanager"), explain=True)
    assert "10000 -> 3000" in text
    assert "room = free - reserve_mib (2048 MiB kept free on every host)" in text
    assert "room 7952 = free 10000 - reserve 2048 >= 4000 needed" in text
    # Without a reserve, free and room agree: the texts say free, and no reserve line.
    plain = plan(s, policy_from_dict({"strategy": "pack"}))
    assert plain.assignments[0].why == "pack: tightest fit (10000 free >= 4000 needed)"
    assert "reserve_mib" not in layout_text(plain.to_dict(), s, backend("rgmanager"))
