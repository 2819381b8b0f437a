"""The audit log: one JSON line per action on the cluster, appended to a local file.

It records who did what where and how it went, so the morning-after question "who started web01
on xen03, and when?" has an answer. It never records secrets: no environment, no keys, no
passwords, only names, commands (which carry none) and outcomes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
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
        self._fh: TextIO | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        """Create the directories and open the file; refuse to start when it cannot be written."""
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
    ) -> None:
        """Append one action; a full disk must not stop a recovery, so write errors are dropped.

        ``sync``: on disk (fsync) before this returns; for an intent, written before the action.
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
        record.update({k: v for k, v in extra.items() if v is not None})
        line = json.dumps(record, sort_keys=False) + "\n"
        with self._lock:
            if self._fh is None:
                return
            try:
                self._fh.write(line)
                self._fh.flush()
                if sync:
                    os.fsync(self._fh.fileno())
            except OSError:
                pass

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = None
