"""A guest's start as the engine tracks it: its phase, what follows a failure, its record (Job).

Values only, apart from the schedule (schedule.py) that orders them, so that every engine unit
and test can name a job's state without importing the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..cluster import UnsafeName, safe_guest, safe_host
from ..errors import ConfigError
from .outcome import Outcome, _Word
from .report import GuestResult

if TYPE_CHECKING:
    from ..config import StartPolicy
    from ..plan import Layout
    from ..snapshot import Snapshot


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
    # The plan's schedule for it (seconds from the run's first start), for the audit log's
    # picture of the run (fab report): when its command and its ready were expected.
    planned_start_s: float | None = None
    planned_ready_s: float | None = None

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


def jobs_of(
    layout: Layout,
    snapshot: Snapshot,
    policy: StartPolicy,
    gate_in_start: bool,
    only_hosts: set[str] | None,
    config_path: str,
    environment: str,
) -> tuple[list[Job], list[GuestResult]]:
    """The jobs of a layout's assignments (on ``only_hosts``, when given), and the results of
    what will not be tried: an unsafe name, a guest no host was found for.

    ConfigError (one line) for a dependency cycle, a pattern matching no guest, or a guest
    that waits for a later tier, before anything is sent.
    """
    jobs: list[Job] = []
    extra: list[GuestResult] = []
    gates = {g.name: g.gate_s for g in snapshot.guests}  # the manager's start delays
    # Every guest the cluster knows may be depended on (one running already counts as ready).
    known = sorted({g.name for g in snapshot.guests} | {a.guest for a in layout.assignments})
    try:
        deps = policy.dependencies(known)
    except ConfigError as exc:
        raise ConfigError(f"{config_path}: {exc} (environment {environment})") from None
    for i, a in enumerate(layout.assignments):
        if only_hosts is not None and a.host not in only_hosts:
            continue
        job = Job(a.guest, a.host, int(a.tier), i, a.memory_mib, a.vcpus)
        job.gate_s = gates.get(a.guest, 0.0)
        job.gate_in_start = gate_in_start
        job.probe = policy.probe(a.guest)
        job.deps = deps.get(a.guest, [])
        # The plan's estimate of this guest's own start (command to ready); expected_ready_s
        # is a point on the run's schedule, not a duration.
        job.expected_s = a.expected_boot_s
        job.planned_start_s, job.planned_ready_s = a.expected_start_s, a.expected_ready_s
        try:
            safe_guest(a.guest)
            safe_host(a.host)
        except UnsafeName as exc:
            extra.append(GuestResult(a.guest, a.host, Outcome.FAILED, message=str(exc)))
            continue
        jobs.append(job)
    tier = {j.guest: j.tier for j in jobs}
    for j in jobs:
        later = [d for d in j.deps if tier.get(d, j.tier) > j.tier]
        if later:
            # It would hold its own tier open until the timeouts: said before anything runs.
            raise ConfigError(
                f"{config_path}: start.depends_on: {j.guest} (tier {j.tier}) waits for "
                f"{later[0]} (tier {tier[later[0]]}), a later tier (environment "
                f"{environment}); give it the same tier or a later one"
            )
    if only_hosts is None:
        for u in getattr(layout, "unplaced", []) or []:
            extra.append(
                GuestResult(u.guest, None, Outcome.NOT_STARTED, message=f"no host: {u.reason}")
            )
    return jobs, extra
