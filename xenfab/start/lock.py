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
from typing import TYPE_CHECKING

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
FREE = "XENFAB-LOCK-FREE"
# The probe the gather batch runs on the lock's host (xenfab.gather): it reads, never takes.
PEEK_PROBE = "lock"
# Owner-file fields are remote text: bounded before they reach a snapshot or a terminal.
MAX_FIELD = 256
MAX_AGE_S = 2**31 - 1

if TYPE_CHECKING:
    from ..snapshot import LockSeen

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


class LockUnread(ValueError):
    """The lock's host answered the peek with something other than held or free."""


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
            raise StartRefused(held_message(self.path, self.master, owner))
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
            f"elif [ -d {p} ]; then {_held_listing(p)}; "
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
            return parse_owner(lines[1:])
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


def held_message(path: str, host: str, owner: LockOwner) -> str:
    """Why a start is refused while ``owner`` holds the lock (the engine's and the peek's)."""
    stale = " Its process is gone: the lock is stale." if owner.gone() else ""
    return (
        f"another xenfab run holds the lock {path} on {host}: "
        f"{owner.describe()}.{stale} If no run is active, re-run with --break-lock"
    )


def owner_seen(seen: LockSeen) -> LockOwner:
    """The holder a snapshot's lock names, as the owner file said it."""
    return LockOwner(
        user=seen.user or "unknown",
        pid=seen.pid,
        token=seen.token or "",
        started=seen.started or "",
        age_s=float(seen.age_s) if seen.age_s is not None else None,
    )


def seen_refusal(seen: LockSeen | None) -> str | None:
    """Why a start is refused on a lock the gathered facts show held, or None."""
    if seen is None or not seen.held:
        return None
    return held_message(seen.path, seen.host, owner_seen(seen))


def configured_path(cfg: object, env: object) -> str:
    """The lock path of ``env`` (its own ``lock_path``, else the config's), checked."""
    # A per-environment lock_path (when the config has one) wins over the global key.
    path = str(getattr(env, "lock_path", None) or getattr(cfg, "lock_path", ""))
    if "XENFAB_LAB_DIR" in path:
        from ..config import expand_path

        path = expand_path(path)
    return check_path(path)


def _held_listing(p: str) -> str:
    """Shell: the HELD marker, the host's clock, then the owner file (what parse_owner reads)."""
    return f"echo {HELD}; date +%s; cat -- {p}/owner 2>/dev/null"


def peek_command(path: str) -> str:
    """A command printing who holds the lock at ``path`` (or that it is free), changing nothing."""
    p = shlex.quote(check_path(path))
    # `true`: a lock without its owner file yet is still held, not a failed probe.
    return (
        f"if [ -d {p} ]; then {_held_listing(p)}; true; "
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
    """The holder from ``date +%s`` then the owner file (JSON line, creation time)."""
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
