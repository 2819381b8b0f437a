"""The start schedule, without I/O: tiers, dependencies, start slots, retries, the ETA.

The engine asks ``pick`` which queued starts may go now, and reports back what happened; every
decision about order and limits lives here so it is tested without SSH.
"""

from __future__ import annotations

from collections import Counter

from ..config import StartPolicy
from .depends import Dependencies, _chains
from .job import (
    CONFIRMING,
    DONE,
    PROBING,
    QUEUED,
    READY_OUTCOMES,
    REPLANNING,
    STARTING,
    DepVerdict,
    Job,
    Next,
    Phase,
)
from .outcome import Outcome, Tally
from .tiers import Tiers

__all__ = [  # the job's values, re-exported: the engine's units import them from here
    "CONFIRMING",
    "DONE",
    "PROBING",
    "QUEUED",
    "READY_OUTCOMES",
    "REPLANNING",
    "STARTING",
    "DepVerdict",
    "Job",
    "Next",
    "Phase",
    "Scheduler",
]

# A failed start is retried once on the same host, then moved by the planner, on at most
# MAX_HOSTS hosts in all: at most MAX_HOSTS * TRIES_PER_HOST starts per guest, never a loop.
# The values are the start policy's defaults (config `start:`), where each is documented.
_DEFAULTS = StartPolicy()
TRIES_PER_HOST = _DEFAULTS.tries_per_host
MAX_HOSTS = _DEFAULTS.max_hosts_per_guest
RETRY_DELAY_S = _DEFAULTS.retry_delay_s


class Scheduler(Tiers, Dependencies):
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
        dependency_timeout_s: float = _DEFAULTS.dependency_timeout_s,
        dependency_failure: str = _DEFAULTS.dependency_failure,
        outside: dict[str, bool] | None = None,
    ):
        """Schedule ``jobs`` (in plan order) with the given limits, from time ``now``.

        ``outside``: dependencies that are not in this run, and whether each runs already.
        """
        self.jobs = jobs
        self.by_guest = {j.guest: j for j in jobs}
        self.outside = dict(outside or {})
        self.dependency_timeout_s = dependency_timeout_s
        self.dependency_failure = dependency_failure
        # Seconds a job and the longest chain of its dependents take (critical path first).
        self.chain_s = _chains(jobs)
        known = [j.expected_s for j in jobs if j.expected_s is not None]
        # A guest without an expected time weighs the mean of those known, else one unit.
        self.unit_s = sum(known) / len(known) if known else 1.0
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
            and self.deps_met(j)
            for j in self.jobs
        )

    def pick(self, now: float, limit: int | None = None) -> list[Job]:
        """Queued jobs to start now, each given a slot: lowest tier first, then the host with
        the most queued work, then the longest chain (its start and its dependents')."""
        tiers = set(self.open_tiers())
        queued = [j for j in self.jobs if j.phase == QUEUED and j.tier in tiers]
        # Hosts with the most work queued go first: when the global cap binds, this keeps the
        # host that finishes last busy from the start (longest-processing-time-first). A guest
        # without an expected time counts as one unit (the plain count, as before estimates).
        left: Counter[str] = Counter()
        for j in queued:
            left[j.host] += self._weight(j)
        chosen: list[Job] = []
        while self.in_flight < self.parallel and (limit is None or len(chosen) < limit):
            ready = [
                j
                for j in queued
                if j.slot is None
                and j.not_before <= now
                and self.busy[j.host] < self.per_host
                and self.deps_met(j)
            ]
            if not ready:
                break
            best = min(
                ready, key=lambda j: (j.tier, -left[j.host], -self.chain_s[j.guest], j.order)
            )
            self.occupy(best, best.host)
            left[best.host] -= self._weight(best)
            chosen.append(best)
        return chosen

    def waits(self, now: float) -> Counter[str]:
        """What the queued starts wait for: a tier, their dependencies, a retry delay, a slot."""
        tiers = set(self.open_tiers())
        full = self.in_flight >= self.parallel
        out: Counter[str] = Counter()
        for j in self.jobs:
            if j.phase != QUEUED or j.slot is not None:
                continue
            if j.tier not in tiers:
                out[f"tier {j.tier}"] += 1
            elif not self.deps_met(j):
                out["dependencies"] += 1
            elif j.not_before > now:
                out["a retry"] += 1
            elif full or self.busy[j.host] >= self.per_host:
                out["a slot"] += 1
        return out

    def _weight(self, job: Job) -> float:
        """A queued job's share of its host's work: its expected seconds, else one unit."""
        return job.expected_s if job.expected_s is not None else self.unit_s

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
            Tally.NOT_READY: c[Outcome.NOT_READY],
            # Starts under way and started guests not answering their probe yet.
            Tally.RUNNING: sum(1 for j in self.jobs if j.booting),
        }

    def eta(self, mean_s: float | None, now: float) -> float | None:
        """Seconds left: per tier, the busiest host's queued work (over its slots) plus what
        its starts under way still need, or the cluster's over the global cap if larger.

        A guest's time is its expected seconds (the plan's), else ``mean_s`` (this run's mean
        so far); None when neither is known. A start under way is given at least a poll's
        time: a guest still booting never makes it 0.
        """
        known = [j.expected_s for j in self.jobs if j.expected_s is not None]
        if mean_s is None and not known:
            return None
        default = mean_s if mean_s is not None else sum(known) / len(known)
        total = 0.0
        for tier in self.tiers:
            left = [j for j in self.jobs if j.tier == tier and not j.final]
            if not left:
                continue
            queued: Counter[str] = Counter()
            running: dict[str, float] = {}
            for j in left:
                need = j.expected_s if j.expected_s is not None else default
                if j.booting and j.command_at is not None:
                    rest = max(need - (now - j.command_at), 0.2)
                    running[j.host] = max(running.get(j.host, 0.0), rest)
                else:
                    queued[j.host] += need
            hosts = set(queued) | set(running)
            busiest = max(queued[h] / self.per_host + running.get(h, 0.0) for h in hosts)
            spread = sum(queued.values()) / self.parallel + max(running.values(), default=0.0)
            total += max(busiest, spread)
        return total
