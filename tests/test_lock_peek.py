"""The run lock read by gathering (peeked, never taken): probe output, snapshot, refusal, text."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from xenfab import show
from xenfab.cluster import Output, Probe
from xenfab.gather.assemble import HostReport, lock_seen
from xenfab.gather.batch import build_script, split_output
from xenfab.snapshot import LockSeen, Snapshot
from xenfab.start.lock import (
    FREE,
    HELD,
    PEEK_PROBE,
    LockUnread,
    held_message,
    parse_peek,
    peek_command,
    seen_refusal,
)
from xenfab.tasks.core import refusal


def sh(command: str) -> str:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True).stdout


def plant(path: Path, owner: dict | None, created: int | None) -> None:
    path.mkdir()
    if owner is not None:
        (path / "owner").write_text(json.dumps(owner) + (f"\n{created}\n" if created else "\n"))


def snapshot(lock: LockSeen | None, backend: str = "rgmanager") -> Snapshot:
    return Snapshot(
        environment="t",
        taken_at="2026-01-01T00:00:00Z",
        master="xen01",
        quorate=True if backend == "rgmanager" else None,
        backend=backend,
        lock=lock,
    )


def test_peek_reads_a_held_lock_in_the_host_clock_and_changes_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "xenfab lock"  # a space: the path reaches the shell quoted
    owner = {"user": "alice@box", "pid": 4242, "token": "abc123", "started": "2026-12-02T01:00:00Z"}
    plant(lock, owner, int(time.time()) - 190)
    before = sorted(p.name for p in tmp_path.iterdir())
    got = parse_peek(sh(peek_command(str(lock))))
    assert got is not None
    assert (got.user, got.pid, got.token, got.started) == (
        "alice@box",
        4242,
        "abc123",
        "2026-12-02T01:00:00Z",
    )
    assert got.age_s is not None and 189 <= got.age_s <= 200
    assert got.describe().startswith("alice@box (pid 4242) since 2026-12-02T01:00:00Z, 3m1")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (lock / "owner").exists()


def test_peek_free_empty_and_not_a_directory(tmp_path: Path) -> None:
    lock = tmp_path / "xenfab.lock"
    assert parse_peek(sh(peek_command(str(lock)))) is None
    assert not lock.exists()
    # mkdir won, the owner file is not written yet: held all the same.
    plant(lock, None, None)
    empty = parse_peek(sh(peek_command(str(lock))))
    assert empty is not None and empty.user == "unknown (no owner file)" and empty.pid is None
    other = tmp_path / "file.lock"
    other.write_text("")
    with pytest.raises(LockUnread, match="not a directory"):
        parse_peek(sh(peek_command(str(other))))


@pytest.mark.parametrize(
    "text, why",
    [("", "no answer"), ("sh: permission denied\n", "permission denied")],
)
def test_peek_output_that_says_neither_is_unread(text: str, why: str) -> None:
    with pytest.raises(LockUnread, match=why):
        parse_peek(text)


def test_hostile_owner_file_is_bounded() -> None:
    huge = "9" * 5000
    data = json.dumps({"user": "x" * 10_000, "pid": True, "token": "t"})
    owner = parse_peek(f"{HELD}\n{huge}\n{data}\n1\n")
    assert owner is not None and len(owner.user) == 256 and owner.pid is None
    assert owner.age_s is None  # the host's clock was not a number we read
    assert parse_peek(f"{FREE}\n") is None


def test_probe_rides_the_batch_and_splits_back(tmp_path: Path) -> None:
    lock = tmp_path / "xenfab.lock"
    plant(lock, {"user": "bob@ws", "pid": 7, "token": "tok"}, int(time.time()))
    nonce = "feedc0de"
    script = build_script(
        nonce, [Probe("x", "echo hi"), Probe(PEEK_PROBE, peek_command(str(lock)))]
    )
    split = split_output(sh(script), nonce)
    assert split.complete and split.outputs[PEEK_PROBE].exit_code == 0
    seen = lock_seen("xen01", str(lock), HostReport("xen01", split.outputs))
    assert seen.held and seen.error is None
    assert (seen.host, seen.user, seen.pid, seen.token) == ("xen01", "bob@ws", 7, "tok")
    assert seen.age_s is not None and seen.age_s <= 5


def test_lock_seen_says_why_it_was_not_read() -> None:
    down = lock_seen("xen01", "/l", HostReport("xen01", error="connection refused"))
    assert not down.held and down.error == "lock host xen01 unreachable"
    assert lock_seen("xen09", "/l", None).error == "lock host xen09 was not asked"
    no_probe = lock_seen("xen02", "/l", HostReport("xen02", {"info": Output("", 0)}))
    assert no_probe.error == "lock not read on xen02"
    bad = lock_seen("xen01", "/l", HostReport("xen01", {PEEK_PROBE: Output("garbage", 0)}))
    assert not bad.held and "garbage" in (bad.error or "")


HELD_LOCK = LockSeen(
    host="xen01",
    path="/var/lock/xenfab.lock",
    held=True,
    user="alice@box",
    pid=4242,
    token="abc",
    started="2026-12-02T01:00:00Z",
    age_s=190,
)


def test_snapshot_round_trips_the_lock_and_old_snapshots_load_without_it() -> None:
    snap = snapshot(HELD_LOCK)
    data = json.loads(snap.to_json())
    assert data["lock"]["held"] is True and data["lock"]["user"] == "alice@box"
    assert Snapshot.from_dict(data) == snap
    old = {k: v for k, v in data.items() if k != "lock"}
    assert Snapshot.from_dict(old).lock is None
    free = snapshot(LockSeen(host="xen01", path="/l"))
    assert Snapshot.from_dict(json.loads(free.to_json())).lock == free.lock


@pytest.mark.parametrize(
    "field, value",
    [("pid", True), ("pid", -1), ("age_s", 1.5), ("held", "yes"), ("host", "xen 01")],
)
def test_snapshot_lock_is_validated(field: str, value: object) -> None:
    from xenfab.snapshot import SnapshotError

    data = json.loads(snapshot(HELD_LOCK).to_json())
    data["lock"][field] = value
    with pytest.raises(SnapshotError, match=f"lock.{field}"):
        Snapshot.from_dict(data)


def test_refusal_names_the_holder_unless_told_not_to_refuse_on_the_lock() -> None:
    for backend in ("rgmanager", "xl"):
        snap = snapshot(HELD_LOCK, backend)
        why = refusal(snap)
        assert why == seen_refusal(HELD_LOCK)
        assert why is not None and why.startswith(
            "another xenfab run holds the lock /var/lock/xenfab.lock on xen01: alice@box (pid 4242)"
        )
        assert "--break-lock" in why
        assert refusal(snap, lock=False) is None
    assert refusal(snapshot(LockSeen(host="xen01", path="/l"))) is None
    assert refusal(snapshot(LockSeen(host="xen01", path="/l", error="lock host down"))) is None
    assert refusal(snapshot(None)) is None
    # Quorum is said first: it is what to fix first.
    inquorate = snapshot(HELD_LOCK)
    inquorate.quorate = False
    assert "quorate" in (refusal(inquorate) or "")


def test_the_engine_and_the_peek_say_one_message() -> None:
    from xenfab.start.lock import owner_seen

    assert seen_refusal(HELD_LOCK) == held_message(
        HELD_LOCK.path, HELD_LOCK.host, owner_seen(HELD_LOCK)
    )


def test_lock_text() -> None:
    line = show.lock_text(HELD_LOCK)
    assert line == (
        "run lock on xen01 held by alice@box (pid 4242) since 2026-12-02T01:00:00Z, 3m10s ago: "
        "starts would be refused (fab start-all --break-lock if that run is gone)"
    )
    saved = show.lock_text(HELD_LOCK, saved_at="2026-01-01T00:00:00Z")
    assert saved is not None and "at the time of the snapshot (2026-01-01T00:00:00Z)" in saved
    assert "breaks it" in (show.lock_text(HELD_LOCK, break_lock=True) or "")
    assert show.lock_text(LockSeen(host="xen01", path="/l")) is None
    assert show.lock_text(None) is None
    unread = show.lock_text(LockSeen(host="xen01", path="/l", error="lock host xen01 unreachable"))
    assert unread is not None and "not read (lock host xen01 unreachable)" in unread
    evil = LockSeen(host="xen01", path="/l", held=True, user="eve\x1b[2J@box")
    assert "\x1b" not in (show.lock_text(evil) or "") and "\\x1b" in (show.lock_text(evil) or "")
