"""A run read back from its audit lines (xenfab/show/timeline.py) and the text Gantt per host."""

from __future__ import annotations

import datetime as _dt
import json
from types import SimpleNamespace

import pytest

from xenfab.run.timeline import load_run, write_report
from xenfab.show.timeline import (
    MIN_WIDTH,
    WIDTH,
    AuditLogError,
    gantt_text,
    gantt_width,
    parse_lines,
    pick_run,
    timeline_of,
    with_plan,
)

T0 = _dt.datetime(2026, 12, 7, 3, 0, 0, tzinfo=_dt.timezone.utc)


def rec(at: float, action: str, guest=None, host=None, outcome=None, run="r1", env="prod", **kw):
    """One audit line as AuditLog writes it, ``at`` seconds after T0."""
    when = (T0 + _dt.timedelta(seconds=at)).isoformat(timespec="milliseconds")
    line = {
        "time": when,
        "user": "ops@ws",
        "environment": env,
        "run": run,
        "action": action,
        "guest": guest,
        "host": host,
        "command": None,
        "outcome": outcome,
        "plan_id": "p1",
    }
    line.update(kw)
    return line


def started(guest, host, sent, accepted, confirmed, run="r1", env="prod"):
    return [
        rec(sent, "intent", guest, host, "sending", run, env, attempt=1),
        rec(accepted, "start", guest, host, "accepted", run, env),
        rec(confirmed, "result", guest, host, "started", run, env, attempts=1),
    ]


def run_lines():
    """A run: db01 ready by probe, web01 confirmed only, app01 failed, app02 moved then up."""
    lines = [rec(0.0, "open", outcome="writable")]
    lines += started("db01", "xen01", 1.0, 1.5, 4.0)
    lines.append(rec(6.0, "ready", "db01", "xen01", "ready", ready_s=5.0))
    lines += started("web01", "xen02", 1.2, 1.4, 5.0)
    lines += [
        rec(1.3, "intent", "app01", "xen02", "sending", attempt=1),
        rec(1.6, "start", "app01", "xen02", "failed", message="refused", exit_code=1),
        rec(2.0, "result", "app01", "xen02", "failed", message="clusvcadm: <b>boom</b> & more"),
        rec(1.1, "intent", "app02", "xen01", "sending", attempt=1),
        rec(3.0, "relocate", "app02", "xen03", "queued", previous="xen01"),
        rec(3.5, "intent", "app02", "xen03", "sending", attempt=2),
        rec(3.6, "start", "app02", "xen03", "accepted"),
        rec(7.0, "result", "app02", "xen03", "started", attempts=2),
        rec(8.0, "run-end", outcome="done", counts={"started": 3, "failed": 1, "not-started": 2}),
    ]
    return lines


def test_spans_from_the_audit_lines():
    tl = timeline_of(run_lines(), "r1")
    by = {s.guest: s for s in tl.spans}
    assert set(by) == {"db01", "web01", "app01", "app02"}
    # Seconds from the first command (db01's at 1.0 is not first: app02's left at 1.1? no, 1.0).
    assert by["db01"].sent_s == pytest.approx(0.0)
    assert by["db01"].accepted_s == pytest.approx(0.5)
    # A ready line wins over the confirmation of `started`.
    assert by["db01"].ready_s == pytest.approx(5.0)
    assert by["web01"].ready_s == pytest.approx(4.0)  # no probe: confirmed = ready
    assert by["app01"].outcome == "failed" and by["app01"].ready_s is None
    assert by["app01"].accepted_s is None  # its start line said failed, not accepted
    assert by["app01"].end_s == pytest.approx(1.0)
    # Moved: its last host, its bar from its first command, its tries.
    assert by["app02"].host == "xen03" and by["app02"].sent_s == pytest.approx(0.1)
    assert by["app02"].attempts == 2
    assert [s.guest for s in tl.still_down()] == ["app01"]
    # The run-end counts 2 not started; the log names none of them: the plan left them out.
    assert tl.unnamed_down == 2 and tl.ended == "done"
    assert tl.hosts() == ["xen01", "xen02", "xen03"]
    assert [s.guest for s in tl.on("xen02")] == ["web01", "app01"]


