"""Readiness probes and dependencies without SSH (issue 21): config, commands, the schedule."""

from __future__ import annotations

import time

import pytest

from xenfab.cluster import UnsafeName
from xenfab.config import StartPolicy
from xenfab.errors import ConfigError
from xenfab.schema import validate
from xenfab.start.outcome import Outcome
from xenfab.start.progress import counts_line
from xenfab.start.ready import probe_command
from xenfab.start.schedule import PROBING, DepVerdict, Job, Scheduler


def _policy(**start) -> StartPolicy:
    return validate(StartPolicy, start, "cfg.yaml", prefix="start")


def test_probes_are_checked_and_the_first_matching_key_wins():
    p = _policy(ready={"db0[12]": "tcp:5432", "db*": "ping", "web*": "command:/usr/bin/up"})
    assert [p.probe(g) for g in ("db01", "db03", "web1", "mq1")] == [
        "tcp:5432",
        "ping",
        "command:/usr/bin/up",
        "started",
    ]
    for bad in ("tcp:0", "tcp:65536", "tcp:05", "tcp:x", "command:up", "command:/a b", "curl"):
        with pytest.raises(ConfigError) as exc:
            _policy(ready={"db*": bad})
        assert str(exc.value).startswith("cfg.yaml: start.ready.db*: ") and "\n" not in str(exc)
    with pytest.raises(ConfigError, match="not a guest name or glob"):
        _policy(ready={"db;reboot": "ping"})
    with pytest.raises(ConfigError, match="dependency_failure"):
        _policy(dependency_failure="later")


def test_probe_commands_quote_the_name_and_bound_the_wait():
    assert probe_command("ping", "db01") == "ping -c 1 -W 1 db01"
    assert probe_command("tcp:5432", "db01") == "nc -z -w 2 db01 5432"
    assert probe_command("command:/opt/x/up", "a+b@c") == "timeout 10 /opt/x/up a+b@c"
    with pytest.raises(UnsafeName):
        probe_command("ping", "db01;reboot")
    with pytest.raises(ValueError):
        probe_command("tcp:99999", "db01")


def test_dependencies_expand_globs_and_name_a_cycle_or_a_pattern_matching_nothing():
    guests = ["app01", "app02", "db01", "db02", "web01"]
    p = _policy(depends_on={"app*": ["db*"], "web01": ["app01"], "db0*": ["db01"]})
    assert p.dependencies(guests) == {
        "app01": ["db01", "db02"],
        "app02": ["db01", "db02"],
        "db02": ["db01"],  # db01 matches its own glob: not a dependency on itself
        "web01": ["app01"],
    }
    with pytest.raises(ConfigError, match=r"start.depends_on: 'mq\*' matches no guest"):
        _policy(depends_on={"mq*": ["db*"]}).dependencies(guests)
    with pytest.raises(ConfigError, match=r"start.depends_on.app\*: 'pg\*' matches no guest"):
        _policy(depends_on={"app*": ["pg*"]}).dependencies(guests)
    with pytest.raises(ConfigError) as exc:
        _policy(depends_on={"app01": ["db01"], "db01": ["web01"], "web01": ["app01"]}).dependencies(
            guests
        )
    assert str(exc.value) == "start.depends_on: a cycle: app01 -> db01 -> web01 -> app01"


def _jobs(*spec) -> list[Job]:
    jobs = []
    for i, (guest, host, deps, expected) in enumerate(spec):
        job = Job(guest, host, 1, i)
        job.deps, job.expected_s = list(deps), expected
        jobs.append(job)
    return jobs


def test_a_dependent_waits_for_ready_then_goes_and_other_slots_are_filled_meanwhile():
    js = _jobs(("db", "h1", [], 10.0), ("app", "h2", ["db"], 5.0), ("web", "h2", [], 5.0))
    s = Scheduler(js, per_host=1, parallel=4, tier_timeout_s=600, now=0)
    assert {j.guest for j in s.pick(0)} == {"db", "web"}  # app waits; web takes h2's slot
    db = js[0]
    db.phase = PROBING  # booted, not answering yet: app still waits
    s.release(db)
    s.finish(js[2], Outcome.STARTED, "h2", "", 1)
    assert s.pick(1) == [] and s.waiting_for(js[1]) == ["db"]
    s.finish(db, Outcome.STARTED, "h1", "", 2)
    assert [j.guest for j in s.pick(2)] == ["app"]


