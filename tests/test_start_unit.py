"""The start engine's decisions without SSH: schedule, re-check, confirmation, lock, report."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess

import pytest

from xenfab.cluster import ClusterState, Output, ServiceState
from xenfab.errors import ConfigError, StartRefused
from xenfab.remote import RunResult
from xenfab.snapshot import Domain, Guest, Host, Snapshot
from xenfab.start import GuestResult, StartReport
from xenfab.start.audit import AuditLog
from xenfab.start.checks import confirm, precheck
from xenfab.start.lock import MasterLock, check_path
from xenfab.start.progress import Progress, counts_line
from xenfab.start.replan import only_this_guest as _only_this_guest
from xenfab.start.report import format_duration
from xenfab.start.schedule import (
    MAX_HOSTS,
    TRIES_PER_HOST,
    Job,
    Scheduler,
)


def jobs(spec: list[tuple[str, str, int]]) -> list[Job]:
    return [Job(g, h, t, i) for i, (g, h, t) in enumerate(spec)]


def state(**services: tuple[str, str | None]) -> ClusterState:
    return ClusterState(True, services={g: ServiceState(g, s, o) for g, (s, o) in services.items()})


# -- scheduler ---------------------------------------------------------------------------------


def test_pick_honours_per_host_and_global_caps():
    js = jobs([(f"g{i}", f"h{i % 3}", 1) for i in range(12)])
    s = Scheduler(js, per_host=2, parallel=5, tier_timeout_s=60, now=0)
    picked = s.pick(0)
    assert len(picked) == 5
    assert max(s.busy.values()) <= 2
    assert s.pick(0) == []
    # One finishes: exactly one more may go, and only where a host slot is free.
    s.finish(picked[0], "started", picked[0].host, "", 1)
    more = s.pick(1)
    assert len(more) == 1 and s.busy[more[0].host] <= 2


def test_pick_prefers_the_host_with_the_longest_queue():
    # h0 has 4 guests, h1 and h2 one each: with 2 slots in all, h0 must start first.
    js = jobs([("a", "h1", 1), ("b", "h2", 1), ("c", "h0", 1), ("d", "h0", 1), ("e", "h0", 1)])
    js.append(Job("f", "h0", 1, 5))
    s = Scheduler(js, per_host=1, parallel=2, tier_timeout_s=60, now=0)
    first = s.pick(0)
    assert first[0].host == "h0"


def test_tiers_open_in_order_and_on_timeout():
    js = jobs([("db", "h1", 1), ("web", "h2", 2), ("misc", "h3", 3)])
    s = Scheduler(js, per_host=2, parallel=8, tier_timeout_s=10, now=0)
    assert [j.guest for j in s.pick(0)] == ["db"]
    assert s.advance(1) == []
    s.finish(js[0], "started", "h1", "", 2)
    notes = s.advance(2)
    assert notes == ["tier 1 done; starting tier 2"]
    assert [j.guest for j in s.pick(2)] == ["web"]
    notes = s.advance(12.5)
    assert len(notes) == 1 and notes[0].startswith("WARNING: tier 2 not done after 10 s")
    assert "web" in notes[0]
    assert [j.guest for j in s.pick(12.5)] == ["misc"]


def test_a_failed_tier_still_opens_the_next_one():
    js = jobs([("db", "h1", 1), ("web", "h2", 2)])
    s = Scheduler(js, per_host=2, parallel=8, tier_timeout_s=600, now=0)
    s.pick(0)
    s.finish(js[0], "failed", "h1", "boom", 1)
    assert s.advance(1) == ["tier 1 done (1 failed); starting tier 2"]


def test_failure_retries_once_then_relocates_then_gives_up():
    (j,) = jobs([("web", "h1", 1)])
    s = Scheduler([j], per_host=2, parallel=8, tier_timeout_s=600, now=0)
    steps = []
    hosts = ["h1", "h2", "h3"]
    for n in range(MAX_HOSTS * TRIES_PER_HOST):
        now = 10.0 * n
        picked = s.pick(now)
        assert picked == [j], f"attempt {n + 1} not picked"
        s.begin(j, now)
        step = s.after_failure(j, now)
        steps.append(step)
        if step == "relocate":
            s.relocate(j, hosts[len(j.hosts_tried)])
    assert steps == ["retry", "relocate", "retry", "relocate", "retry", "give up"]
    assert j.attempts == 6 and j.hosts_tried == hosts
    assert j.failed_hosts == set(hosts)


def test_a_retry_waits_a_moment_and_frees_its_slot():
    (j,) = jobs([("web", "h1", 1)])
    s = Scheduler([j], per_host=1, parallel=1, tier_timeout_s=600, now=0)
    s.pick(0)
    s.begin(j, 0)
    assert s.after_failure(j, 0) == "retry"
    assert s.in_flight == 0
    assert s.pick(0.1) == []
    assert s.pick(5) == [j]


def test_eta_from_the_busiest_host():
    js = jobs([(f"g{i}", "h1", 1) for i in range(4)] + [("x", "h2", 1)])
    s = Scheduler(js, per_host=2, parallel=8, tier_timeout_s=600, now=0)
    assert s.eta(None, 0) is None
    assert s.eta(5.0, 0) == pytest.approx(10.0)  # h1: ceil(4/2) waves of 5 s


# -- re-check and confirmation -----------------------------------------------------------------


def test_precheck_starts_only_disabled_or_failed_guests_running_nowhere():
    st = state(
        a=("disabled", None),
        b=("failed", None),
        c=("started", "xen04"),
        d=("starting", "xen02"),
        e=("stopped", None),
        f=("disabled", None),
    )
    doms = {"xen01": {"Domain-0"}, "xen03": {"f"}}
    assert precheck("a", st, doms).action == "start"
    b = precheck("b", st, doms)
    assert b.action == "start" and b.message == "failed"
    c = precheck("c", st, doms)
    assert (c.action, c.host) == ("found running", "xen04")
    assert "found running on xen04" in c.message and "left alone" in c.message
    assert precheck("d", st, doms).action == "found running"
    assert precheck("e", st, doms).action == "start"  # stopped is a down state (issue 11)
    f = precheck("f", st, doms)
    assert (f.action, f.host) == ("found running", "xen03") and "xl list" in f.message
    assert precheck("zz", st, doms).action == "skipped"


def test_precheck_moves_a_running_service_only_off_a_dead_owner():
    st = state(a=("started", "xen03"), b=("started", "xen04"), c=("disabled", None))
    doms = {"xen01": {"Domain-0"}, "xen03": {"a", "c"}}
    # xen03 dead: its (stale) list is not evidence; a's service is moved from it.
    a = precheck("a", st, doms, dead={"xen03"})
    assert (a.action, a.host, a.message) == ("start", "xen03", "started")
    assert precheck("b", st, doms, dead={"xen03"}).action == "found running"
    assert precheck("c", st, doms, dead={"xen03"}).action == "start"
    assert precheck("a", st, doms).action == "found running"


def test_precheck_accepts_stopped_only_on_a_retry():
    st = state(e=("stopped", None))
    assert precheck("e", st, {}, retry=True).action == "start"


def test_confirm_follows_clustat():
    j = Job("web", "xen03", 1, 0)
    j.command_at, j.returned_at = 0.0, 0.5
    assert confirm(j, ServiceState("web", "starting", "xen03"), 1, 60, 3).status == "wait"
    ok = confirm(j, ServiceState("web", "started", "xen03"), 2, 60, 3)
    assert (ok.status, ok.host, ok.message) == ("started", "xen03", "")
    moved = confirm(j, ServiceState("web", "started", "xen05"), 2, 60, 3)
    assert moved.host == "xen05" and "runs on xen05" in moved.message
    assert confirm(j, ServiceState("web", "failed", None), 2, 60, 3).status == "failed"
    # Disabled right after Success may be clustat lagging; later it is a failure.
    assert confirm(j, ServiceState("web", "disabled", None), 1, 60, 3).status == "wait"
    assert confirm(j, ServiceState("web", "stopped", None), 9, 60, 3).status == "failed"
    stuck = confirm(j, ServiceState("web", "starting", "xen03"), 61, 60, 3)
    assert stuck.status == "stuck" and "left alone" in stuck.message


# -- re-plan input -----------------------------------------------------------------------------


def test_replan_places_only_the_failed_guest_and_holds_room_for_the_rest():
    snap = Snapshot(
        "lab",
        "now",
        "xen01",
        True,
        hosts=[Host("xen01", free_mib=8192), Host("xen02", free_mib=8192)],
        guests=[
            Guest("web", 1024, state="stopped"),
            Guest("db", 4096, state="disabled"),
            Guest("other", 512, state="disabled"),
        ],
    )
    trial = _only_this_guest(snap, "web", [("db", "xen02", 4096, 2)])
    assert trial.guest("db").state == "pending" and trial.guest("other").state == "pending"
    assert trial.guest("web").state == "disabled"  # stopped by our failed start: placeable
    assert trial.host("xen02").free_mib == 4096
    assert [d.name for d in trial.host("xen02").domains] == ["db"]
    assert snap.host("xen02").free_mib == 8192  # the original is untouched
    assert isinstance(trial.host("xen02").domains[0], Domain)


# -- lock: the real shell script, run locally --------------------------------------------------


def local(host: str, command: str) -> RunResult:
    res = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    return RunResult(host, Output(res.stdout + res.stderr, res.returncode))


def test_lock_is_exclusive_reports_its_owner_and_is_released(tmp_path):
    path = str(tmp_path / "xenfab.lock")
    first = MasterLock(local, "xen01", path, "alice@adminbox")
    first.acquire()
    assert first.held and os.path.isdir(path)
    second = MasterLock(local, "xen01", path, "bob@laptop")
    with pytest.raises(StartRefused) as err:
        second.acquire()
    text = str(err.value)
    assert "alice@adminbox" in text and "ago" in text and "--break-lock" in text
    # Only the owner's token removes the lock.
    second.held = True
    second.release()
    assert os.path.isdir(path)
    first.release()
    assert not os.path.exists(path)


def test_a_stale_lock_is_named_and_broken_only_on_request(tmp_path):
    path = tmp_path / "xenfab.lock"
    path.mkdir()
    import socket

    owner = {"user": f"carol@{socket.gethostname()}", "pid": 2**22 + 12345, "token": "t"}
    (path / "owner").write_text(json.dumps(owner) + "\n1\n")
    lock = MasterLock(local, "xen01", str(path), "dave@here")
    with pytest.raises(StartRefused, match="stale"):
        lock.acquire()
    lock.acquire(break_lock=True)
    assert lock.held and lock.broken is not None and lock.broken.user.startswith("carol@")
    assert "dave@here" in (path / "owner").read_text()
    lock.release()
    assert not path.exists()


def test_lock_in_a_missing_directory_is_refused_with_the_reason(tmp_path):
    lock = MasterLock(local, "xen01", str(tmp_path / "no" / "such" / "x.lock"), "u@h")
    with pytest.raises(StartRefused, match="No such file"):
        lock.acquire()


def test_lock_path_must_be_absolute():
    with pytest.raises(ConfigError):
        check_path("relative/lock")
    assert check_path("/var/lock/xenfab.lock/") == "/var/lock/xenfab.lock"


# -- report, progress, audit -------------------------------------------------------------------


def test_report_ok_table_and_dict():
    rep = StartReport(environment="lab", seconds=75.2)
    rep.results = [
        GuestResult("web", "xen03", "started", 5.2, "", 1),
        GuestResult("db", "xen04", "found running", 0, "found running on xen04: left alone"),
    ]
    assert rep.ok
    table = rep.table()
    assert "web" in table and "found running on xen04" in table
    assert table.splitlines()[-1] == "1 started, 1 found running in 1m15s"
    rep.results.append(GuestResult("app", "xen05", "failed", 1.0, "boom", 6))
    assert not rep.ok
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["ok"] is False and data["counts"]["failed"] == 1
    assert StartReport(results=[GuestResult("x", None, "not-started")], dry_run=True).ok
    assert not StartReport(interrupted=True).ok


def test_format_duration():
    assert format_duration(4.21) == "4.2s"
    assert format_duration(80) == "1m20s"
    assert format_duration(3725) == "1h02m05s"


def test_progress_is_plain_lines_without_a_terminal():
    out = io.StringIO()
    p = Progress(out)
    status = counts_line({"total": 48, "started": 12, "failed": 2, "running": 3}, 80)
    assert status == "12/48 started, 2 failed, 3 running, ETA 1m20s"
    # Guests still booting past the estimate: never "ETA 0.0s".
    late = counts_line({"total": 4, "started": 2, "running": 2}, 0.0)
    assert late == "2/4 started, 2 running, ETA overdue, still booting"
    p.event("started web01 on xen03", status)
    p.tick(status)
    p.clear()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.count("\n") == 1 and text.rstrip().endswith(status)


def test_progress_redraws_a_status_line_on_a_terminal():
    out = io.StringIO()
    p = Progress(out, tty=True)
    p.event("started web01 on xen03", "1/2 started, ETA ?")
    assert "\r" in out.getvalue()


def test_audit_log_creates_directories_and_writes_json_lines(tmp_path):
    path = tmp_path / "deep" / "dir" / "audit.jsonl"
    log = AuditLog(str(path), "lab", "run1")
    log.open()
    log.write(
        "start",
        guest="web",
        host="xen03",
        command="clusvcadm -e vm:web -m xen03",
        outcome="accepted",
    )
    log.close()
    # The first line is the one open() writes to prove the log takes lines before any change.
    first, line = path.read_text().splitlines()
    assert json.loads(first)["action"] == "open" and json.loads(first)["outcome"] == "writable"
    rec = json.loads(line)
    for key in ("time", "user", "guest", "host", "command", "outcome"):
        assert key in rec
    assert rec["guest"] == "web" and "@" in rec["user"]


def test_audit_log_that_cannot_be_written_refuses_to_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StartRefused, match="audit log"):
        AuditLog(str(blocker / "audit.jsonl"), "lab", "r").open()


# -- domain lists ------------------------------------------------------------------------------

XL_LIST = (
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    "Domain-0                                     0  2048     4     r-----    1000.0\n"
    "{name:<40}  7  1024     1     -b----      12.0\n"
)


class FakePool:
    """Answers `xl list` like a host running the given domains; None = host does not answer."""

    def __init__(self, running: dict[str, str | None]):
        self.running = running
        self.calls: list[str] = []

    def run(self, host: str, command: str, timeout: float | None = None) -> RunResult:
        self.calls.append(host)
        name = self.running[host]
        if name is None:
            return RunResult(host, None, f"{host}: connection refused")
        return RunResult(host, Output(XL_LIST.format(name=name), 0))


def test_domain_watch_round_proves_only_hosts_that_answered_it():
    """A silent host is never vouched for by an older list (the snapshot's or a previous one)."""
    from xenfab.start.watch import DomainWatch

    hosts = [Host("xen01", toolstack="xl"), Host("xen02", toolstack="xm"), Host("xen03")]
    hosts[2].domains = [Domain("old", 512, 1)]
    pool = FakePool({"xen01": "web01", "xen02": "db01", "xen03": None, "xen04": "x"})
    hosts.append(Host("xen04", reachable=False))
    watch = DomainWatch(pool, hosts, 5, lambda _m: None)
    try:
        rnd = watch.begin(skip={"xen04"})
        assert watch.wait(rnd, 5)
        lists = rnd.lists()
        assert "web01" in lists["xen01"] and "db01" in lists["xen02"]
        assert "xen03" not in lists and "xen04" not in lists
        missing = rnd.unproven(["xen01", "xen02", "xen03"])
        assert list(missing) == ["xen03"] and "connection refused" in missing["xen03"]
        assert rnd.unproven(["xen01", "xen02"]) == {}
        assert "xen04" not in pool.calls  # a dead host is not read
        # A later round starts from nothing: what xen01 said before vouches for nothing now.
        later = watch.begin()
        assert later.began >= rnd.began and later.futures.keys() == {
            "xen01",
            "xen02",
            "xen03",
            "xen04",
        }
        watch.wait(later, 5)
    finally:
        watch.stop()


def test_progress_defaults_to_stderr_and_escapes_text_from_hosts(monkeypatch):
    """--format json keeps stdout clean; a name with escapes never reaches a terminal raw."""
    import sys
    from pathlib import Path

    from xenfab.config import load_config
    from xenfab.start.engine import Engine

    fake_err, fake_out = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake_err)
    monkeypatch.setattr(sys, "stdout", fake_out)
    cfg = load_config(str(Path(__file__).resolve().parent.parent / "fabfile_config.yaml"))
    engine = Engine(cfg, cfg.environment("lab"), Snapshot("lab", "t", "xen01", True), None, None)
    assert engine.out is fake_err
    engine.progress.note("started \x1b]0;pwned\x07web01 on xen01")
    text = fake_err.getvalue()
    assert "\x1b" not in text and "\\x1b]0;pwned\\x07web01" in text
    assert fake_out.getvalue() == ""


