"""The words a start run ends each guest with, and the smaller vocabularies around them.

Every value is the string the JSON report, the audit log and the tables have always carried
(tests and users gate on them); the enums only give them one definition each.
"""

from __future__ import annotations

from enum import Enum

# One verdict for the backends and the engine: defined with the backends, below the engine.
from ..cluster.base import Verdict

__all__ = ["BAD_OUTCOMES", "OUTCOMES", "Action", "Outcome", "Tally", "Verdict"]


class _Word(str, Enum):
    """A str-valued enum that prints and formats as its value (like 3.11's StrEnum)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Outcome(_Word):
    """How one guest ended a run (GuestResult.outcome, the report's counts)."""

    STARTED = "started"
    FAILED = "failed"
    ALREADY_RUNNING = "already running"
    FOUND_RUNNING = "found running"
    SKIPPED = "skipped"
    NOT_STARTED = "not-started"
    # Sent (or accepted) but the run was stopped before the state read confirmed it.
    UNCONFIRMED = "unconfirmed"
    # Seen started, but it did not answer its readiness probe (start.ready) in time: left
    # running, never retried or stopped; the run is not complete.
    NOT_READY = "not-ready"


# In report order; "failed", "not-started", "unconfirmed" and "not-ready" make the run not ok.
OUTCOMES = tuple(Outcome)
BAD_OUTCOMES = frozenset(
    {Outcome.FAILED, Outcome.NOT_STARTED, Outcome.UNCONFIRMED, Outcome.NOT_READY}
)


class Action(_Word):
    """What the check right before a start decided (checks.Decision.action)."""

    START = "start"
    FOUND_RUNNING = Outcome.FOUND_RUNNING.value
    SKIPPED = Outcome.SKIPPED.value


class Tally(_Word):
    """The progress line's counts (Scheduler.counts keys)."""

    TOTAL = "total"
    STARTED = Outcome.STARTED.value  # started or already running
    FAILED = Outcome.FAILED.value
    LEFT_ALONE = "left alone"  # found running or skipped
    NOT_STARTED = Outcome.NOT_STARTED.value
    NOT_READY = Outcome.NOT_READY.value  # started, but not answering its probe in time
    RUNNING = "running"  # starts under way