def test_a_failed_dependency_holds_at_once_or_releases_after_the_timeout():
    def run(failure: str):
        js = _jobs(("db", "h1", [], None), ("app", "h2", ["db"], None))
        s = Scheduler(
            js,
            per_host=1,
            parallel=4,
            tier_timeout_s=600,
            now=0,
            dependency_timeout_s=30,
            dependency_failure=failure,
        )
        s.pick(0)
        s.finish(js[0], Outcome.NOT_READY, "h1", "", 5)
        return s, js

    s, js = run("hold")
    assert s.dependencies(6) == [(js[1], DepVerdict.HOLD, ["db"])]
    s, js = run("start")
    assert s.dependencies(6) == []  # `start` waits the timeout out
    assert s.dependencies(30) == [(js[1], DepVerdict.RELEASE, ["db"])]
    js[1].deps_released = True
    assert [j.guest for j in s.pick(30)] == ["app"]


def test_a_dependency_outside_the_run_counts_as_ready_when_it_runs():
    js = _jobs(("app", "h1", ["db", "mq"], None))
    s = Scheduler(js, per_host=1, parallel=1, tier_timeout_s=9, now=0, outside={"db": True})
    assert s.pick(0) == [] and s.waiting_for(js[0]) == ["mq"]
    s.outside["mq"] = True
    assert s.pick(0) == js


def test_the_host_with_the_most_expected_work_and_the_longest_chain_go_first():
    # h1: one 30 s guest; h2: two 5 s guests. One slot in all: the long one first.
    js = _jobs(("a", "h2", [], 5.0), ("b", "h2", [], 5.0), ("long", "h1", [], 30.0))
    s = Scheduler(js, per_host=1, parallel=1, tier_timeout_s=600, now=0)
    assert [j.guest for j in s.pick(0)] == ["long"]
    # Without estimates the plain count decides, as before (h2 has two).
    js = _jobs(("a", "h2", [], None), ("b", "h2", [], None), ("c", "h1", [], None))
    assert Scheduler(js, per_host=1, parallel=1, tier_timeout_s=9, now=0).pick(0)[0].host == "h2"
    # On one host: the guest others wait for first (its chain is longer).
    js = _jobs(("x", "h1", [], 5.0), ("db", "h1", [], 5.0), ("app", "h2", ["db"], 20.0))
    s = Scheduler(js, per_host=1, parallel=1, tier_timeout_s=600, now=0)
    assert [j.guest for j in s.pick(0)] == ["db"]


def test_the_eta_counts_guests_still_booting_or_probing_and_is_never_zero_for_them():
    js = _jobs(("db", "h1", [], 10.0), ("app", "h1", [], 10.0))
    s = Scheduler(js, per_host=1, parallel=2, tier_timeout_s=600, now=0)
    assert s.eta(None, 0) == pytest.approx(20.0)  # the plan's estimates, one slot on h1
    db = s.pick(0)[0]
    s.begin(db, 0)
    db.phase = PROBING
    s.release(db)
    late = s.eta(None, 50)  # long overdue, still probing
    assert late is not None and late > 0
    counts = s.counts()
    assert counts["running"] == 1
    assert "0.0s" not in counts_line(counts, late)


class _ProbePool:
    """Answers probes: exit 0 once ``ready`` holds the guest, else nc's silent exit 1."""

    def __init__(self) -> None:
        self.ready: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def run(self, host: str, command: str, timeout: float | None = None):
        from xenfab.cluster import Output
        from xenfab.remote import RunResult

        self.calls.append((host, command))
        guest = command.split()[4]
        return RunResult(host, Output("", 0 if guest in self.ready else 1))


