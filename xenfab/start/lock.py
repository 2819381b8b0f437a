"""The run lock on the master: two xenfab runs never start guests at the same time.

``mkdir`` is atomic on every POSIX filesystem, so whoever creates the directory owns the lock.
The owner file inside says who (user@host, pid, token) and when, in the master's own clock, so
the age of a lock is measured without trusting two machines' clocks to agree.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError, StartRefused
from ..remote import RunResult
from .report import format_duration

ACQUIRED = "XENFAB-LOCK-ACQUIRED"
HELD = "XENFAB-LOCK-HELD"
FAILED = "XENFAB-LOCK-ERROR"
RELEASED = "XENFAB-LOCK-RELEASED"
BROKEN = "XENFAB-LOCK-BROKEN"
NOT_STALE = "XENFAB-LOCK-NOT-STALE"
GONE = "XENFAB-LOCK-GONE"

Runner = Callable[[str, str], RunResult]


@dataclass
class LockOwner:
    """Who holds a lock, as its owner file says."""

    user: str = "unknown"
    pid: int | None = None
    token: str = ""
    started: str = ""
    age_s: float | None = None

    def describe(self) -> str:
        """``alice@adminbox (pid 4242) since 2024-05-01T10:00:00Z, 12m03s ago``."""
        who = self.user + (f" (pid {self.pid})" if self.pid else "")
        since = f" since {self.started}" if self.started else ""
        age = f", {format_duration(self.age_s)} ago" if self.age_s is not None else ""
        return f"{who}{since}{age}"

    def gone(self) -> bool:
        """True when the owner ran on this machine and its process no longer exists."""
        host = self.user.rpartition("@")[2]
        if not self.pid or host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def check_path(path: str) -> str:
    """Validate the configured lock path (absolute, no control characters)."""
    if not path.startswith("/") or re.search(r"[\x00-\x1f]", path) or path.rstrip("/") == "":
        raise ConfigError(f"lock_path: {path!r} must be an absolute path on the master")
    return path.rstrip("/")


class MasterLock:
    """An exclusive lock directory on the master, taken before the first start."""

    def __init__(self, run: Runner, master: str, path: str, user: str):
        """Lock ``path`` on ``master``; ``run(host, command)`` executes a remote command."""
        self.run = run
        self.master = master
        self.path = check_path(path)
        self.user = user
        self.token = secrets.token_hex(8)
        self.held = False
        self.broken: LockOwner | None = None

    def acquire(self, break_lock: bool = False) -> None:
        """Take the lock; raise StartRefused naming the owner when another run holds it."""
        owner = self._try()
        if owner is None:
            return
        if not break_lock:
            stale = " Its process is gone: the lock is stale." if owner.gone() else ""
            raise StartRefused(
                f"another xenfab run holds the lock {self.path} on {self.master}: "
                f"{owner.describe()}.{stale} If no run is active, re-run with --break-lock"
            )
        self._break(owner)
        self.broken = owner
        again = self._try()
        if again is not None:
            raise StartRefused(
                f"broke the lock {self.path} on {self.master}, but {again.describe()} "
                "took it at once; another run is starting guests"
            )

    def release(self) -> None:
        """Remove the lock if it is still ours (a run that broke it must not lose its own)."""
        if not self.held:
            return
        token = shlex.quote(self.token)
        p = shlex.quote(self.path)
        cmd = (
            f"if grep -qF {token} {p}/owner 2>/dev/null; then rm -f -- {p}/owner; "
            f"rmdir -- {p} && echo {RELEASED}; fi"
        )
        self.run(self.master, cmd)
        self.held = False

    def _try(self) -> LockOwner | None:
        p = shlex.quote(self.path)
        owner = json.dumps(
            {
                "user": self.user,
                "pid": os.getpid(),
                "token": self.token,
                "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        # The owner file is written inside the directory we just created; its second line is
        # the master's clock, and a holder's age is read against the same clock.
        cmd = (
            f"if out=$(mkdir -m 700 -- {p} 2>&1); then "
            f"{{ printf '%s\\n' {shlex.quote(owner)}; date +%s; }} > {p}/owner && echo {ACQUIRED}; "
            f"elif [ -d {p} ]; then echo {HELD}; date +%s; cat -- {p}/owner 2>/dev/null; "
            f'else echo {FAILED} "$out"; fi'
        )
        res = self.run(self.master, cmd)
        if res.error is not None or res.output is None:
            raise StartRefused(f"cannot take the lock {self.path} on {self.master}: {res.error}")
        lines = res.output.text.strip().splitlines()
        if lines and lines[-1].strip() == ACQUIRED:
            self.held = True
            return None
        if lines and lines[0].strip() == HELD:
            return _parse_owner(lines[1:])
        detail = " ".join(line.strip() for line in lines).replace(FAILED, "").strip()
        raise StartRefused(
            f"cannot take the lock {self.path} on {self.master}: {detail or 'no answer'} "
            "(check lock_path in the configuration)"
        )

    def _break(self, owner: LockOwner) -> None:
        """Move the stale lock aside, atomically, only if it is still the one ``owner`` holds.

        ``mv -T`` is one rename(2): of two runs breaking the same stale lock, one moves it to
        ``PATH.broken-TOKEN`` and the other's rename fails (that name is taken by a non-empty
        directory), so neither can take away a lock the other has just created. The moved lock
        is checked once more: if it is not the stale owner's (the owner released it and a new
        run locked in between), it is put back and the break refused. The moved directory is
        kept as the record of what was broken.
        """
        p = shlex.quote(self.path)
        token = owner.token or "no-token"
        if not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", token):
            raise StartRefused(f"cannot break the lock {self.path}: its owner file is unreadable")
        aside = shlex.quote(f"{self.path}.broken-{token}")
        check = f"grep -qF {shlex.quote(token)} {aside}/owner" if owner.token else "true"
        if not owner.token:
            # No owner file yet (or one without a token): only an empty lock may be moved.
            check = f"! [ -s {aside}/owner ]"
        cmd = (
            f"if mv -T -- {p} {aside} 2>/dev/null; then "
            f"if {check}; then : > {aside}/broken; echo {BROKEN}; "
            f"else mv -T -- {aside} {p} 2>/dev/null; echo {NOT_STALE}; fi; "
            f"else echo {GONE}; fi"
        )
        res = self.run(self.master, cmd)
        if res.error is not None or res.output is None:
            raise StartRefused(f"cannot break the lock {self.path} on {self.master}: {res.error}")
        said = res.output.text.strip().splitlines()[-1:] or [""]
        if said[0] == NOT_STALE:
            raise StartRefused(
                f"did not break the lock {self.path} on {self.master}: it is no longer the stale "
                f"one of {owner.describe()}; another run holds it now"
            )
        # BROKEN, or GONE: another breaker moved it first; the next mkdir decides who holds it.


def _parse_owner(lines: list[str]) -> LockOwner:
    """The holder from ``date +%s`` then the owner file (JSON line, creation time)."""
    owner = LockOwner()
    now = _int(lines[0]) if lines else None
    if len(lines) >= 2:
        try:
            data = json.loads(lines[1])
        except ValueError:
            data = {}
        if isinstance(data, dict):
            owner.user = str(data.get("user") or "unknown")
            owner.pid = data.get("pid") if isinstance(data.get("pid"), int) else None
            owner.token = str(data.get("token") or "")
            owner.started = str(data.get("started") or "")
    created = _int(lines[2]) if len(lines) >= 3 else None
    if now is not None and created is not None:
        owner.age_s = max(0.0, float(now - created))
    if len(lines) < 2:
        # mkdir won but the owner file is not written yet (or the writer died in between).
        owner.user = "unknown (no owner file)"
    return owner


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None
