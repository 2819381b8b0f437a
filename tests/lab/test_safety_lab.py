"""Issue 19 on the rehearsal lab: a live host is not dead, freshness per start, a live lock, an
audit log that cannot lie. Each test runs the real `fab` (or the engine) the way the issue did,
then counts what the lab's hosts run: never a domain twice, never a running guest stopped,
every start the lab saw in the audit log, and the exit code that says what happened.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from clitools import ROOT, fab, no_traceback

from xenfab.config import load_config
from xenfab.errors import ConfigError
from xenfab.gather import gather
from xenfab.plan import plan
from xenfab.start import StartOptions, start_guests
from xenfab.start.schedule import Job, Scheduler

pytestmark = pytest.mark.lab


def config(lab, tmp_path: Path, audit: str | None = None) -> str:
    """The repo's config with both lab environments' audit logs in ``audit`` (or tmp_path)."""
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    path = audit or str(tmp_path / "audit.jsonl")
    for name in ("lab", "lab-xl"):
        cfg["environments"][name]["audit_log"] = path
    out = tmp_path / "cfg.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


def domains(lab) -> list[tuple[str, str]]:
    """(guest, host) of every domain the lab's hosts run, from the lab's own state."""
    db = sqlite3.connect(lab.dir / "state.db")
    try:
        return [(n, h) for n, h in db.execute("SELECT name, host FROM domains")]
    finally:
        db.close()


def audit_lines(path: Path) -> list[dict]:
    """The audit log's whole lines (a line cut short by a failed write is not one)."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def check_safe(lab, before: list[tuple[str, str]], audit: Path) -> None:
    """No domain twice, no running guest stopped, every start the lab saw has its intent."""
    after = domains(lab)
    counts = Counter(name for name, _ in after)
    assert all(n == 1 for n in counts.values()), counts
    assert set(before) <= set(after), set(before) - set(after)
    started = Counter(s["guest"] for s in lab.status()["starts"])
    intents = Counter(x["guest"] for x in audit_lines(audit) if x["action"] == "intent")
    for guest, n in started.items():
        assert intents[guest] >= n, (guest, n, intents[guest])


