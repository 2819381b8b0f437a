"""Stopping a run: Ctrl-C, SIGTERM and SIGHUP trapped and counted, and the last look after a second.

The first signal is a flag the loop reads between two steps (nothing new is started, the starts
in flight are waited for); the second one breaks out of whatever wait is under way, and one last
short state read says which of the starts in flight came up.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cluster import ClusterBackend, ClusterState
from .outcome import Outcome, Verdict
from .schedule import CONFIRMING, Job

# Signals that stop a run like Ctrl-C: a `kill`, a closed terminal or ssh session.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
# After a second Ctrl-C, one last state read (this long at most) says which starts came up.
LAST_READ_S = 5.0


class Interrupts:
    """The run's signal count, and the handlers that raise it.

    ``prompting`` says whether a step prompt is waiting in input() (only an exception gets out
    of it); ``in_loop`` is set while the loop runs, where a second signal breaks any wait.
    """

    def __init__(self, prompting: Callable[[], bool] = lambda: False) -> None:
        """Count signals; ``prompting`` tells when one must get out of a prompt."""
        self.count = 0
        self.in_loop = False
        self.prompting = prompting
        self.old_handlers: dict[int, Any] = {}
        # Shared by the engines of several clusters (run.multi), each on a thread of its own.
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self) -> None:
        """One more interrupt (a KeyboardInterrupt caught by the loop, or one passed on)."""
        with self._lock:
            self.count += 1

    def handler(self, signum: int, frame: Any) -> None:
        """What every stop signal does: count, and break out where the loop must not wait."""
        if self.prompting():
            raise KeyboardInterrupt
        self.count += 1
        if self.count > 1 and self.in_loop:
            raise KeyboardInterrupt

    def trap(self) -> None:
        """Ctrl-C, SIGTERM and SIGHUP all stop the run the same way (a closed terminal too)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            try:
                self.old_handlers[sig] = signal.signal(sig, self.handler)
            except (ValueError, OSError):
                continue

    def restore(self) -> None:
        """Put back the handlers ``trap`` replaced."""
        for sig, old in self.old_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.old_handlers = {}


def stopping_note(in_flight: int) -> str:
    """What the run says at the first interrupt."""
    return (
        f"interrupted: starting nothing new; waiting for {in_flight} start(s) in flight "
        "(Ctrl-C again to stop waiting)"
    )


@dataclass
class Ending:
    """How a start in flight ends when the run stops waiting for it."""

    job: Job
    outcome: Outcome
    host: str | None
    message: str


def last_look(
    active: list[Job], state: ClusterState | None, backend: ClusterBackend
) -> list[Ending]:
    """Each start in flight after the last state read: a start that came up is reported
    started, never failed; any other is unconfirmed, with what the state read showed.
    """
    endings = []
    for job in active:
        svc = state.services.get(job.guest) if state is not None else None
        up = svc is not None and backend.confirm(svc) is Verdict.STARTED
        if up and svc is not None and job.command_at is not None:
            host = svc.owner or job.host
            endings.append(Ending(job, Outcome.STARTED, host, "confirmed after the interrupt"))
            continue
        sent = f"accepted by {backend.start_tool}" if job.phase == CONFIRMING else "sent"
        seen = f" ({backend.state_tool}: {svc.state})" if svc is not None else ""
        endings.append(
            Ending(
                job,
                Outcome.UNCONFIRMED,
                job.host,
                f"interrupted before it was confirmed: start {sent}{seen}; "
                f"check {backend.state_tool}",
            )
        )
    return endings
