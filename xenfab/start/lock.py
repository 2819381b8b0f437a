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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import StartRefused
from ..gather.lockfile import (
    FAILED,
    FREE,
    HELD,
    MAX_FIELD,
    PEEK_PROBE,
    STALE_AFTER_S,
    LockOwner,
    LockUnread,
    check_path,
    held_listing,
    parse_owner,
    parse_peek,
    peek_command,
)
from ..remote import RunResult

ACQUIRED = "XENFAB-LOCK-ACQUIRED"
RELEASED = "XENFAB-LOCK-RELEASED"
BROKEN = "XENFAB-LOCK-BROKEN"
NOT_STALE = "XENFAB-LOCK-NOT-STALE"
GONE = "XENFAB-LOCK-GONE"
BEAT_OK = "XENFAB-LOCK-BEAT-OK"
LOST = "XENFAB-LOCK-LOST"
# The holder rewrites its heartbeat this often; a heartbeat older than STALE_AFTER_S (12 missed
# beats: a long stall of the holder's machine or network, not a slow command) makes the lock
# stale. A holder that could not refresh it for HOLDER_GIVES_UP_S starts nothing more, well
# before another run may call its lock stale.
HEARTBEAT_S = 5.0
HOLDER_GIVES_UP_S = STALE_AFTER_S / 2

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
    from ..snapshot import LockSeen

Runner = Callable[[str, str], RunResult]

# The lock file's format lives with gathering, which reads it (xenfab.gather.lockfile); these
# names stay importable from here, where the lock is taken.
__all__ = [
    "FREE",
    "HELD",
    "MAX_FIELD",
    "PEEK_PROBE",
    "LockOwner",
    "LockUnread",
    "MasterLock",
    "check_path",
    "configured_path",
    "held_message",
    "owner_seen",
    "parse_owner",
    "parse_peek",
    "peek_command",
    "seen_refusal",
]


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
            f"elif [ -d {p} ]; then {held_listing(p)}; "
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
        from ..paths import expand_path

        path = expand_path(path)
    return check_path(path)
