"""--expect SNAPSHOT.json: bring back what ran then (plan level, both backends)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from clitools import fab, no_traceback
from planfixtures import guest, host, snap

from xenfab.errors import ConfigError
from xenfab.plan import Policy, plan, policy_from_dict
from xenfab.plan.expect import expectation, ran_then, with_expectation
from xenfab.plan.model import CANNOT_PLAN, LIVENESS
from xenfab.plan.policy import with_run_options
from xenfab.snapshot import Snapshot, SnapshotError

TAKEN = "2026-11-30T08:00:00Z"


def _saved(tmp_path, s: Snapshot, name: str = "before.json") -> str:
    path = tmp_path / name
    path.write_text(s.to_json())
    return str(path)


def _then_rg() -> Snapshot:
    # rgmanager, the night before: web01 ran on xen02, db01 on xen01; web02 was disabled.
    s = snap(
        [host("xen01", 8192), host("xen02", 8192), host("xen03", 8192)],
        [
            guest("web01", 1024, "started", owner="xen02"),
            guest("db01", 2048, "recovering", owner="xen01"),
            guest("web02", 1024, "disabled"),
            guest("gone01", 512, "started", owner="xen03"),
        ],
    )
    s.taken_at = TAKEN
    return s


def _now_rg() -> Snapshot:
    # After the failure: everything is down; gone01's service and config were removed since.
    return snap(
        [host("xen01", 8192), host("xen02", 8192), host("xen03", 8192)],
        [
            guest("web01", 1024, "failed"),
            guest("db01", 2048, "disabled"),
            guest("web02", 1024, "disabled"),
        ],
    )


def test_ran_then_reads_the_saved_snapshots_own_vocabulary():
    ran = ran_then(_then_rg())
    assert {n: r.host for n, r in ran.items()} == {
        "web01": "xen02",
        "db01": "xen01",  # in transition: it held its owner
        "gone01": "xen03",
    }


def test_rgmanager_brings_back_what_ran_then_where_it_ran(tmp_path):
    now = _now_rg()
    policy = with_expectation(Policy(), _saved(tmp_path, _then_rg()), now)
    layout = plan(now, policy)
    placed = {a.guest: a for a in layout.assignments}
    assert sorted(placed) == ["db01", "web01"]
    assert placed["web01"].host == "xen02" and placed["web01"].why.startswith("ran here in ")
    assert placed["db01"].host == "xen01"
    skipped = {s.guest: s.reason for s in layout.skipped}
    assert skipped["web02"] == (
        f"down, but not running in {tmp_path / 'before.json'} (taken {TAKEN}): not brought back"
    )
    still = {u.guest: u for u in layout.unplaced}
    assert list(still) == ["gone01"]
    assert still["gone01"].kind == CANNOT_PLAN
    assert still["gone01"].reason.startswith("ran on xen03 in ")
    assert still["gone01"].reason.endswith(", no config now")
    # Without --expect the same facts start web02 too, and nothing is said of gone01.
    plain = plan(now, Policy())
    assert sorted(a.guest for a in plain.assignments) == ["db01", "web01", "web02"]
    assert not plain.unplaced


def test_where_it_ran_is_a_preference_not_a_constraint(tmp_path):
    now = _now_rg()
    now.hosts[1].free_mib = 512  # xen02 cannot take web01 any more
    layout = plan(now, with_expectation(Policy(), _saved(tmp_path, _then_rg()), now))
    web01 = layout.assignment("web01")
    assert web01 is not None and web01.host != "xen02"
    assert not web01.why.startswith("ran here")


def test_a_guest_running_now_is_not_brought_back_twice(tmp_path):
    now = _now_rg()
    now.guests[0] = guest("web01", 1024, "started", owner="xen01")
    layout = plan(now, with_expectation(Policy(), _saved(tmp_path, _then_rg()), now))
    assert layout.assignment("web01") is None
    assert "web01" not in {u.guest for u in layout.unplaced}
    # gone01 runs now (a domain on a live host, no config): not reported as missing either.
    now.hosts[2].domains = [dataclasses.replace(_domain("gone01"))]
    layout = plan(now, with_expectation(Policy(), _saved(tmp_path, _then_rg()), now))
    assert "gone01" not in {u.guest for u in layout.unplaced}


def _domain(name: str):
    from xenfab.snapshot import Domain

    return Domain(name, 512, 1, "-b----")


def _xl(states: dict[str, str], unreachable: tuple[str, ...] = ()) -> Snapshot:
    s = snap(
        [host("xen01", 8192), host("xen02", 8192), host("xen03", 8192)],
        [guest(n, 1024, st, config_file=f"/srv/xen/{n}.cfg") for n, st in states.items()],
    )
    s.backend, s.master, s.quorate = "xl", None, None
    for h in s.hosts:
        if h.name in unreachable:
            h.reachable = False
    for g in s.guests:
        if g.state == "running":
            g.owner, g.running_on = "xen03", ["xen03"]
            s.host("xen03").domains.append(_domain(g.name))
        if g.state == "not-ours":
            g.reason = "not linked from /etc/xen/auto on any host that answered"
    return s


def test_xl_a_not_ours_guest_that_ran_then_becomes_ours(tmp_path):
    then = _xl({"web01": "running", "calc": "running", "scratch": "not-ours", "db01": "down"})
    then.taken_at = TAKEN
    now = _xl({"web01": "down", "calc": "not-ours", "scratch": "not-ours", "db01": "down"})
    layout = plan(now, with_expectation(Policy(), _saved(tmp_path, then), now))
    placed = {a.guest: a for a in layout.assignments}
    assert sorted(placed) == ["calc", "web01"]
    assert placed["calc"].host == "xen03" and "ran here" in placed["calc"].why
    skipped = {s.guest: s.reason for s in layout.skipped}
    assert "not brought back" in skipped["scratch"] and "not brought back" in skipped["db01"]
    # The snapshot's states are not rewritten: a replan on them keeps the expectation.
    assert now.guest("calc").state == "not-ours"
    assert plan(now, Policy()).assignment("calc") is None


def test_xl_expected_guest_with_a_silent_host_waits_for_dead(tmp_path):
    then = _xl({"calc": "running", "web01": "running"})
    now = _xl({"calc": "not-ours", "web01": "down"}, unreachable=("xen02",))
    policy = with_expectation(Policy(), _saved(tmp_path, then), now)
    layout = plan(now, policy)
    assert not layout.assignments
    assert {u.guest: u.kind for u in layout.unplaced} == {"calc": LIVENESS, "web01": LIVENESS}
    dead = plan(now, policy, dead=["xen02"])
    assert sorted(a.guest for a in dead.assignments) == ["calc", "web01"]


def test_the_expectation_survives_every_policy_change_of_the_run(tmp_path):
    now = _now_rg()
    policy = with_expectation(Policy(), _saved(tmp_path, _then_rg()), now)
    again = with_run_options(policy, "pack", ["xen03"])
    assert again.expect is policy.expect
    assert "expect" not in policy.to_dict()
    assert sorted(a.guest for a in plan(now, again).assignments) == ["db01", "web01"]


def test_a_snapshot_of_another_environment_or_backend_is_refused(tmp_path):
    now = _now_rg()
    other = _then_rg()
    other.environment = "prod"
    with pytest.raises(SnapshotError, match="environment 'prod', not of 'test'"):
        with_expectation(Policy(), _saved(tmp_path, other), now)
    xl = _xl({"web01": "running"})
    with pytest.raises(SnapshotError, match="backend xl, not of rgmanager"):
        expectation(xl, now, "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SnapshotError, match="not valid JSON"):
        with_expectation(Policy(), str(bad), now)


def test_expect_is_not_a_config_key():
    with pytest.raises(ConfigError, match="policy.expect: set for one run by --expect"):
        policy_from_dict({"expect": "x.json"})


@pytest.mark.slow
def test_show_layout_takes_expect_and_a_bad_file_is_one_line(tmp_path):
    now = tmp_path / "now.json"
    s = _now_rg()
    s.environment = "lab"
    now.write_text(s.to_json())
    then = _then_rg()
    then.environment = "lab"
    saved = _saved(tmp_path, then)
    env = {"XENFAB_LAB_DIR": str(tmp_path)}
    res = fab("show-layout", "--from", str(now), "--expect", saved, "--format", "json", env=env)
    assert res.returncode == 2, res.stderr  # gone01: no config now
    doc = json.loads(res.stdout)
    assert sorted(a["guest"] for a in doc["assignments"]) == ["db01", "web01"]
    assert [u["guest"] for u in doc["unplaced"]] == ["gone01"]
    missing = tmp_path / "missing.json"
    res = fab("show-layout", "--from", str(now), "--expect", str(missing), env=env)
    no_traceback(res)
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1 and "cannot read snapshot" in res.stderr


@pytest.mark.slow
def test_from_refuses_a_snapshot_of_another_environment_or_backend(tmp_path):
    """--from applies this environment's policy and backend: another cluster's facts are refused."""
    env = {"XENFAB_LAB_DIR": str(tmp_path)}
    other = tmp_path / "other.json"
    s = _now_rg()
    s.environment = "prod-east"
    other.write_text(s.to_json())
    res = fab("show-layout", "--from", str(other), env=env)
    no_traceback(res)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"xenfab: --from {other}: a snapshot of environment 'prod-east', not of 'lab' "
        "(give --env prod-east)"
    ]
    s.environment = "lab"
    s.backend = "xl"
    other.write_text(s.to_json())
    res = fab("show-layout", "--from", str(other), env=env)
    no_traceback(res)
    assert res.returncode == 1
    assert "a snapshot of backend xl, not of rgmanager (environment lab)" in res.stderr
    res = fab("capacity", "--from", str(other), env=env)
    assert res.returncode == 1 and "a snapshot of backend xl" in res.stderr