def test_a_guest_that_never_answered_is_down_not_started():
    lines = started("db01", "xen01", 0.0, 0.1, 2.0)
    lines.append(rec(30.0, "ready", "db01", "xen01", "timeout"))
    tl = timeline_of(lines, "r1")
    (span,) = tl.spans
    assert span.outcome == "not-ready" and span.ready_s is None and span.down
    assert span.to_dict()["ready_s"] is None


def test_json_entries_carry_the_documented_keys():
    tl = timeline_of(run_lines(), "r1")
    entry = next(e for e in tl.to_json() if e["guest"] == "db01")
    assert {
        "guest",
        "host",
        "sent_s",
        "accepted_s",
        "ready_s",
        "planned_ready_s",
        "outcome",
    } <= set(entry)
    assert entry["ready_s"] == 5.0 and entry["planned_ready_s"] is None


def test_planned_values_from_the_log_or_the_plan():
    lines = run_lines()
    lines[1]["tier"] = 1
    lines[1]["expected_ready_s"] = 4.5
    lines[1]["depends_on"] = ["dns01"]
    tl = timeline_of(lines, "r1")
    db = next(s for s in tl.spans if s.guest == "db01")
    assert (db.tier, db.planned_ready_s, db.depends_on) == (1, 4.5, ("dns01",))
    # The plan fills in what the log lacks; an assignment without expected times adds none.
    plan = [
        SimpleNamespace(guest="web01", host="xen02", tier=2, expected_ready_s=3.0),
        SimpleNamespace(guest="app01", host="xen02", tier=2),
    ]
    with_plan(tl, plan)
    by = {s.guest: s for s in tl.spans}
    assert by["web01"].planned_ready_s == 3.0 and by["web01"].tier == 2
    assert by["app01"].planned_ready_s is None and by["app01"].tier == 2
    assert by["db01"].planned_ready_s == 4.5  # the log's own figure is kept


def test_the_last_run_of_the_environment_is_picked():
    lines = run_lines()
    lines += started("x1", "h1", 20.0, 20.1, 21.0, run="r2", env="prod")
    lines += started("y1", "h9", 30.0, 30.1, 31.0, run="r3", env="lab")
    assert pick_run(lines, "prod", None, "log") == "r2"
    assert pick_run(lines, "prod", "r1", "log") == "r1"
    with pytest.raises(AuditLogError, match="no run 'r3' of environment prod"):
        pick_run(lines, "prod", "r3", "log")
    with pytest.raises(AuditLogError, match="no run of environment test"):
        pick_run(lines, "test", None, "log")


def test_a_corrupt_line_is_named_with_its_number():
    good = json.dumps(rec(0.0, "open"))
    with pytest.raises(AuditLogError, match=r"audit.jsonl line 3: not a JSON line"):
        parse_lines([good, "", '{"time": "2026-', good], "audit.jsonl")
    with pytest.raises(AuditLogError, match="line 1: not an audit record"):
        parse_lines(["[1, 2]"], "audit.jsonl")


