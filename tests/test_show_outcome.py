"""The end of a run, as data: STILL DOWN from layout + report, and the layout JSON (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from xenfab import show
from xenfab.cluster import backend
from xenfab.plan.layout import Assignment, HostUse, Layout, Unplaced
from xenfab.snapshot import Guest, Host, Snapshot
from xenfab.start.report import GuestResult, StartReport


def _case():
    snap = Snapshot(
        environment="t",
        taken_at="2026-01-01T00:00:00Z",
        master="xen01",
        quorate=True,
        hosts=[Host("xen01", free_mib=4096, total_mib=8192), Host("xen02", reachable=False)],
        guests=[Guest("a", 1024, state="disabled"), Guest("b", 2048, state="failed")],
        errors=["xen02 (127.0.0.2:22): connection refused"],
    )
    layout = Layout(
        assignments=[
            Assignment("a", "xen01", 1024, 1, 0, "round-robin"),
            Assignment("b", "xen01", 2048, 1, 0, "round-robin"),
        ],
        unplaced=[Unplaced("c", 0, "config unreadable: x.cfg: 3: name is computed")],
        hosts=[
            HostUse("xen01", "ok", 4096, 1024, 0, 2, None),
            HostUse("xen02", "unreachable", 0, 0, 0, 0, None),
        ],
    )
    return snap, layout


def test_still_down_joins_unplaced_failed_and_not_started():
    snap, layout = _case()
    report = StartReport(
        results=[
            GuestResult("a", "xen01", "started"),
            GuestResult("b", "xen01", "failed", message="clusvcadm: rc 1"),
            GuestResult("c", None, "not-started", message="no host: ..."),
        ]
    )
    still = show.still_down(layout, report)
    assert [s["guest"] for s in still] == ["c", "b"]
    assert still[0]["reason"].startswith("config unreadable") and still[0]["memory_mib"] is None
    assert still[1]["reason"] == "failed on xen01: clusvcadm: rc 1"
    text = show.still_down_text(still)
    assert text.splitlines()[0].startswith("STILL DOWN: 2 guest(s)")
    assert "c (size unknown): config unreadable" in text
    assert show.still_down(layout, StartReport(dry_run=True)) == show.still_down(layout)
    refused = show.still_down(layout, refused="the cluster is not quorate (read on xen01): ...")
    assert {s["guest"] for s in refused} == {"a", "b", "c"}
    assert show.still_down_text([]).startswith("STILL DOWN: none")


def test_layout_json_carries_what_the_table_shows():
    snap, layout = _case()
    now = datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc).timestamp()
    still = show.still_down(layout)
    doc = show.layout_json(layout, snap, backend("rgmanager"), still=still, now=now)
    json.loads(json.dumps(doc))
    assert (doc["quorate"], doc["taken_at"], doc["age_s"]) == (True, snap.taken_at, 60.0)
    assert doc["gather_errors"] == snap.errors and doc["refused"] is None
    xen02 = next(h for h in doc["hosts"] if h["name"] == "xen02")
    assert xen02["free_mib_before"] is None and xen02["free_mib_after"] is None
    assert doc["unplaced"] == [
        {**doc["unplaced"][0], "guest": "c", "memory_mib": None, "reason": still[0]["reason"]}
    ]
    assert doc["complete"] is False and len(doc["commands"]) == 2


def test_text_from_hosts_is_escaped():
    snap, layout = _case()
    layout.unplaced[0].reason = "bad\x1b]0;title\x07"
    out = show.layout_text(layout.to_dict(), snap, backend("rgmanager"))
    out += show.still_down_text(show.still_down(layout))
    assert "\x1b" not in out and "\x07" not in out and "bad\\x1b]0;title\\x07" in out
