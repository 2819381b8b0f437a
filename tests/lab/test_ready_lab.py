"""Readiness and dependencies end to end (issue 21): `ready: {db*: tcp:5432}` and
`depends_on: {app*: [db*]}` on a small lab whose guests answer `nc` a second after booting.

One module-scoped lab (3 hosts, 11 guests, seed 18: db01, db02, app01 and app02 all down).
The order of events is compared, never their durations.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from clitools import ROOT, fab, no_traceback

pytestmark = pytest.mark.lab

DB, APP = ("db01", "db02"), ("app01", "app02")
BOOT_S, READY_S = 1, 1


@pytest.fixture(scope="module")
def ready_lab(tmp_path_factory: pytest.TempPathFactory):
    """Its own small lab (own directory and port), stopped at the end."""
    from xenfab import lab

    if not os.path.exists("/usr/sbin/sshd"):
        pytest.skip("/usr/sbin/sshd is missing: install openssh-server to run the lab tests")
    path = tmp_path_factory.mktemp("readylab")
    lab.up(path, hosts=3, guests=11, seed=18, latency_ms=0, boot_s=BOOT_S, ready_s=READY_S)
    try:
        yield path
    finally:
        lab.down(path)


def _config(lab_dir: Path, **start) -> str:
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    cfg["environments"]["lab"]["start"] = {
        "ready": {"db*": "tcp:5432"},
        "depends_on": {"app*": ["db*"]},
        **start,
    }
    path = lab_dir / "ready.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _run(lab_dir: Path, **start) -> tuple[int, dict, list[dict], str]:
    """start-all --format json with ``start``; exit code, document, this run's audit, stderr."""
    audit = lab_dir / "audit.jsonl"
    seen = len(audit.read_text().splitlines()) if audit.exists() else 0
    env = {"XENFAB_LAB_DIR": str(lab_dir)}
    res = fab(
        "start-all", "--yes", "--format", "json", "--config", _config(lab_dir, **start), env=env
    )
    no_traceback(res)
    lines = [json.loads(x) for x in audit.read_text().splitlines()[seen:]]
    return res.returncode, json.loads(res.stdout), lines, res.stderr


def _at(line: dict) -> datetime:
    return datetime.fromisoformat(line["time"])


def _status(lab_dir: Path) -> dict:
    from xenfab import lab

    return lab.status(lab_dir)


def test_apps_start_only_after_every_db_answers(ready_lab):
    down = {s["name"].split(":")[-1] for s in _status(ready_lab)["services"] if s["owner"] is None}
    assert set(DB) | set(APP) <= down  # the scenario this test is about
    code, doc, audit, err = _run(ready_lab, ready_timeout_s=60)
    outcome = {r["guest"]: r["outcome"] for r in doc["results"]}
    assert all(outcome[g] == "started" for g in DB + APP), outcome
    assert code == 2 and [s["guest"] for s in doc["still_down"]] == ["legacy07"], err
    ready = {x["guest"]: x for x in audit if x["action"] == "ready"}
    intents = {x["guest"]: x for x in audit if x["action"] == "intent"}
    # Every guest seen started has its ready line; the dbs' say how long to an answer.
    assert {g for g, o in outcome.items() if o == "started"} == set(ready)
    assert all(ready[g]["outcome"] == "ready" and ready[g]["probe"] == "tcp:5432" for g in DB)
    assert all(ready[g]["ready_s"] >= BOOT_S + READY_S for g in DB), ready
    assert all(ready[g]["probe"] == "started" for g in APP)
    last_db = max(_at(ready[g]) for g in DB)
    assert all(_at(intents[g]) >= last_db for g in APP), (intents, ready)
    # The lab's own record agrees: no app was started before every db could answer.
    starts = {s["guest"]: s for s in _status(ready_lab)["starts"]}
    answers = max(starts[g]["began"] + BOOT_S + READY_S for g in DB)
    assert all(starts[g]["began"] >= answers for g in APP), starts
    # Something else than the dbs and apps went meanwhile: slots are not held for the chain.
    others = [g for g in starts if g not in DB + APP]
    assert others and min(starts[g]["began"] for g in others) < answers


def test_a_db_that_never_answers_holds_the_apps_and_the_exit_code_says_so(ready_lab):
    from xenfab import lab

    lab.reseed(ready_lab, ready_s=READY_S)
    lab.inject(ready_lab, "never-ready", "db01")
    code, doc, audit, err = _run(
        ready_lab, ready_timeout_s=2, dependency_failure="hold", dependency_timeout_s=600
    )
    by = {r["guest"]: r for r in doc["results"]}
    assert by["db01"]["outcome"] == "not-ready" and "left running" in by["db01"]["message"]
    for g in APP:
        assert by[g]["outcome"] == "not-started" and "db01" in by[g]["message"], by[g]
    assert code == 2 and not doc["ok"], err
    assert {"legacy07", "db01", *APP} <= {s["guest"] for s in doc["still_down"]}
    timeout = [x for x in audit if x["action"] == "ready" and x["outcome"] == "timeout"]
    assert [x["guest"] for x in timeout] == ["db01"] and "ready_s" not in timeout[0]
    assert not [x for x in audit if x["action"] == "intent" and x["guest"] in APP]
    st = _status(ready_lab)
    assert not [s for s in st["starts"] if s["guest"] in APP]
    # Never stopped: db01's domain still runs where it was started.
    assert "db01" in {d["name"] for d in st["domains"]}


def test_a_cycle_is_one_line_naming_it_and_nothing_starts(ready_lab):
    path = _config(ready_lab, depends_on={"app*": ["db*"], "db01": ["app02"]})
    before = len(_status(ready_lab)["starts"])
    res = fab("start-all", "--yes", "--config", path, env={"XENFAB_LAB_DIR": str(ready_lab)})
    no_traceback(res)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"xenfab: {path}: start.depends_on: a cycle: "), res.stderr
    assert last.endswith(" (environment lab)")
    # The cycle, closed, from whichever of its guests the search met first.
    assert last.split(": a cycle: ")[1].split(" (")[0] in (
        "app02 -> db01 -> app02",
        "db01 -> app02 -> db01",
    )
    assert len(_status(ready_lab)["starts"]) == before
