"""The run lock on the master: two xenfab runs never start guests at the same time.

``mkdir`` is atomic on every POSIX filesystem, so whoever creates the directory owns the lock.
The owner file inside says who (user@host, pid, token) and when, in the master's own clock, so
the age of a lock is measured without trusting two machines' clocks to agree. While the run
lives it rewrites a heartbeat file beside it (``beat``: the master's clock) every
``HEARTBEAT_S``; a lock is stale, and ``--break-lock`` may break it, only when its owner ran on
this machine and its process is gone, or (another machine's) when its heartbeat is older than
``STALE_AFTER_S``. A live lock is never broken.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shlex
import socket
import time
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
# Separates the owner file from the heartbeat in a listing (older listings have neither).
BEAT_MARK = "XENFAB-LOCK-BEAT"
BEAT_OK = "XENFAB-LOCK-BEAT-OK"
LOST = "XENFAB-LOCK-LOST"
# The holder rewrites its heartbeat this often; a heartbeat older than STALE_AFTER_S (12 missed
# beats: a long stall of the holder's machine or network, not a slow command) makes the lock
# stale. A holder that could not refresh it for HOLDER_GIVES_UP_S starts nothing more, well
# before another run may call its lock stale.
HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0
HOLDER_GIVES_UP_S = STALE_AFTER_S / 2
# The probe the gather batch runs on the lock's host (xenfab.gather): it reads, never takes.
PEEK_PROBE = "lock"
# Owner-file fields are remote text: bounded before they reach a snapshot or a terminal.
MAX_FIELD = 256
MAX_AGE_S = 2**31 - 1

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
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
        # The heartbeat, as the holder sees it (``beat``): the last time it was refreshed
        # (monotonic), the first error since, and whether the lock was found taken from us.
        self.beat_ok_at = 0.0
        self.beat_error: str | None = None
        self.lost = False

    def acquire(self, break_lock: bool = False) -> None:
        """Take the lock; StartRefused naming the owner when another run holds it.

        ``break_lock`` breaks a stale lock only (``LockOwner.stale``); a live one is refused
        all the same.
        """
        owner = self._try()
        if owner is None:
            self.beat_ok_at = time.monotonic()
            return
        if not break_lock or owner.stale() is None:
            raise StartRefused(held_message(self.path, self.master, owner, break_lock=break_lock))
        self._break(owner)
        self.broken = owner
        again = self._try()
        if again is not None:
            raise StartRefused(
                f"broke the lock {self.path} on {self.master}, but {again.describe()} "
                "took it at once; another run is starting guests"
            )
        self.beat_ok_at = time.monotonic()

    def beat(self) -> None:
        """Refresh the heartbeat, only while the lock is still ours (else ``lost``)."""
        if not self.held or self.lost:
            return
        p = shlex.quote(self.path)
        token = shlex.quote(self.token)
        tmp = shlex.quote(f"{self.path}/beat.{self.token}")
        # A rename: a reader sees the old beat or the new one, never half of one.
        cmd = (
            f"if grep -qF {token} {p}/owner 2>/dev/null; then "
            f"date +%s > {tmp} && mv -f -- {tmp} {p}/beat && echo {BEAT_OK}; "
            f"else echo {LOST}; fi"
        )
        res = self.run(self.master, cmd)
        text = res.output.text.strip() if res.error is None and res.output is not None else ""
        if text.endswith(BEAT_OK):
            self.beat_ok_at = time.monotonic()
            self.beat_error = None
        elif text.endswith(LOST):
            self.lost = True
        else:
            self.beat_error = res.error or text[:200] or "no answer"

    def trouble(self, now: float) -> str | None:
        """Why the holder must start nothing more (its lock lost, or unrefreshed), or None."""
        if not self.held:
            return None
        if self.lost:
            return (
                f"the run lock {self.path} on {self.master} is no longer ours (another run "
                "broke it)"
            )
        if now - self.beat_ok_at > HOLDER_GIVES_UP_S:
            return (
                f"cannot refresh the run lock's heartbeat on {self.master} for "
                f"{HOLDER_GIVES_UP_S:g} s ({self.beat_error or 'no answer'}): another run "
                f"may call it stale after {STALE_AFTER_S:g} s"
            )
        return None

    def release(self) -> None:
        """Remove the lock if it is still ours (a run that broke it must not lose its own)."""
        if not self.held:
            return
        token = shlex.quote(self.token)
        p = shlex.quote(self.path)
        cmd = (
            f"if grep -qF {token} {p}/owner 2>/dev/null; then rm -f -- {p}/owner {p}/beat "
            f"{p}/beat.*; rmdir -- {p} && echo {RELEASED}; fi"
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
            f"{{ printf '%s\\n' {shlex.quote(owner)}; date +%s; }} > {p}/owner && "
            f"{{ date +%s > {p}/beat; echo {ACQUIRED}; }}; "
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
        if not owner.gone():
            # Stale by its heartbeat: a beat written since the listing means the holder lives.
            beat = f"{self.path}.broken-{token}/beat"
            same = (
                f'[ "$(cat -- {shlex.quote(beat)} 2>/dev/null)" = {shlex.quote(owner.beat)} ]'
                if owner.beat
                else f"! [ -e {shlex.quote(beat)} ]"
            )
            check = f"{check} && {same}"
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


def held_message(path: str, host: str, owner: LockOwner, *, break_lock: bool = False) -> str:
    """Why a start is refused while ``owner`` holds the lock (the engine's and the peek's)."""
    head = f"another xenfab run holds the lock {path} on {host}: {owner.describe()}."
    alive = owner.alive()
    if alive is not None:
        return (
            f"{head} That run is alive ({alive}): wait for it to end; --break-lock never "
            "breaks a live lock"
        )
    stale = owner.stale()
    if stale is not None:
        stale = "Its process is gone" if owner.gone() else stale[0].upper() + stale[1:]
        return f"{head} {stale}: the lock is stale. If no run is active, re-run with --break-lock"
    return f"{head} If no run is active, re-run with --break-lock"


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


def configured_path(cfg: XenfabConfig, env: Environment) -> str:
    """The lock path of ``env`` (its own ``lock_path``, else the config's), checked."""
    path = str(cfg.lock_path_of(env))
    if "XENFAB_LAB_DIR" in path:
        from ..config import expand_path

        path = expand_path(path)
    return check_path(path)


def _held_listing(p: str) -> str:
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
