"""A guest's start as the engine tracks it: its phase, what follows a failure, its record (Job).

Values only, apart from the schedule (schedule.py) that orders them, so that every engine unit
and test can name a job's state without importing the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .outcome import Outcome, _Word


class Phase(_Word):
    """Where a guest's start is: the confirmation's state machine (queued -> starting ->
    confirming -> done; replanning after repeated failures, then queued again)."""

    QUEUED = "queued"
    STARTING = "starting"  # the start command sent, not returned yet
    CONFIRMING = "confirming"  # it said Success; waiting for the state read to show it running
    REPLANNING = "replanning"
    # Seen started; its readiness probe (start.ready) has not answered yet. No start slot held.
    PROBING = "probing"
    DONE = "done"


class Next(_Word):
    """What follows a failed start (Scheduler.after_failure)."""

    RETRY = "retry"
    RELOCATE = "relocate"
    GIVE_UP = "give up"


QUEUED, STARTING, CONFIRMING = Phase.QUEUED, Phase.STARTING, Phase.CONFIRMING
REPLANNING, DONE, PROBING = Phase.REPLANNING, Phase.DONE, Phase.PROBING
# Outcomes that make a guest a met dependency: it runs (and answered its probe, if any).
READY_OUTCOMES = frozenset({Outcome.STARTED, Outcome.ALREADY_RUNNING, Outcome.FOUND_RUNNING})


class DepVerdict(_Word):
    """What becomes of a guest whose dependencies are not all ready (Scheduler.dependencies)."""

    RELEASE = "release"  # start it anyway, with a warning (dependency_failure: start)
    HOLD = "hold"  # it stays down, with the reason (dependency_failure: hold)


@dataclass
class Job:
    """One guest to start, and what has happened to it so far."""

    guest: str
    host: str
    tier: int
    order: int
    memory_mib: int = 0
    vcpus: int = 1
    planned_host: str = ""
    phase: Phase = Phase.QUEUED
    attempts: int = 0
    tries_on_host: int = 0
    hosts_tried: list[str] = field(default_factory=list)
    failed_hosts: set[str] = field(default_factory=set)
    slot: str | None = None
    not_before: float = 0.0
    first_at: float | None = None
    command_at: float | None = None
    returned_at: float | None = None
    start_state: str | None = None
    dead_owner: str | None = None  # the service runs (in the cluster's word) on this dead host
    cleared_at: float | None = None  # when the round of domain lists that cleared it began
    approved: bool = False  # step mode: the operator said yes
    # Seconds the next tier waits after this guest started (its manager's start delay);
    # gate_in_start: the manager's start command itself returns only once that delay passed.
    gate_s: float = 0.0
    gate_in_start: bool = False
    declined: bool = False  # step mode: the operator skipped it (it stays down, on purpose)
    outcome: Outcome | None = None
    result_host: str | None = None
    message: str = ""
    ended_at: float | None = None
    # Readiness (start.ready): the probe, when probing began, the next probe's time, whether
    # one is out, and when the guest answered. ``sent_at``: when the start command left.
    probe: str = "started"
    probe_since: float | None = None
    next_probe_at: float = 0.0
    probe_out: bool = False
    probe_said: str = ""
    ready_at: float | None = None
    sent_at: float | None = None
    # What it waits for (start.depends_on), and whether it was let go without them.
    deps: list[str] = field(default_factory=list)
    deps_released: bool = False
    # Seconds from its start command to ready, as the plan expects (None: not known).
    expected_s: float | None = None

    def __post_init__(self) -> None:
        if not self.planned_host:
            self.planned_host = self.host

    @property
    def final(self) -> bool:
        """True once the guest has its outcome."""
        return self.phase == DONE

    @property
    def active(self) -> bool:
        """True while a start of it is under way on the cluster (it holds a slot)."""
        return self.phase in (STARTING, CONFIRMING)

    @property
    def booting(self) -> bool:
        """True while it is starting, or started but not answering its probe yet."""
        return self.phase in (STARTING, CONFIRMING, PROBING)
