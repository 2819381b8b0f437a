"""--expect over the lab: the rgmanager lab with a saved snapshot, and the xl lab's not-ours guest."""

from __future__ import annotations

import json

import pytest
from clitools import LAB_BOOT_S, fab, no_traceback

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _rgmanager_after(lab):
    """Leave the session lab in its default (rgmanager) scenario for the tests that follow."""
    yield
    lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="rgmanager")


def _links(lab) -> list:
    """Every entry of every host's own autostart directory."""
    return [p for h in sorted((lab.dir / "hosts").iterdir()) for p in (h / "auto").iterdir()]


def _facts(*env: str) -> dict:
    res = fab("facts", "--format", "json", *env)
    return json.loads(res.stdout)


def _ran(snap: dict, guest: str, host: str, state: str) -> None:
    """Make ``snap`` say ``guest`` ran on ``host`` when it was taken."""
    g = next(g for g in snap["guests"] if g["name"] == guest)
    g["state"], g["owner"], g["running_on"] = state, host, [host]


def test_rgmanager_lab_brings_back_only_what_ran_then(fresh_lab, tmp_path):
    snap = _facts()
    layout = json.loads(fab("show-layout", "--format", "json").stdout)
    planned = {a["guest"]: a["host"] for a in layout["assignments"]}
    assert len(planned) >= 3
    # Two of today's down guests ran last night, each on a host the plan does not pick for it.
    hosts = sorted(h["name"] for h in snap["hosts"] if h["reachable"])
    chosen = sorted(planned)[:2]
    then = {g: next(h for h in hosts if h != planned[g]) for g in chosen}
    for g, h in then.items():
        _ran(snap, g, h, "started")
    saved = tmp_path / "ran.json"
    saved.write_text(json.dumps(snap))

    preview = fab("show-layout", "--expect", str(saved), "--format", "json")
    doc = json.loads(preview.stdout)
    # legacy07 (down, config unreadable) did not run then: skipped, not STILL DOWN: exit 0.
    assert preview.returncode == 0, preview.stderr
    assert {a["guest"]: a["host"] for a in doc["assignments"]} == then
    skipped = {s["guest"]: s["reason"] for s in doc["skipped"]}
    assert "not brought back" in skipped["legacy07"]
    assert all("not brought back" in skipped[g] for g in planned if g not in then)

    res = fab("start-all", "--expect", str(saved), "--yes")
    no_traceback(res)
    assert res.returncode == 0, res.stderr + res.stdout
    starts = fresh_lab.status()["starts"]
    assert {(s["guest"], s["host"]) for s in starts} == set(then.items())
    assert "STILL DOWN: none" in res.stdout

    # A guest that ran then and has no service nor config now: STILL DOWN, exit 2.
    ghost = dict(snap["guests"][0], name="ghost01", state="started", owner=hosts[0])
    snap["guests"].append(ghost)
    saved.write_text(json.dumps(snap))
    res = fab("show-layout", "--expect", str(saved))
    assert res.returncode == 2, res.stderr
    # A long reason is said whole once, as a footnote wrapped to the terminal's width.
    flat = " ".join(res.stdout.split())
    assert "ghost01 (" in res.stdout and f"ran on {hosts[0]} in {saved}" in flat
    # Another environment's snapshot is one line, exit 1.
    snap["environment"] = "prod"
    saved.write_text(json.dumps(snap))
    res = fab("show-layout", "--expect", str(saved))
    no_traceback(res)
    assert res.returncode == 1 and "environment 'prod', not of 'lab'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_xl_lab_a_not_ours_guest_that_ran_then_is_started(xl_lab, tmp_path):
    # web01 is no longer linked from the autostart directory: not ours today.
    for link in [p for p in _links(xl_lab) if p.name.startswith("web01")]:
        link.unlink()
    snap = _facts("--env", "lab-xl")
    by = {g["name"]: g for g in snap["guests"]}
    assert by["web01"]["state"] == "not-ours"
    host = next(h["name"] for h in snap["hosts"] if h["reachable"])
    _ran(snap, "web01", host, "running")
    saved = tmp_path / "ran.json"
    saved.write_text(json.dumps(snap))

    res = fab("start-all", "--env", "lab-xl", "--expect", str(saved), "--yes")
    no_traceback(res)
    assert res.returncode == 0, res.stderr + res.stdout
    starts = xl_lab.status()["starts"]
    assert [(s["guest"], s["host"]) for s in starts] == [("web01", host)]
    now = {g["name"]: g for g in _facts("--env", "lab-xl")["guests"]}
    assert now["web01"]["state"] == "running" and now["web01"]["running_on"] == [host]
    # Every other down guest was not running then: left down, not started.
    assert all(g["state"] != "running" for n, g in now.items() if by[n]["state"] == "down")
