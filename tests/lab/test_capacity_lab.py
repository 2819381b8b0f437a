"""`fab capacity` end to end: the real CLI, over real SSH, against the rehearsal lab."""

from __future__ import annotations

import json

import pytest
from clitools import ROOT, no_traceback
from clitools import fab as run_fab

from xenfab.config import load_config
from xenfab.plan.capacity import capacity
from xenfab.snapshot import Snapshot

pytestmark = pytest.mark.lab


def fab(*args: str, env: dict | None = None):
    """The real `fab` CLI (tests/clitools.py); no run of it may print a traceback."""
    res = run_fab(*args, env=env)
    no_traceback(res)
    return res


def lab_policy():
    """The policy `fab capacity` uses for the lab: the repository config, merged like a task."""
    cfg = load_config(str(ROOT / "fabfile_config.yaml"))
    return cfg.environment("lab").policy


def test_capacity_json_matches_the_lab_and_replays_offline(fresh_lab, tmp_path):
    res = fab("capacity", "--format", "json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert isinstance(report["k"], int) and report["k"] >= -1
    assert isinstance(report["proven"], bool) and isinstance(report["seconds"], float)
    assert isinstance(report["checked_sets"], int) and report["checked_sets"] >= 6
    assert set(report["first_to_stay_down"]) >= {"hosts_failed", "guests"}
    status = fresh_lab.status()
    assert [h["host"] for h in report["hosts"]] == sorted(h["name"] for h in status["hosts"])
    for h in report["hosts"]:
        assert {"host", "survives", "guests", "stay_down"} <= set(h)
        owned = [
            s for s in status["services"] if s["state"] == "started" and s["owner"] == h["host"]
        ]
        assert h["guests"] == len(owned), h["host"]
        assert h["survives"] == (not h["stay_down"])
    # The default scenario: every single host may fail; the failing set named has k+1 hosts.
    assert all(h["survives"] for h in report["hosts"]) and report["k"] >= 1
    if report["proven"]:
        assert len(report["first_to_stay_down"]["hosts_failed"]) == report["k"] + 1
        assert report["first_to_stay_down"]["guests"]
    # The same facts give the same report offline, with no lab to reach.
    snap = tmp_path / "snap.json"
    snap.write_text(fab("facts", "--format", "json").stdout)
    offline = fab(
        "capacity", "--format", "json", "--from", str(snap), env={"XENFAB_LAB_DIR": str(tmp_path)}
    )
    assert offline.returncode == 0, offline.stderr
    again = json.loads(offline.stdout)
    assert (again["k"], again["proven"]) == (report["k"], report["proven"])
    assert again["first_to_stay_down"] == report["first_to_stay_down"]
    # And the pure core agrees with the CLI.
    pure = capacity(Snapshot.load(str(snap)), lab_policy())
    assert (pure.k, pure.proven) == (report["k"], report["proven"])


def test_capacity_table_and_options(fresh_lab):
    res = fab("capacity")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("N+k for lab: recovered cluster")
    for name in ("xen01", "xen06", "host fails", "First to stay down"):
        assert name in res.stdout
    capped = fab("capacity", "--format", "json", "--running-only", "--max-k", "1")
    assert capped.returncode == 0, capped.stderr
    data = json.loads(capped.stdout)
    assert (data["mode"], data["k"], data["proven"], data["stopped"]) == (
        "running",
        1,
        False,
        "max-k",
    )
    assert data["guests_down"] == 0 and data["checked_sets"] == 6
    bad = fab("capacity", "--max-k", "zero")
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "xenfab: --max-k: input should be a valid integer, unable to parse string as an integer, "
        "got 'zero'"
    )


def test_capacity_live_with_a_host_down_reports_it_as_lost(fresh_lab, tmp_path):
    fresh_lab.inject("host-down", "xen03")
    try:
        res = fab("capacity", "--format", "json")
        snap = tmp_path / "snap.json"
        snap.write_text(fab("facts", "--format", "json").stdout)
    finally:
        fresh_lab.inject("host-up", "xen03")
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    live = json.loads(res.stdout)
    offline = fab("capacity", "--format", "json", "--from", str(snap))
    assert offline.returncode == 0, offline.stderr
    data = json.loads(offline.stdout)
    for report in (live, data):
        row = next(h for h in report["hosts"] if h["host"] == "xen03")
        assert (row["status"], row["survives"]) == ("unreachable", None)
        assert "xen03" not in report["candidates"]
        assert any(w.startswith("snapshot: ") and "xen03" in w for w in report["warnings"])
    assert live["k"] == data["k"] and live["hosts"] == data["hosts"]
    # --dead on a healthy cluster: the same report as with the host down.
    dead = json.loads(fab("capacity", "--format", "json", "--dead", "xen03").stdout)
    assert dead["k"] == data["k"] and dead["candidates"] == data["candidates"]
    assert [(h["host"], h["status"]) for h in dead["hosts"]] == [
        (h["host"], h["status"]) for h in data["hosts"]
    ]
    typo = fab("capacity", "--dead", "xen3")
    assert typo.returncode == 1 and "--dead: no host xen3" in typo.stderr


def test_capacity_strategy_and_exclude_like_show_layout(fresh_lab, tmp_path):
    snap = tmp_path / "snap.json"
    snap.write_text(fab("facts", "--format", "json").stdout)
    base = json.loads(fab("capacity", "--format", "json", "--from", str(snap)).stdout)
    # Five of six hosts in maintenance: a failed host's guests may only go to xen01.
    others = ",".join(f"xen0{i}" for i in range(2, 7))
    res = fab("capacity", "--format", "json", "--from", str(snap), "--exclude", others)
    assert res.returncode == 0, res.stderr
    excluded = json.loads(res.stdout)
    policy = lab_policy()
    policy.exclude = sorted(set(policy.exclude) | {f"xen0{i}" for i in range(2, 7)})
    pure = capacity(Snapshot.load(str(snap)), policy)
    assert (excluded["k"], excluded["proven"]) == (pure.k, pure.proven)
    assert excluded["k"] < base["k"]
    packed = fab("capacity", "--format", "json", "--from", str(snap), "--strategy", "pack")
    assert packed.returncode == 0, packed.stderr
    bad = fab("capacity", "--from", str(snap), "--strategy", "fastest")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("xenfab: --strategy: input should be 'round-robin'")