def first_wave(env_name: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The guests the engine sends first, in order (its own scheduler), their states and hosts."""
    cfg = load_config(str(ROOT / "fabfile_config.yaml"))
    env = cfg.environment(env_name)
    snap = gather(env)
    layout = plan(snap, env.policy)
    jobs = [Job(a.guest, a.host, int(a.tier), i) for i, a in enumerate(layout.assignments)]
    sched = Scheduler(
        jobs,
        per_host=env.start.max_starts_per_host,
        parallel=env.start.max_starts_in_flight,
        tier_timeout_s=env.start.tier_timeout_s,
        now=0.0,
    )
    states = {g.name: g.state for g in snap.guests}
    return [j.guest for j in sched.pick(0.0)], states, {a.guest: a.host for a in layout.assignments}


# -- case 2: a host that answers is not dead ---------------------------------------------------


def test_dead_is_refused_for_a_host_that_answered(fresh_lab, tmp_path):
    cfg = config(fresh_lab, tmp_path)
    before = domains(fresh_lab)
    on_xen02 = sorted(n for n, h in before if h == "xen02")
    assert on_xen02, before
    for args in (("start-all", "--yes"), ("start-host", "xen03", "--yes"), ("show-layout",)):
        res = fab(*args, "--dead", "xen02", "--config", cfg)
        no_traceback(res)
        assert res.returncode == 1, (args, res.stderr)
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("xenfab: --dead xen02: xen02 answered at "), last
        listed = f"lists {len(on_xen02)} domain{'s' if len(on_xen02) > 1 else ''}"
        assert f"{listed} ({', '.join(on_xen02)}): it is not dead" in last, last
    assert fresh_lab.status()["starts"] == []
    assert domains(fresh_lab) == before
    assert not audit_lines(tmp_path / "audit.jsonl")  # the engine never ran


def test_the_engine_refuses_a_declared_dead_host_that_answers_its_first_round(fresh_lab, tmp_path):
    """Past the task's check (the API, or a host that came back): the engine's own probe."""
    cfg = load_config(str(ROOT / "fabfile_config.yaml"))
    cfg.lock_path = str(fresh_lab.dir / "xenfab.lock")
    cfg.audit_log = str(tmp_path / "audit.jsonl")
    env = cfg.environment("lab")
    snap = gather(env)
    layout = plan(snap, env.policy)
    before = domains(fresh_lab)
    with pytest.raises(ConfigError, match=r"--dead xen02: xen02 answered at .*it is not dead"):
        start_guests(cfg, env, snap, layout, env.policy, StartOptions(dead_hosts={"xen02"}))
    assert fresh_lab.status()["starts"] == []
    assert domains(fresh_lab) == before
    assert not (fresh_lab.dir / "xenfab.lock").exists()
    stops = [x for x in audit_lines(tmp_path / "audit.jsonl") if x["action"] == "stop"]
    assert stops and stops[0]["outcome"] == "dead-host-answered"


# -- case 3: freshness per start ---------------------------------------------------------------


def _hand_start_during_the_run(lab, tmp_path, env_name: str, state: str | None) -> None:
    wave, states, planned = first_wave(env_name)
    assert len(wave) >= 4, wave
    # A guest that goes out several starts after the first one, whose start fires the hand
    # start: on main all of the first wave were cleared by one round, read before that.
    guest = next(g for g in reversed(wave[2:]) if state is None or states[g] == state)
    where = next(h for h in ("xen06", "xen05", "xen03") if h != planned[guest])
    lab.inject("hand-start-on-start", guest, where)
    cfg = config(lab, tmp_path)
    before = domains(lab)
    args = ("start-all", "--yes", "--format", "json", "--config", cfg)
    res = fab(*args, *(("--env", env_name) if env_name != "lab" else ()))
    no_traceback(res)
    # legacy07 (its config computes its name) stays down: incomplete, and only that.
    assert res.returncode == 2, res.stderr
    doc = json.loads(res.stdout)
    result = {r["guest"]: r for r in doc["results"]}
    assert result[guest]["outcome"] == "found running", result[guest]
    assert result[guest]["host"] == where
    assert [h for n, h in domains(lab) if n == guest] == [where]
    assert guest not in {s["guest"] for s in lab.status()["starts"]}
    check_safe(lab, before, tmp_path / "audit.jsonl")
    age = doc["max_liveness_age_s"]
    assert isinstance(age, float) and 0 < age < 10, age


def test_a_hand_start_is_seen_before_the_next_start(fresh_lab, tmp_path):
    _hand_start_during_the_run(fresh_lab, tmp_path, "lab", "disabled")


def test_a_hand_start_of_a_failed_guest_is_seen_before_its_start(fresh_lab, tmp_path):
    _hand_start_during_the_run(fresh_lab, tmp_path, "lab", "failed")


def test_a_hand_start_is_seen_before_the_next_start_with_xl(xl_lab, tmp_path):
    _hand_start_during_the_run(xl_lab, tmp_path, "lab-xl", None)


def test_the_summary_line_says_how_fresh_the_lists_were(fresh_lab, tmp_path):
    cfg = config(fresh_lab, tmp_path)
    res = fab("start-host", "xen06", "--yes", "--config", cfg)
    assert res.returncode in (0, 2), res.stderr
    assert "domain lists at most " in res.stdout and "s old at each start" in res.stdout


# -- case 4: a live lock is never broken -------------------------------------------------------


def test_break_lock_never_breaks_a_live_run(fresh_lab, tmp_path):
    cfg = config(fresh_lab, tmp_path)
    audit = tmp_path / "audit.jsonl"
    lock = fresh_lab.dir / "xenfab.lock"
    before = domains(fresh_lab)
    fresh_lab.inject("slow", "xen01", "300")
    run_a = subprocess.Popen(
        [sys.executable, "-m", "fabric", "start-all", "--yes", "--config", cfg],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists()
        time.sleep(2.5)
        assert run_a.poll() is None  # A is still starting guests
        run_b = fab("start-all", "--yes", "--break-lock", "--config", cfg)
        no_traceback(run_b)
        assert run_b.returncode == 3, run_b.stderr
        last = run_b.stderr.strip().splitlines()[-1]
        assert "another xenfab run holds the lock" in last and f"(pid {run_a.pid})" in last
        assert "That run is alive" in last and "never breaks a live lock" in last
        if run_a.poll() is None:
            assert (lock / "beat").exists()  # A's heartbeat, beside its owner file
        out_a, err_a = run_a.communicate(timeout=180)
    finally:
        if run_a.poll() is None:
            run_a.kill()
        fresh_lab.inject("slow", "xen01", "0")
    assert run_a.returncode == 2, err_a
    assert "broke the lock" not in run_b.stderr
    assert not list(fresh_lab.dir.glob("xenfab.lock.broken-*"))
    assert not lock.exists()
    runs = {x["run"] for x in audit_lines(audit) if x["action"] == "intent"}
    assert len(runs) == 1  # only A sent anything
    intents = Counter(x["guest"] for x in audit_lines(audit) if x["action"] == "intent")
    assert all(n == 1 for n in intents.values()), intents  # web02's -d/-e went out once
    check_safe(fresh_lab, before, audit)


# -- case 5: no start without its audit record -------------------------------------------------


def test_an_audit_log_that_takes_no_line_refuses_the_run(fresh_lab, tmp_path):
    cfg = config(fresh_lab, tmp_path, audit="/dev/full")
    res = fab("start-all", "--yes", "--config", cfg)
    no_traceback(res)
    assert res.returncode == 3, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("xenfab: refused: cannot write the audit log /dev/full: "), last
    assert "No space left on device" in last
    assert fresh_lab.status()["starts"] == []
    assert not (fresh_lab.dir / "xenfab.lock").exists()


def _limit_file_size(limit: int):
    def apply() -> None:
        # Past the limit a write fails (EFBIG) instead of killing the process (SIGXFSZ).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_an_intent_that_cannot_be_written_stops_the_run_before_its_start(fresh_lab, tmp_path):
    cfg = config(fresh_lab, tmp_path)
    audit = tmp_path / "audit.jsonl"
    before = domains(fresh_lab)
    # Room for the first lines (open, lock) and a few starts' records, then the disk is full.
    res = subprocess.run(
        [sys.executable, "-m", "fabric", "start-all", "--yes", "--config", cfg],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=_limit_file_size(2500),
        env={**os.environ},
    )
    no_traceback(res)
    assert res.returncode == 2, res.stderr
    assert "STOP: cannot write the audit log: " in res.stderr, res.stderr
    assert "starting nothing more" in res.stderr
    lines = audit_lines(audit)
    assert lines[0]["action"] == "open"
    started = {s["guest"] for s in fresh_lab.status()["starts"]}
    assert started, res.stderr  # some starts were recorded and sent before the disk filled
    assert "not sent: its intent could not be written" in res.stdout or len(started) < 21
    assert "not-started" in res.stdout
    check_safe(fresh_lab, before, audit)
    assert not (fresh_lab.dir / "xenfab.lock").exists()
