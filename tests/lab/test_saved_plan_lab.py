"""Saved plans end to end (issue 25): show-layout --save, then start-all/start-host --plan."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from clitools import fab, no_traceback

pytestmark = pytest.mark.lab


def _save(lab, tmp_path, name="plan.json"):
    path = tmp_path / name
    res = fab("show-layout", "--save", str(path), "--format", "json")
    no_traceback(res)
    assert res.returncode in (0, 2), res.stderr
    doc = json.loads(path.read_text())
    assert doc["plan_id"] == json.loads(res.stdout)["plan_id"]
    assert f"plan {doc['plan_id']} saved to {path}" in res.stderr
    return path, doc


def _refused(res, *needles):
    no_traceback(res)
    assert res.returncode == 3, res.stderr + res.stdout
    last = res.stderr.strip().splitlines()[-1]
    assert "not run" in last and "preview again (fab show-layout --save" in last
    for needle in needles:
        assert needle in res.stderr, res.stderr


def test_save_then_plan_runs_exactly_the_saved_assignments_and_audits_the_id(fresh_lab, tmp_path):
    path, doc = _save(fresh_lab, tmp_path)
    planned = {a["guest"]: a["host"] for a in doc["layout"]["assignments"]}
    assert planned
    table = fab("show-layout")
    assert f"Plan {doc['plan_id']}" in table.stdout  # the same facts: the same plan, shown
    audit = fresh_lab.dir / "audit.jsonl"
    # The lab's audit log outlives a reseed: only this run's lines are read below.
    seen = len(audit.read_text().splitlines()) if audit.exists() else 0
    res = fab("start-all", "--plan", str(path), "--yes")
    no_traceback(res)
    assert res.returncode == 2, res.stderr  # legacy07 stays down, as planned
    assert f"Plan {doc['plan_id']} (saved: {path})" in res.stdout
    started = {s["guest"]: s["host"] for s in fresh_lab.status()["starts"]}
    assert started == planned
    lines = [json.loads(x) for x in audit.read_text().splitlines()[seen:]]
    intents = [x for x in lines if x["action"] == "intent"]
    assert {x["guest"] for x in intents} == set(planned)
    assert {x.get("plan_id") for x in intents} == {doc["plan_id"]}


def test_start_host_plan_starts_only_that_hosts_saved_guests(fresh_lab, tmp_path):
    path, doc = _save(fresh_lab, tmp_path)
    on_xen06 = {a["guest"] for a in doc["layout"]["assignments"] if a["host"] == "xen06"}
    res = fab("start-host", "xen06", "--plan", str(path), "--yes")
    assert res.returncode == 2, res.stderr
    assert {s["guest"] for s in fresh_lab.status()["starts"]} == on_xen06


def test_changes_since_the_preview_refuse_with_each_named(fresh_lab, tmp_path):
    path, doc = _save(fresh_lab, tmp_path)
    assignments = doc["layout"]["assignments"]
    first, other = (
        assignments[0],
        next(a for a in assignments if a["host"] != assignments[0]["host"]),
    )
    # A guest started behind our back, on a host of the plan.
    fresh_lab.inject("start-behind", first["guest"], other["host"])
    res = fab("start-all", "--plan", str(path), "--yes")
    _refused(
        res,
        f"guest {first['guest']}: running on - -> {other['host']}",
        f"host {other['host']}: running domains changed: +{first['guest']}",
    )
    assert fresh_lab.status()["starts"] == []


def test_a_host_gone_or_its_ram_reduced_refuses(fresh_lab, tmp_path):
    path, doc = _save(fresh_lab, tmp_path)
    hosts = sorted({a["host"] for a in doc["layout"]["assignments"]})
    gone, squeezed = hosts[0], hosts[-1]
    # Free RAM reduced on a target host: a domain the cluster does not know of.
    free_then = doc["facts"]["hosts"][squeezed]["free_mib"]
    fresh_lab.inject("hand-start", "legacy07", squeezed)
    fresh_lab.inject("host-down", gone)
    try:
        res = fab("start-all", "--plan", str(path), "--yes")
        _refused(
            res,
            f"host {gone}: unreachable now",
            f"host {squeezed}: free RAM {free_then} -> ",
        )
    finally:
        fresh_lab.inject("host-up", gone)
    assert fresh_lab.status()["starts"] == []


def test_an_old_or_edited_plan_is_refused(fresh_lab, tmp_path):
    path, doc = _save(fresh_lab, tmp_path)
    old = dict(doc)
    taken = datetime.fromtimestamp(time.time() - 20 * 60, timezone.utc)
    old["facts"] = {**doc["facts"], "taken_at": taken.isoformat().replace("+00:00", "Z")}
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old))
    _refused(fab("start-all", "--plan", str(old_path), "--yes"), "too old: its facts are 20 min")
    # A hand edit that breaks a rule: every guest on the smallest target host.
    edited = json.loads(path.read_text())
    for a in edited["layout"]["assignments"]:
        a["host"] = "xen03"
    edited_path = tmp_path / "edited.json"
    edited_path.write_text(json.dumps(edited))
    _refused(fab("start-all", "--plan", str(edited_path), "--yes"), "breaks a rule: guest ")
    # Another environment's plan, or no plan at all: a user mistake (exit 1).
    other = dict(doc, environment="prod")
    (tmp_path / "other.json").write_text(json.dumps(other))
    res = fab("start-all", "--plan", str(tmp_path / "other.json"), "--yes")
    assert res.returncode == 1 and "a plan of environment 'prod', not of 'lab'" in res.stderr
    res = fab("start-all", "--plan", str(tmp_path / "missing.json"), "--yes")
    no_traceback(res)
    assert res.returncode == 1 and "cannot read" in res.stderr
    res = fab("start-all", "--plan", str(path), "--strategy", "pack", "--yes")
    assert res.returncode == 1 and "--strategy belong(s) to fab show-layout --save" in res.stderr
    assert fresh_lab.status()["starts"] == []


def test_start_all_says_when_its_plan_differs_from_the_last_preview(fresh_lab, tmp_path):
    preview = json.loads(fab("show-layout", "--format", "json").stdout)
    same = fab("start-all", "--dry-run")
    assert "differs from the last preview" not in same.stderr
    fresh_lab.inject("host-down", "xen06")
    try:
        res = fab("start-all", "--dry-run")
    finally:
        fresh_lab.inject("host-up", "xen06")
    note = [x for x in res.stderr.splitlines() if "differs from the last preview" in x]
    assert len(note) == 1 and f"(plan {preview['plan_id']}," in note[0]
    assert " xen06 -> " in note[0]
