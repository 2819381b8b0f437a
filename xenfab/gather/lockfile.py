"""The run lock as it lies on the lock host: its owner file, its heartbeat, and the peek.

Gathering reads the lock in the same round trip (``peek_command``, ``parse_peek``); the start
engine takes and keeps it (xenfab.start.lock, which writes what this module reads).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from dataclasses import dataclass

from ..errors import ConfigError
from ..textsafe import format_duration

HELD = "XENFAB-LOCK-HELD"
FAILED = "XENFAB-LOCK-ERROR"
FREE = "XENFAB-LOCK-FREE"
# Separates the owner file from the heartbeat in a listing (older listings have neither).
BEAT_MARK = "XENFAB-LOCK-BEAT"
# A heartbeat older than this makes the lock stale (xenfab.start.lock beats every few seconds).
STALE_AFTER_S = 60.0
# The probe the gather batch runs on the lock's host: it reads, never takes.
PEEK_PROBE = "lock"
# Owner-file fields are remote text: bounded before they reach a snapshot or a terminal.
MAX_FIELD = 256
MAX_AGE_S = 2**31 - 1


@dataclass
class LockOwner:
    """Who holds a lock, as its owner file says."""

    user: str = "unknown"
    pid: int | None = None
    token: str = ""
    started: str = ""
    age_s: float | None = None
    # Seconds since the heartbeat (without a heartbeat file: since the owner file was written),
    # on the lock host's clock; ``beat_read``: the listing had a heartbeat section at all.
    beat_age_s: float | None = None
    beat: str = ""
    beat_read: bool = False

    def describe(self) -> str:
        """``alice@adminbox (pid 4242) since 2024-05-01T10:00:00Z, 12m03s ago``."""
        who = self.user + (f" (pid {self.pid})" if self.pid else "")
        since = f" since {self.started}" if self.started else ""
        age = f", {format_duration(self.age_s)} ago" if self.age_s is not None else ""
        return f"{who}{since}{age}"

    def local(self) -> bool:
        """True when the owner ran on this machine (its user@host names this host) with a pid."""
        return bool(self.pid) and self.user.rpartition("@")[2] == socket.gethostname()

    def gone(self) -> bool:
        """True when the owner ran on this machine and its process no longer exists."""
        if not self.local():
            return False
        try:
            os.kill(self.pid or 0, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def stale(self) -> str | None:
        """Why the lock is stale (the holder is gone), or None when it is alive or unknown."""
        if self.local():
            return f"its process (pid {self.pid}) is gone" if self.gone() else None
        if not self.beat_read:
            return None
        if self.beat_age_s is None:
            return "it has no owner file and no heartbeat"
        if self.beat_age_s > STALE_AFTER_S:
            return (
                f"its heartbeat is {format_duration(self.beat_age_s)} old "
                f"(stale after {STALE_AFTER_S:g} s)"
            )
        return None

    def alive(self) -> str | None:
        """Why the holder is known alive (its process here, a fresh heartbeat), or None."""
        if self.local():
            return None if self.gone() else f"its process (pid {self.pid}) runs on this machine"
        if self.beat_read and self.beat_age_s is not None and self.beat_age_s <= STALE_AFTER_S:
            return f"its heartbeat is {format_duration(self.beat_age_s)} old"
        return None


class LockUnread(ValueError):
    """The lock's host answered the peek with something other than held or free."""


def check_path(path: str) -> str:
    """Validate the configured lock path (absolute, no control characters)."""
    if not path.startswith("/") or re.search(r"[\x00-\x1f]", path) or path.rstrip("/") == "":
        raise ConfigError(f"lock_path: {path!r} must be an absolute path on the master")
    return path.rstrip("/")


def held_listing(p: str) -> str:
    """Shell: the HELD marker, the host's clock, the owner file, the heartbeat (parse_owner)."""
    return (
        f"echo {HELD}; date +%s; cat -- {p}/owner 2>/dev/null; echo {BEAT_MARK}; "
        f"cat -- {p}/beat 2>/dev/null"
    )


def peek_command(path: str) -> str:
    """A command printing who holds the lock at ``path`` (or that it is free), changing nothing."""
    p = shlex.quote(check_path(path))
    # `true`: a lock without its owner file yet is still held, not a failed probe.
    return (
        f"if [ -d {p} ]; then {held_listing(p)}; true; "
        f"elif [ -e {p} ]; then echo {FAILED} exists and is not a directory; "
        f"else echo {FREE}; fi"
    )


def parse_peek(text: str) -> LockOwner | None:
    """The holder ``peek_command`` printed, or None when the lock is free; LockUnread else."""
    lines = text.strip().splitlines()
    first = lines[0].strip() if lines else ""
    if first == FREE:
        return None
    if first == HELD:
        return parse_owner(lines[1:])
    detail = " ".join(line.strip() for line in lines).replace(FAILED, "").strip()
    raise LockUnread(detail[:MAX_FIELD] or "no answer")


def parse_owner(lines: list[str]) -> LockOwner:
    """The holder from ``date +%s``, the owner file (JSON line, creation time), the heartbeat.

    The heartbeat section (after ``BEAT_MARK``) is absent from older listings: the owner is
    then read as before, and nothing is said about its heartbeat.
    """
    beat: int | None = None
    beat_read = False
    marks = [i for i, line in enumerate(lines) if line.strip() == BEAT_MARK]
    if marks:
        tail = lines[marks[-1] + 1 :]
        beat_read = True
        beat = _int(tail[0]) if tail else None
        lines = lines[: marks[-1]]
    owner = _parse_owner_file(lines)
    owner.beat_read = beat_read
    now = _int(lines[0]) if lines else None
    if beat is not None:
        owner.beat = str(beat)
    if beat_read and now is not None:
        since = beat if beat is not None else _int(lines[2]) if len(lines) >= 3 else None
        if since is not None:
            owner.beat_age_s = float(min(MAX_AGE_S, max(0, now - since)))
    return owner


def _parse_owner_file(lines: list[str]) -> LockOwner:
    owner = LockOwner()
    now = _int(lines[0]) if lines else None
    if len(lines) >= 2:
        try:
            data = json.loads(lines[1])
        except ValueError:
            data = {}
        if isinstance(data, dict):
            owner.user = str(data.get("user") or "unknown")[:MAX_FIELD]
            pid = data.get("pid")
            # `True` is an int to Python; a pid is a positive whole number.
            owner.pid = pid if type(pid) is int and 0 < pid <= MAX_AGE_S else None
            owner.token = str(data.get("token") or "")[:MAX_FIELD]
            owner.started = str(data.get("started") or "")[:MAX_FIELD]
    created = _int(lines[2]) if len(lines) >= 3 else None
    if now is not None and created is not None:
        owner.age_s = float(min(MAX_AGE_S, max(0, now - created)))
    if len(lines) < 2:
        # mkdir won but the owner file is not written yet (or the writer died in between).
        owner.user = "unknown (no owner file)"
    return owner


def _int(text: str) -> int | None:
    text = text.strip()
    # Bounded: a clock is a few digits, and int() of thousands of them raises.
    return int(text) if text.isdigit() and len(text) <= 20 else None
