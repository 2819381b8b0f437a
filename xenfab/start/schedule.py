"""The start schedule, without I/O: tiers, start slots per host and in all, retries, the ETA.

The engine asks ``pick`` which queued starts may go now, and reports back what happened; every
decision about order and limits lives here so it is tested without SSH.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from ..config import StartPolicy
from .outcome import Outcome, Tally, _Word

# A failed start is retried once on the same host, then moved by the planner, on at most
# MAX_HOSTS hosts in all: at most MAX_HOSTS * TRIES_PER_HOST starts per guest, never a loop.
# The values are the start policy's defaults (config `start:`), where each is documented.
_DEFAULTS = StartPolicy()
TRIES_PER_HOST = _DEFAULTS.tries_per_host
MAX_HOSTS = _DEFAULTS.max_hosts_per_guest
RETRY_DELAY_S = _DEFAULTS.retry_delay_s


class Phase(_Word):
    """Where a guest's start is: the confirmation's state machine (queued -> starting ->
    confirming -> done; replanning after repeated failures, then queued again)."""

    QUEUED = "queued"
    STARTING = "starting"  # the start command sent, not returned yet
    CONFIRMING = "confirming"  # it said Success; waiting for the state read to show it running
    REPLANNING = "replanning"
    DONE = "done"


class Next(_Word):
    """What follows a failed start (Scheduler.after_failure)."""

    RETRY = "retry"
    RELOCATE = "relocate"
    GIVE_UP = "give up"


QUEUED, STARTING, CONFIRMING = Phase.QUEUED, Phase.STARTING, Phase.CONFIRMING
REPLANNING, DONE = Phase.REPLANNING, Phase.DONE


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


class Scheduler:
    """Queued starts, tier by tier, within the per-host and global start slots."""

    def __init__(
        self,
        jobs: list[Job],
        *,
        per_host: int,
        parallel: int,
        tier_timeout_s: float,
        now: float,
        tries_per_host: int = TRIES_PER_HOST,
        max_hosts: int = MAX_HOSTS,
        retry_delay_s: float = RETRY_DELAY_S,
    ):
        """Schedule ``jobs`` (in plan order) with the given limits, from time ``now``."""
        self.jobs = jobs
        self.per_host = max(1, per_host)
        self.parallel = max(1, parallel)
        self.tier_timeout_s = tier_timeout_s
        self.tries_per_host = tries_per_host
        self.max_hosts = max_hosts
        self.retry_delay_s = retry_delay_s
        self.tiers = sorted({j.tier for j in jobs})
        self.released = 0
        self.opened_at: dict[int, float] = {self.tiers[0]: now} if self.tiers else {}
        self.busy: Counter[str] = Counter()
        self.peak_host: Counter[str] = Counter()
        self.peak_total = 0
        self.gated: set[int] = set()  # tiers whose wait for a start delay was said

    # -- slots ---------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Starts holding a slot."""
        return sum(self.busy.values())

    def occupy(self, job: Job, host: str) -> None:
        """Take a start slot on ``host`` for ``job``."""
        self.release(job)
        job.slot = host
        self.busy[host] += 1
        self.peak_host[host] = max(self.peak_host[host], self.busy[host])
        self.peak_total = max(self.peak_total, self.in_flight)

    def release(self, job: Job) -> None:
        """Give back the job's slot, if it holds one."""
        if job.slot is not None:
            self.busy[job.slot] -= 1
            if self.busy[job.slot] <= 0:
                del self.busy[job.slot]
            job.slot = None

    # -- tiers ---------------------------------------------------------------------------------

    def open_tiers(self) -> list[int]:
        """Tiers whose guests may start now."""
        return self.tiers[: self.released + 1]

    def advance(self, now: float) -> list[str]:
        """Open the next tier when the current one is done or timed out; say what happened."""
        notes: list[str] = []
        while self.released < len(self.tiers) - 1:
            tier = self.tiers[self.released]
            pending = [j for j in self.jobs if j.tier == tier and not j.final]
            nxt = self.tiers[self.released + 1]
            if not pending:
                until = self.gate_end(tier)
                if until > now:
                    if tier not in self.gated:
                        self.gated.add(tier)
                        notes.append(
                            f"tier {tier} done; tier {nxt} waits {until - now:.1f} s "
                            "(the start delay of its guests)"
                        )
                    break
                failed = sum(1 for j in self.jobs if j.tier == tier and j.outcome == Outcome.FAILED)
                tail = f" ({failed} failed)" if failed else ""
                notes.append(f"tier {tier} done{tail}; starting tier {nxt}")
            elif now - self.opened_at[tier] >= self.tier_timeout_s:
                names = ", ".join(j.guest for j in pending[:5]) + (
                    ", ..." if len(pending) > 5 else ""
                )
                notes.append(
                    f"WARNING: tier {tier} not done after {self.tier_timeout_s:g} s "
                    f"({len(pending)} left: {names}); starting tier {nxt} anyway"
                )
            else:
                break
            self.released += 1
            self.opened_at[nxt] = now
        return notes

    def gate_end(self, tier: int) -> float:
        """When the tier after ``tier`` may open: each guest started waits its ``gate_s``.

        Counted from when the guest was seen started; a manager whose start returns only after
        the delay (``gate_in_start``: XAPI's vm-start) has waited it already by then.
        """
        end = 0.0
        for j in self.jobs:
            if j.tier != tier or j.gate_s <= 0 or j.ended_at is None:
                continue
            if j.outcome == Outcome.STARTED and j.gate_in_start and j.returned_at is not None:
                end = max(end, j.returned_at)
            elif j.outcome in (Outcome.STARTED, Outcome.ALREADY_RUNNING):
                end = max(end, j.ended_at + j.gate_s)
        return end

    # -- picking -------------------------------------------------------------------------------

    def ready(self, now: float) -> bool:
        """True when at least one queued start could take a slot now."""
        if self.in_flight >= self.parallel:
            return False
        tiers = set(self.open_tiers())
        return any(
            j.phase == QUEUED
            and j.tier in tiers
            and j.not_before <= now
            and self.busy[j.host] < self.per_host
            for j in self.jobs
        )

    def pick(self, now: float, limit: int | None = None) -> list[Job]:
        """Queued jobs to start now, each given a slot: lowest tier first, busiest host first."""
        tiers = set(self.open_tiers())
        queued = [j for j in self.jobs if j.phase == QUEUED and j.tier in tiers]
        # Hosts with the longest queue go first: when the global cap binds, this keeps the
        # host that finishes last busy from the start (longest-processing-time-first).
        left = Counter(j.host for j in queued)
        chosen: list[Job] = []
        while self.in_flight < self.parallel and (limit is None or len(chosen) < limit):
            ready = [
                j
                for j in queued
                if j.slot is None and j.not_before <= now and self.busy[j.host] < self.per_host
            ]
            if not ready:
                break
            best = min(ready, key=lambda j: (j.tier, -left[j.host], j.order))
            self.occupy(best, best.host)
            left[best.host] -= 1
            chosen.append(best)
        return chosen

    def unpick(self, job: Job) -> None:
        """Give back a slot picked for a job that will not start after all."""
        self.release(job)

    # -- bookkeeping ---------------------------------------------------------------------------

    def begin(self, job: Job, now: float) -> None:
        """The job's start command is being sent now."""
        job.phase = STARTING
        job.attempts += 1
        job.tries_on_host += 1
        if job.host not in job.hosts_tried:
            job.hosts_tried.append(job.host)
        job.first_at = job.first_at if job.first_at is not None else now
        job.command_at = now
        job.returned_at = None

    def finish(
        self, job: Job, outcome: Outcome, host: str | None, message: str, now: float
    ) -> None:
        """The job has its outcome; its slot is free."""
        self.release(job)
        job.phase = DONE
        job.outcome = outcome
        job.result_host = host
        job.message = message
        job.ended_at = now

    def after_failure(self, job: Job, now: float) -> Next:
        """Decide the next step after a failed start: retry, relocate or give up."""
        self.release(job)
        if job.tries_on_host < self.tries_per_host:
            job.phase = QUEUED
            job.not_before = now + self.retry_delay_s
            return Next.RETRY
        job.failed_hosts.add(job.host)
        if len(job.hosts_tried) < self.max_hosts:
            job.phase = REPLANNING
            return Next.RELOCATE
        return Next.GIVE_UP

    def relocate(self, job: Job, host: str) -> None:
        """Queue the job again on the host the planner chose."""
        job.host = host
        job.tries_on_host = 0
        job.phase = QUEUED
        job.not_before = 0.0

    def done(self) -> bool:
        """True when every guest has its outcome."""
        return all(j.final for j in self.jobs)

    def counts(self) -> dict[str, int]:
        """Totals for the progress line."""
        c: Counter[str] = Counter(j.outcome for j in self.jobs if j.final)
        return {
            Tally.TOTAL: len(self.jobs),
            Tally.STARTED: c[Outcome.STARTED] + c[Outcome.ALREADY_RUNNING],
            Tally.FAILED: c[Outcome.FAILED],
            Tally.LEFT_ALONE: c[Outcome.FOUND_RUNNING] + c[Outcome.SKIPPED],
            Tally.NOT_STARTED: c[Outcome.NOT_STARTED],
            Tally.RUNNING: sum(1 for j in self.jobs if j.active),
        }

    def eta(self, mean_s: float | None, now: float) -> float | None:
        """Seconds left, from the mean start time and what each tier still has per host."""
        if mean_s is None:
            return None
        total = 0.0
        for tier in self.tiers:
            left = [j for j in self.jobs if j.tier == tier and not j.final]
            if not left:
                continue
            per_host = Counter(j.host for j in left)
            waves = max(
                max(math.ceil(n / self.per_host) for n in per_host.values()),
                math.ceil(len(left) / self.parallel),
            )
            total += waves * mean_s
            active = [now - j.command_at for j in left if j.active and j.command_at is not None]
            if active:
                # The wave under way is partly done already.
                total -= min(mean_s, sum(active) / len(active))
        return max(0.0, total)