def _write(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_report_file_and_bad_input(tmp_path):
    log = tmp_path / "audit.jsonl"
    with pytest.raises(AuditLogError, match="no audit log at"):
        load_run(str(log), "prod")
    _write(log, run_lines())
    cfg = SimpleNamespace(audit_log_of=lambda env: str(log))
    env = SimpleNamespace(name="prod")
    written = write_report(cfg, env, out=str(tmp_path / "r.html"))
    assert written.timeline.run == "r1"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(AuditLogError, match="cannot write the report"):
        write_report(cfg, env, out=str(tmp_path / "no" / "such" / "dir.html"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "r.html"]


def _many_hosts(n_hosts: int, per_host: int, name_len: int = 30):
    lines = []
    for h in range(n_hosts):
        host = f"xen{h:02d}-" + "x" * name_len
        for g in range(per_host):
            t = g * 5.0 + h * 0.1
            lines += started(f"g{h}-{g}", host, t, t + 0.1, t + 5.0)
    lines[0]["expected_ready_s"] = 500.0  # a plan much longer than the run
    return lines


@pytest.mark.parametrize("columns", [None, 200, 100, 80, 60, 30])
def test_the_gantt_fits_its_width(columns):
    tl = timeline_of(_many_hosts(20, 10), "r1")
    width = gantt_width(columns)
    assert MIN_WIDTH <= width <= WIDTH
    assert width == (WIDTH if not columns else max(MIN_WIDTH, min(WIDTH, columns)))
    text = gantt_text(tl, width)
    assert text is not None
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    # A plan line and a run line per host, under a header.
    assert sum(" plan |" in line for line in lines) == 20
    assert sum(" run  |" in line for line in lines) == 20


def test_gantt_draws_overlap_failures_and_no_plan_without_one():
    tl = timeline_of(run_lines(), "r1")
    text = gantt_text(tl, 100)
    assert text is not None and "plan |" not in text and "planned" not in text
    rows = {line.split()[0]: line for line in text.splitlines() if " run  |" in line}
    cells = {h: row.split("|")[1] for h, row in rows.items()}
    # xen02: web01 (0.2-4.0) and app01 (0.3-1.0) overlap, then web01 alone; app01 ended down.
    assert "2" in cells["xen02"] and "X" in cells["xen02"]
    assert "X" not in cells["xen01"] and "2" not in cells["xen03"]
    # Each lane ends with its last ready time; the order of the columns is the order of time.
    assert rows["xen01"].endswith("5.0s") and rows["xen03"].endswith("6.0s")
    assert cells["xen03"].index("1") > cells["xen01"].index("1")


def test_gantt_lanes_say_hosts_by_their_labels_and_tell_equal_labels_apart():
    uuid = {h: f"{n}c586172-aaaa-bbbb-cccc-{n:012d}" for n, h in enumerate(("x1", "x2", "x3"))}
    lines = [rec(0.0, "open")]
    for n, h in enumerate(("x1", "x2", "x3")):
        lines += started(f"vm{n}", uuid[h], 1.0 + n, 1.2 + n, 4.0 + n)
    tl = timeline_of(lines, "r1")
    named = gantt_text(tl, 100, {uuid["x1"]: "xen01", uuid["x2"]: "xen02", uuid["x3"]: "xen03"})
    assert named is not None
    rows = [line.split()[0] for line in named.splitlines() if " run  |" in line]
    assert rows == ["xen01", "xen02", "xen03"]
    # Two hosts labelled alike: the uuid's head says which (cut to the host column).
    same = gantt_text(tl, 100, {uuid["x1"]: "xen", uuid["x2"]: "xen", uuid["x3"]: "db"})
    assert same is not None
    heads = [line[:14] for line in same.splitlines() if " run  |" in line]
    # In the order people read them: by the name shown.
    assert heads == ["db (2c586172) ", "xen (0c586172)", "xen (1c586172)"]


def test_labels_come_from_the_intents_when_the_run_gives_none():
    lines = [rec(0.0, "open")] + started("vm-uuid-1", "host-uuid-1", 1.0, 1.2, 4.0)
    lines[1].update(guest_label="db02", host_label="xen01")
    tl = timeline_of(lines, "r1")
    assert tl.labels == {"vm-uuid-1": "db02", "host-uuid-1": "xen01"}
    assert tl.spans[0].said == "db02 (vm-uuid-)" and tl.said("host-uuid-1") == "xen01 (host-uui)"
    text = gantt_text(tl, 100)  # fab report: no snapshot, only the log
    assert text is not None
    assert [line.split()[0] for line in text.splitlines() if " run  |" in line] == ["xen01"]


def test_no_gantt_when_nothing_was_sent():
    lines = [rec(0.0, "open"), rec(1.0, "not-started", "a", None, "not-started")]
    assert gantt_text(timeline_of(lines, "r1")) is None


def test_a_log_that_is_not_a_regular_file_is_one_line():
    with pytest.raises(AuditLogError, match="/dev/full: not a regular file"):
        load_run("/dev/full", "lab")