def test_the_step_prompt_asks_on_stderr_so_stdout_keeps_only_the_result(monkeypatch, capsys):
    import io

    from xenfab.start.engine import terminal_prompt

    class TtyIn(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", TtyIn("s\n"))
    ask = terminal_prompt()
    assert ask("Start web01 on xen02? ") == "s"
    out, err = capsys.readouterr()
    assert out == "" and err == "Start web01 on xen02? "


# -- the engine's units in isolation ---------------------------------------------------------


def test_the_step_prompter_reads_each_answer_and_gives_up_on_nonsense():
    from xenfab.start.prompter import PROMPT, StepPrompter

    answers: list[str] = []
    notes: list[str] = []
    seen_flag: list[bool] = []

    def prompt(text: str) -> str:
        seen_flag.append(p.in_prompt)
        assert text == PROMPT.format(guest="web01", host="xen02")
        return answers.pop(0)

    p = StepPrompter(prompt, notes.append)
    for typed, want in [("", "start"), (" Y ", "start"), ("yes", "start"), ("s", "skip")]:
        answers[:] = [typed]
        assert p.ask("web01", "xen02") == want, typed
    for typed, want in [("no", "skip"), ("N", "skip"), ("q", "quit"), ("QUIT", "quit")]:
        answers[:] = [typed]
        assert p.ask("web01", "xen02") == want, typed
    assert all(seen_flag) and not p.in_prompt and not notes
    # A wrong answer is explained and asked again; five of them end the run's questions.
    answers[:] = ["maybe", "s"]
    assert p.ask("web01", "xen02") == "skip" and notes == [
        "answer Enter (start), s (skip) or q (quit)"
    ]
    answers[:] = ["?"] * 5 + [""]
    assert p.ask("web01", "xen02") == "quit" and answers == [""]
    assert len(notes) == 6


def test_the_step_prompter_quits_at_the_end_of_input_and_clears_its_flag():
    from xenfab.start.prompter import StepPrompter

    def closed(text: str) -> str:
        raise EOFError

    p = StepPrompter(closed, lambda text: None)
    assert p.ask("web01", "xen02") == "quit" and not p.in_prompt


def test_quorum_refusals_speak_each_backends_words():
    from xenfab.cluster import backend
    from xenfab.start.reader import quorum_refusal
    from xenfab.tasks.core import refusal

    rg, xl = backend("rgmanager"), backend("xl")
    assert quorum_refusal(True, "here", rg) is None
    no = quorum_refusal(False, "read on xen01", rg)
    assert no == (
        "the cluster is not quorate (read on xen01): starting guests now could run them twice "
        "once the partitions rejoin; restore quorum first (clustat, cman_tool status)"
    )
    unknown = quorum_refusal(None, "read on xen01", rg)
    assert unknown.startswith("the cluster's quorum is unknown (read on xen01)")
    # A backend without the rgmanager tools does not name them.
    plain = quorum_refusal(False, "x", xl)
    assert plain.endswith("; restore quorum first") and "clustat" not in plain
    # The task's pre-check and the engine share the one text.
    assert refusal(Snapshot("lab", "t", "xen01", False)) == no
    assert refusal(Snapshot("lab", "t", "xen01", None)) == unknown
    assert refusal(Snapshot("lab", "t", "xen01", False, backend="xl")) is None


def test_the_reader_refuses_unless_quorate_and_counts_fenced_members_dead():
    from xenfab.cluster import backend
    from xenfab.start.reader import ClusterReader

    env = _lab_env()
    reader = ClusterReader(
        backend("rgmanager"), env, "xen01", dead_hosts={"xen03"}, note=print, audit=print
    )
    with pytest.raises(StartRefused, match=r"not quorate \(clustat on xen01\).*cman_tool"):
        reader.refuse_unless_quorate(False, "clustat on xen01")
    with pytest.raises(StartRefused, match="quorum is unknown"):
        reader.refuse_unless_quorate(None, "snapshot")
    reader.refuse_unless_quorate(True, "snapshot")
    state = ClusterState(True, {"xen01": True, "xen02": False})
    # Offline alone is a partition as much as a death: only the fencing record proves it.
    assert reader.dead_now(state) == {"xen03"}
    state.fenced = {"xen02": False}
    assert reader.dead_now(state) == {"xen03"}
    state.fenced = {"xen02": True}
    assert reader.dead_now(state) == {"xen02", "xen03"}
    assert reader.may_start(state) and not reader.may_start(ClusterState(False))
    xl = ClusterReader(backend("xl"), env, "xen01", note=print, audit=print)
    assert xl.may_start(ClusterState(None))


class _Fut:
    def __init__(self, names):
        self.names = names

    def done(self):
        return True

    def exception(self):
        return None

    def result(self):
        return (self.names, None if self.names is not None else "ssh: timed out")


class _Watch:
    def __init__(self, lists):
        self.lists = lists
        self.hosts = list(lists)

    def begin(self, skip=()):
        from xenfab.start.watch import Round

        return Round(0.0, {h: _Fut(v) for h, v in self.lists.items() if h not in skip})

    def wait(self, rnd, timeout):
        return True


def test_the_reader_proves_liveness_only_with_every_live_hosts_list_then_gives_up():
    from xenfab.cluster import backend
    from xenfab.start.reader import ClusterReader

    notes, audits = [], []
    reader = ClusterReader(
        backend("rgmanager"),
        _lab_env(),
        "xen01",
        liveness_wait_s=0.0,
        note=notes.append,
        audit=lambda action, **f: audits.append((action, f.get("outcome"))),
    )
    reader.attach(None, _Watch({"xen01": {"a"}, "xen02": None}))
    state = ClusterState(True, {"xen01": True, "xen02": True})
    # No round begun this turn: nothing is proven.
    assert reader.proven_domains(state, 3).domains is None
    reader.begin_round(state)
    proof = reader.proven_domains(state, 3)
    assert proof.domains is None and "xen02" in proof.stop and "--dead HOST" in proof.stop
    assert "3 guest(s) wait" in notes[-1] and audits == [("wait", "liveness-unknown")]
    # xen02 offline but not fenced: still needed (a partitioned host runs on).
    offline = ClusterState(True, {"xen02": False})
    reader.begin_round(offline)
    assert reader.proven_domains(offline, 3).domains is None
    # xen02 fenced after it left, in the cluster's record: the round proves enough without it.
    fenced = ClusterState(True, {"xen02": False}, fenced={"xen02": True})
    reader.begin_round(fenced)
    proof = reader.proven_domains(fenced, 3)
    assert proof.domains == {"xen01": {"a"}} and proof.stop is None
    assert notes[-1] == "every live host listed its domains: starting again"


def _lab_env():
    from pathlib import Path

    from xenfab.config import load_config

    cfg = load_config(str(Path(__file__).resolve().parent.parent / "fabfile_config.yaml"))
    return cfg.environment("lab")


def test_start_options_defaults_are_a_plain_run_and_cannot_change():
    import dataclasses

    from xenfab.start import StartOptions

    o = StartOptions()
    assert (o.only_hosts, o.parallel, o.dry_run, o.step, o.break_lock) == (
        None,
        None,
        False,
        False,
        False,
    )
    assert o.dead_hosts == frozenset() and o.prompt is None and o.out is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.parallel = 3  # type: ignore[misc]
    given = StartOptions(only_hosts=["xen01"], dead_hosts=["xen02", "xen02"])
    assert given.only_hosts == frozenset({"xen01"}) and given.dead_hosts == frozenset({"xen02"})
    assert dataclasses.replace(given, parallel=4).parallel == 4 and given.parallel is None
    with pytest.raises(TypeError):
        StartOptions(parallell=4)  # type: ignore[call-arg]


def test_the_engine_takes_its_options_from_one_value():
    from xenfab.start import StartOptions
    from xenfab.start.engine import Engine

    env = _lab_env()
    snap = Snapshot("lab", "t", "xen01", True)
    out = io.StringIO()
    e = Engine(_cfg(), env, snap, None, None, StartOptions(parallel=5, out=out))
    assert e.parallel == 5 and e.out is out and e.start_policy is env.start
    step = Engine(_cfg(), env, snap, None, None, StartOptions(parallel=5, step=True))
    assert step.parallel == 1  # step mode asks about one start at a time
    plain = Engine(_cfg(), env, snap, None, None)
    assert plain.parallel == env.start.max_starts_in_flight


def _cfg():
    from pathlib import Path

    from xenfab.config import load_config

    return load_config(str(Path(__file__).resolve().parent.parent / "fabfile_config.yaml"))


def test_outcomes_are_their_words_in_json_tables_and_counts():
    from xenfab.start import OUTCOMES, Outcome

    assert [o.value for o in OUTCOMES] == [
        "started",
        "failed",
        "already running",
        "found running",
        "skipped",
        "not-started",
        "unconfirmed",
        "not-ready",
    ]
    rep = StartReport(
        results=[GuestResult("a", "h", Outcome.STARTED), GuestResult("b", None, "failed")]
    )
    doc = json.loads(json.dumps(rep.to_dict()))
    assert [r["outcome"] for r in doc["results"]] == ["started", "failed"]
    assert doc["counts"]["started"] == 1 and doc["counts"]["failed"] == 1 and not rep.ok
    assert (
        f"{Outcome.NOT_STARTED}" == "not-started" and str(Outcome.FOUND_RUNNING) == "found running"
    )
    assert "started" in rep.table() and "Outcome." not in rep.table()


def test_the_last_look_reports_a_start_that_came_up_started_in_the_backends_words():
    from xenfab.cluster import backend
    from xenfab.start.interrupts import last_look
    from xenfab.start.outcome import Outcome
    from xenfab.start.schedule import CONFIRMING, STARTING

    up, pending, unseen = Job("up", "xen01", 0, 0), Job("p", "xen02", 0, 1), Job("u", "xen02", 0, 2)
    for j in (up, pending, unseen):
        j.command_at = 1.0
    up.phase = pending.phase = CONFIRMING
    unseen.phase = STARTING
    state = ClusterState(
        True,
        services={
            "up": ServiceState("up", "started", "xen03"),
            "p": ServiceState("p", "starting", "xen02"),
        },
    )
    ends = {e.job.guest: e for e in last_look([up, pending, unseen], state, backend("rgmanager"))}
    assert (ends["up"].outcome, ends["up"].host) == (Outcome.STARTED, "xen03")
    assert ends["p"].outcome == Outcome.UNCONFIRMED and ends["p"].message == (
        "interrupted before it was confirmed: start accepted by clusvcadm (clustat: starting); "
        "check clustat"
    )
    assert ends["u"].message.endswith("start sent; check clustat")
    xl_state = ClusterState(None, services={"up": ServiceState("up", "running", "xen01")})
    xl_ends = last_look([up, pending], xl_state, backend("xl"))
    assert xl_ends[0].outcome == Outcome.STARTED
    assert "clustat" not in xl_ends[1].message and "xl list" in xl_ends[1].message
    assert last_look([up], None, backend("rgmanager"))[0].outcome == Outcome.UNCONFIRMED


def test_interrupts_count_signals_and_break_out_of_a_prompt_or_a_second_wait():
    from xenfab.start.interrupts import Interrupts

    prompting = [False]
    irq = Interrupts(lambda: prompting[0])
    assert not irq
    irq.handler(2, None)
    assert irq.count == 1 and irq
    irq.handler(2, None)  # outside the loop a second signal only counts
    assert irq.count == 2
    irq.in_loop = True
    with pytest.raises(KeyboardInterrupt):
        irq.handler(15, None)
    prompting[0] = True
    with pytest.raises(KeyboardInterrupt):
        irq.handler(1, None)
    assert irq.count == 3  # the prompt's exception is counted by the loop, not here


def test_a_replanned_guest_takes_the_backends_replan_state():
    from xenfab.cluster import backend
    from xenfab.start.replan import only_this_guest

    assert backend("rgmanager").replan_state("stopped") == "disabled"
    assert backend("rgmanager").replan_state("failed") == "failed"
    assert backend("xl").replan_state("stopped") == "stopped"
    snap = _xl_snapshot(Guest("web", 1024, state="down"))
    assert only_this_guest(snap, "web", []).guest("web").state == "down"


def _xl_snapshot(*guests: Guest) -> Snapshot:
    """One xl host with room, and ``guests``."""
    return Snapshot(
        "lab", "now", "xen01", None, [Host("xen01", free_mib=8192)], list(guests), backend="xl"
    )


def test_a_replan_trial_keeps_unclaimed_guests_out_of_the_room():
    """xl's not-ours guests are pending in the trial: --expect must not claim them there."""
    from xenfab.start.replan import only_this_guest

    snap = _xl_snapshot(Guest("web", 1024, state="down"), Guest("old", 4096, state="not-ours"))
    trial = only_this_guest(snap, "web", [])
    assert trial.guest("old").state == "pending"
    assert trial.guest("web").state == "down"


# -- issue 19: a live lock is never broken; an audit log that cannot lie ------------------------


def _plant(path, user: str, pid: int, created_ago: int, beat_ago: int | None) -> None:
    import time as _time

    path.mkdir()
    now = int(_time.time())
    owner = {"user": user, "pid": pid, "token": "tok1"}
    (path / "owner").write_text(json.dumps(owner) + f"\n{now - created_ago}\n")
    if beat_ago is not None:
        (path / "beat").write_text(f"{now - beat_ago}\n")


def test_break_lock_refuses_a_lock_with_a_fresh_heartbeat_and_breaks_an_old_one(tmp_path):
    path = tmp_path / "xenfab.lock"
    # Another machine's run, started an hour ago, beating 3 s ago: alive.
    _plant(path, "erin@elsewhere", 4242, 3600, 3)
    lock = MasterLock(local, "xen01", str(path), "dave@here")
    with pytest.raises(StartRefused) as err:
        lock.acquire(break_lock=True)
    text = str(err.value)
    assert "erin@elsewhere (pid 4242)" in text and "That run is alive" in text
    assert re.search(r"heartbeat is 3\.\ds old", text) and "never breaks a live lock" in text
    assert not lock.held and "erin@" in (path / "owner").read_text()
    # Its heartbeat 2 minutes old: stale; broken on request only.
    (path / "beat").write_text(f"{int(__import__('time').time()) - 120}\n")
    with pytest.raises(StartRefused, match="heartbeat is 2m0[0-2]s old.*the lock is stale"):
        lock.acquire()
    lock.acquire(break_lock=True)
    assert lock.held and lock.broken is not None and lock.broken.user == "erin@elsewhere"
    lock.release()
    assert not path.exists()


def test_a_live_process_on_this_machine_keeps_its_lock_whatever_its_heartbeat(tmp_path):
    import socket

    path = tmp_path / "xenfab.lock"
    _plant(path, f"frank@{socket.gethostname()}", os.getpid(), 3600, 3600)
    lock = MasterLock(local, "xen01", str(path), "dave@here")
    with pytest.raises(StartRefused, match=rf"its process \(pid {os.getpid()}\) runs on this"):
        lock.acquire(break_lock=True)
    assert (path / "owner").exists() and not lock.held


def test_a_lock_written_before_heartbeats_is_stale_by_its_age(tmp_path):
    path = tmp_path / "xenfab.lock"
    _plant(path, "gil@elsewhere", 7, 600, None)  # no beat file: its creation is its last beat
    lock = MasterLock(local, "xen01", str(path), "dave@here")
    lock.acquire(break_lock=True)
    assert lock.held
    lock.release()


def test_the_holder_beats_and_notices_when_its_lock_is_taken(tmp_path):
    import time as _time

    path = tmp_path / "xenfab.lock"
    lock = MasterLock(local, "xen01", str(path), "dave@here")
    lock.acquire()
    (path / "beat").write_text("1\n")
    lock.beat()
    assert abs(int((path / "beat").read_text()) - _time.time()) < 5
    assert lock.trouble(_time.monotonic()) is None
    # The holder could not beat for long: it starts nothing more, before others call it stale.
    assert "cannot refresh the run lock's heartbeat" in (lock.trouble(_time.monotonic() + 31) or "")
    # Another run broke it: the next beat finds another owner and says so.
    (path / "owner").write_text(json.dumps({"user": "x@y", "token": "other"}) + "\n1\n")
    lock.beat()
    assert lock.lost and "no longer ours" in (lock.trouble(_time.monotonic()) or "")


def test_the_peek_reads_the_heartbeat_and_an_older_listing_still_parses(tmp_path):
    from xenfab.start.lock import parse_peek, peek_command

    path = tmp_path / "xenfab.lock"
    _plant(path, "erin@elsewhere", 4242, 300, 2)
    owner = parse_peek(
        subprocess.run(["sh", "-c", peek_command(str(path))], capture_output=True, text=True).stdout
    )
    assert owner is not None and owner.beat_read and owner.beat_age_s is not None
    assert owner.beat_age_s <= 5 and owner.age_s is not None and owner.age_s >= 299
    old = parse_peek("XENFAB-LOCK-HELD\n1000\n" + json.dumps({"user": "a@b", "pid": 3}) + "\n900\n")
    assert old is not None and old.age_s == 100 and not old.beat_read and old.stale() is None


def test_an_audit_log_on_a_full_device_is_refused_at_open():
    with pytest.raises(StartRefused, match="cannot write the audit log /dev/full: No space left"):
        AuditLog("/dev/full", "lab", "r").open()


def test_a_failed_audit_write_is_reported_never_dropped(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), "lab", "r")
    log.open()
    assert log.write("intent", guest="web", sync=True) is None
    assert log.failed is None
    # The disk fills: the write says why, the log remembers, and nothing more is appended.
    log._fh.write = lambda text: (_ for _ in ()).throw(OSError(28, "No space left on device"))  # type: ignore[union-attr]
    why = log.write("intent", guest="db", sync=True)
    assert why is not None and "No space left on device" in why and log.failed == why
    assert log.write("result", guest="web") is not None
    assert [json.loads(x)["action"] for x in path.read_text().splitlines()] == ["open", "intent"]


def test_the_report_says_how_old_the_lists_were_at_the_worst_start():
    report = StartReport(results=[GuestResult("web01", "xen03", "started", 2.0)], seconds=3.0)
    assert report.to_dict()["max_liveness_age_s"] is None
    assert "domain lists" not in report.summary()
    report.max_liveness_age_s = 0.04321
    assert report.to_dict()["max_liveness_age_s"] == 0.043
    assert report.summary().endswith("; domain lists at most 0.04s old at each start")


def test_the_status_says_what_queued_starts_wait_for():
    status = counts_line(
        {"total": 20, "started": 4, "running": 4}, 30, {"a slot": 6, "tier 2": 5, "a retry": 1}
    )
    assert status == "4/20 started, 4 running, 6 wait for a slot, 5 wait for tier 2, ETA 30.0s"