def _engine(tmp_path, **start):
    import json
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace
    from pathlib import Path

    from xenfab.config import load_config
    from xenfab.snapshot import Snapshot
    from xenfab.start.audit import AuditLog
    from xenfab.start.engine import Engine
    from xenfab.start.options import StartOptions

    cfg = load_config(str(Path(__file__).resolve().parent.parent / "fabfile_config.yaml"))
    env = cfg.environment("lab")
    policy = replace(env.start, ready={"db*": "tcp:5432"}, **start)
    engine = Engine(
        cfg, env, Snapshot("lab", "t", "xen01", True), None, None, StartOptions(start_policy=policy)
    )
    engine.pool = _ProbePool()
    engine.probers = ThreadPoolExecutor(max_workers=2)
    engine.audit = AuditLog(str(tmp_path / "audit.jsonl"), "lab", "r")
    engine.audit.open()
    engine.jobs = _jobs(("db01", "xen02", [], None), ("web01", "xen02", [], None))
    for job in engine.jobs:
        job.probe = policy.probe(job.guest)
        job.command_at = job.sent_at = 0.0
    engine.sched = Scheduler(engine.jobs, per_host=2, parallel=2, tier_timeout_s=60, now=0)

    def audit() -> list[dict]:
        return [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]

    return engine, audit


def _settle(engine) -> None:
    """Send the due probes and take their answers (the loop's part, without its waits)."""
    engine._probes(engine.sched)
    engine.probers.shutdown(wait=True)
    from concurrent.futures import ThreadPoolExecutor

    engine.probers = ThreadPoolExecutor(max_workers=2)
    while not engine.results.empty():
        engine._on_probe_done(engine.results.get_nowait())


def test_a_probed_guest_is_started_only_once_it_answers_and_its_ready_line_says_when(tmp_path):
    engine, audit = _engine(tmp_path)
    db, web = engine.jobs
    engine._started(engine.sched, web, "xen02", "")
    assert web.outcome == Outcome.STARTED  # `started`: up when the cluster says so
    engine._started(engine.sched, db, "xen02", "")
    assert db.phase == PROBING and db.slot is None  # its start slot is free meanwhile
    _settle(engine)
    assert db.phase == PROBING and engine.pool.calls[0][1] == "nc -z -w 2 db01 5432"
    engine.pool.ready.add("db01")
    db.next_probe_at = 0
    _settle(engine)
    assert db.outcome == Outcome.STARTED and db.ready_at is not None
    ready = {x["guest"]: x for x in audit() if x["action"] == "ready"}
    assert ready["db01"]["outcome"] == "ready" and ready["db01"]["ready_s"] > 0
    assert ready["web01"]["probe"] == "started"


def test_a_guest_that_never_answers_is_not_ready_and_left_alone(tmp_path):
    engine, audit = _engine(tmp_path, ready_timeout_s=0.01)
    db = engine.jobs[0]
    engine._started(engine.sched, db, "xen02", "")
    time.sleep(0.02)
    _settle(engine)
    assert db.outcome == Outcome.NOT_READY and "left running" in db.message
    (line,) = [x for x in audit() if x["action"] == "ready"]
    assert line["outcome"] == "timeout" and "ready_s" not in line and line["guest"] == "db01"
    assert engine.pool.calls == []  # timed out before a probe: nothing else was sent


def test_the_progress_line_counts_not_ready_guests_and_says_no_eta_once_all_ended():
    line = counts_line({"total": 3, "started": 1, "not-ready": 1, "running": 1}, 0.1)
    assert line == "1/3 started, 1 not-ready, 1 running, ETA overdue, still booting"
    assert counts_line({"total": 3, "started": 1, "not-ready": 1, "not-started": 1}, 0.0) == (
        "1/3 started, 1 not-ready, 1 not-started"
    )


def test_waits_say_why_each_queued_start_waits():
    js = _jobs(
        ("db", "h1", [], 10.0),
        ("db2", "h1", [], 10.0),  # h1 has one slot: db takes it
        ("app", "h2", ["db"], 5.0),  # its dependency is not ready
        ("web", "h3", [], 5.0),
    )
    js[3].tier = 2  # tier 2 opens after tier 1
    s = Scheduler(js, per_host=1, parallel=4, tier_timeout_s=600, now=0)
    assert [j.guest for j in s.pick(0)] == ["db"]
    assert s.waits(0) == {"a slot": 1, "dependencies": 1, "tier 2": 1}
