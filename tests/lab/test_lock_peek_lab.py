"""The run lock read by gathering, end to end: the real `fab` CLI against the lab (issue 11).

A lock another run holds is said by show-layout and refuses start-* before the prompt, from the
one gather round trip; --break-lock, --dry-run and --from still go on as before.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clitools import LAB_BOOT_S, fab, no_traceback

pytestmark = pytest.mark.lab
HOLDER = f"alice@{socket.gethostname()}"


@pytest.fixture
def lock(lab) -> Iterator[Path]:
    """The lab's lock path (every lab host shares this machine); removed after the test."""
    path = lab.dir / "xenfab.lock"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
    for aside in lab.dir.glob("xenfab.lock.broken-*"):
        shutil.rmtree(aside, ignore_errors=True)


def plant(path: Path, pid: int, age_s: int = 190) -> None:
    """Take the lock as another run would: mkdir, then its owner file (JSON, creation time)."""
    path.mkdir()
    owner = {"user": HOLDER, "pid": pid, "token": "peek01", "started": "2026-12-02T01:00:00Z"}
    (path / "owner").write_text(json.dumps(owner) + f"\n{int(time.time()) - age_s}\n")


def audit_lines(lab) -> list[str]:
    log = lab.dir / "audit.jsonl"
    return log.read_text().splitlines() if log.exists() else []


def test_a_held_lock_is_said_up_front_and_refuses_before_the_prompt(fresh_lab, lock, tmp_path):
    plant(lock, os.getpid())  # a live process: not stale
    table = fab("show-layout")
    no_traceback(table)
    assert table.returncode == 3, table.stderr
    first = table.stdout.splitlines()[0]
    assert first.startswith(f"REFUSED: another xenfab run holds the lock {lock} on xen01: {HOLDER}")
    assert f"(pid {os.getpid()}) since 2026-12-02T01:00:00Z, 3m1" in first
    assert "Commands (run on xen01)" in table.stdout and "STILL DOWN" in table.stdout
    assert table.stderr.strip().startswith("xenfab: refused: another xenfab run holds the lock")

    doc = json.loads(fab("show-layout", "--format", "json").stdout)
    assert doc["lock"]["held"] is True and doc["lock"]["host"] == "xen01"
    assert doc["lock"]["user"] == HOLDER and doc["lock"]["pid"] == os.getpid()
    assert 180 <= doc["lock"]["age_s"] <= 400 and doc["lock"]["path"] == str(lock)
    assert doc["refused"].startswith("another xenfab run holds the lock")
    assert doc["complete"] is False

    audit = audit_lines(fresh_lab)
    for args, stdin in ((("--yes",), None), ((), "")):
        res = fab("start-all", *args, stdin=stdin)
        no_traceback(res)
        assert res.returncode == 3, res.stderr
        # Refused before the prompt (and before "no terminal to confirm on"), plan still shown.
        assert "guest(s)? [y/N]" not in res.stderr and "no terminal" not in res.stderr
        assert res.stdout.startswith("REFUSED: another xenfab run holds the lock")
        assert "STILL DOWN" in res.stdout
        assert res.stderr.strip().splitlines()[-1].startswith("xenfab: refused: another xenfab run")
    host = fab("start-host", "xen06", "--yes")
    assert host.returncode == 3 and "another xenfab run holds the lock" in host.stderr
    # Nothing started, and the engine never ran: no audit line, the lock untouched.
    assert fresh_lab.status()["starts"] == []
    assert audit_lines(fresh_lab) == audit
    assert json.loads((lock / "owner").read_text().splitlines()[0])["token"] == "peek01"

    # A dry run says it and goes on (it takes no lock).
    dry = fab("start-all", "--dry-run", "--verbose")  # the exact commands
    assert dry.returncode in (0, 2), dry.stderr
    assert f"run lock on xen01 held by {HOLDER}" in dry.stdout
    assert "starts would be refused" in dry.stdout and "clusvcadm -e vm:" in dry.stdout

    # facts saves the lock with the snapshot; a held lock alone does not change its exit code.
    facts = fab("facts", "--format", "json")
    # Its one problem is legacy07's unreadable config (issue 19), not the lock.
    assert facts.returncode == 2 and "facts found 1 problem(s)" in facts.stderr, facts.stderr
    saved = tmp_path / "snap.json"
    saved.write_text(facts.stdout)
    assert json.loads(facts.stdout)["lock"]["held"] is True
    shutil.rmtree(lock)
    # --from: the lock as it was then, said, never refused on.
    old = fab("show-layout", "--from", str(saved))
    assert old.returncode in (0, 2), old.stderr
    assert old.stdout.startswith("run lock on xen01, at the time of the snapshot (")
    # Freed: the same show-layout plans without a word on the lock.
    free = fab("show-layout", "--format", "json")
    assert free.returncode in (0, 2), free.stderr
    lk = json.loads(free.stdout)["lock"]
    assert lk["held"] is False and lk["error"] is None and lk["host"] == "xen01"


def test_break_lock_still_breaks_a_stale_lock(fresh_lab, lock):
    plant(lock, 2**22 + 4321, age_s=3600)  # no such process on this machine: stale
    show = fab("show-layout")
    assert show.returncode == 3 and "the lock is stale" in show.stdout.splitlines()[0]
    res = fab("start-all", "--yes", "--break-lock")
    no_traceback(res)
    assert res.returncode == 2, res.stderr  # legacy07 stays down, as always in this scenario
    assert "--break-lock breaks it" in res.stdout
    assert f"broke the lock held by {HOLDER}" in res.stderr
    assert fresh_lab.status()["starts"]
    assert not lock.exists()


def test_the_lock_is_read_where_the_fallback_reader_would_take_it(fresh_lab, lock):
    """rgmanager: the lock lives on the host that reads the cluster, the fallback one too."""
    plant(lock, os.getpid())
    fresh_lab.inject("host-down", "xen01")
    try:
        doc = json.loads(fab("show-layout", "--format", "json").stdout)
    finally:
        fresh_lab.inject("host-up", "xen01")
    assert doc["master"] != "xen01"
    assert doc["lock"]["host"] == doc["master"] and doc["lock"]["held"] is True
    assert doc["refused"].startswith(f"another xenfab run holds the lock {lock} on {doc['master']}")


@pytest.fixture
def xl_then_back(xl_lab) -> Iterator:
    """The xl lab, left as the session's default scenario (tests on `lab` read rgmanager)."""
    yield xl_lab
    xl_lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="rgmanager")


def test_xl_lab_a_held_lock_refuses_before_any_start(xl_then_back, lock):
    xl_lab = xl_then_back
    plant(lock, os.getpid())
    table = fab("show-layout", "--env", "lab-xl")
    assert table.returncode == 3, table.stderr
    assert table.stdout.startswith(f"REFUSED: another xenfab run holds the lock {lock} on xen01")
    res = fab("start-all", "--env", "lab-xl", "--yes")
    no_traceback(res)
    assert res.returncode == 3 and "guest(s)? [y/N]" not in res.stderr
    assert xl_lab.status()["starts"] == []
    shutil.rmtree(lock)
    again = fab("show-layout", "--env", "lab-xl", "--format", "json")
    assert again.returncode in (0, 2) and json.loads(again.stdout)["lock"]["held"] is False
