"""The audit log: one JSON line per action on the cluster, appended to a local file.

It records who did what where and how it went, so the morning-after question "who started web01
on xen03, and when?" has an answer. It never records secrets: no environment, no keys, no
passwords, only names, commands (which carry none) and outcomes.

A write that fails is never dropped silently: ``open`` writes and flushes a first line (the run
is refused when it cannot), every later failure is kept in ``failed`` (the engine starts nothing
more), and an ``intent`` that cannot be written keeps its start from being sent.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import getpass
import json
import os
import socket
import threading
from typing import Any, TextIO

from ..errors import StartRefused


def local_user() -> str:
    """``user@host`` of whoever runs xenfab, as the audit log and the lock name them."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container: still say something
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


class AuditLog:
    """Append-only JSON lines; ``write`` is safe to call from several threads."""

    def __init__(self, path: str, environment: str, run_id: str):
        """Prepare the log at ``path`` (opened by ``open``)."""
        self.path = os.path.expanduser(path)
        self.environment = environment
        self.run_id = run_id
        self.user = local_user()
        # The run's plan id (plan.saved.plan_id), recorded with every line; None: no plan named.
        self.plan_id: str | None = None
        self._fh: TextIO | None = None
        self._lock = threading.Lock()
        # The first write that failed (path and reason); None while every line reached the file.
        self.failed: str | None = None

    def open(self) -> None:
        """Open the log and write (and flush) a first line; StartRefused when that fails.

        Opening alone proves little (``/dev/full`` opens; a full disk fails on the first
        flush): the run is refused unless a line reached the file before any change.
        """
        try:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, mode=0o700, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        except OSError as exc:
            raise StartRefused(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}; "
                "fix audit_log in the configuration"
            ) from None
        why = self.write("open", outcome="writable", sync=True)
        if why is not None:
            self.close()
            raise StartRefused(
                f"cannot write the audit log {self.path}: {why}; nothing was started "
                "(a recovery without its record is not allowed to begin); fix audit_log in the "
                "configuration or free space there"
            )

    def write(
        self,
        action: str,
        *,
        guest: str | None = None,
        host: str | None = None,
        command: str | None = None,
        outcome: str | None = None,
        sync: bool = False,
        **extra: Any,
    ) -> str | None:
        """Append one action, flushed; None when it reached the file, else why it did not.

        ``sync``: on disk (fsync) before this returns; for an intent, written before the action.
        A failure is also kept in ``failed`` (the first one): the run starts nothing more.
        """
        record: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            "user": self.user,
            "environment": self.environment,
            "run": self.run_id,
            "action": action,
            "guest": guest,
            "host": host,
            "command": command,
            "outcome": outcome,
        }
        if self.plan_id is not None:
            record["plan_id"] = self.plan_id  # which approved plan this action belongs to
        record.update({k: v for k, v in extra.items() if v is not None})
        line = json.dumps(record, sort_keys=False) + "\n"
        with self._lock:
            if self._fh is None:
                return self._fail("the audit log is not open")
            try:
                self._fh.write(line)
                self._fh.flush()
            except (OSError, ValueError) as exc:
                return self._fail(_reason(exc))
            if sync:
                try:
                    os.fsync(self._fh.fileno())
                except OSError as exc:
                    # A device that cannot be synced (/dev/null, a pipe) took the line already.
                    if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):
                        return self._fail(_reason(exc))
        return None

    def _fail(self, why: str) -> str:
        why = f"{why} (writing {self.path})"
        if self.failed is None:
            self.failed = why
        # Whatever is left of the line in Python's buffer must not reach the file later,
        # half written after lines that did: the file ends at the last whole line.
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError, ValueError):
                fh.close()
        return why

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = None


def _reason(exc: BaseException) -> str:
    """One line for a failed write: the OS's words when it has some."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
