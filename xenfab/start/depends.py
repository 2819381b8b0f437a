"""Dependencies between starts (start.depends_on): when a guest may go, and what overdue means.

A mixin of the Scheduler: it reads the scheduler's jobs, tiers and the policy's timeout; apart
so that the schedule's slots and tiers and the dependencies' rules each fit on a page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .job import QUEUED, READY_OUTCOMES, DepVerdict, Job

if TYPE_CHECKING:
    from collections.abc import Mapping


class Dependencies:
    """What a Scheduler answers about dependencies (its attributes are declared there)."""

    jobs: list[Job]
    by_guest: Mapping[str, Job]
    outside: Mapping[str, bool]
    opened_at: Mapping[int, float]
    dependency_timeout_s: float
    dependency_failure: str

    def open_tiers(self) -> list[int]:  # pragma: no cover - the Scheduler's
        """Tiers whose guests may start now."""
        raise NotImplementedError

    # -- dependencies --------------------------------------------------------------------------

    def dep_ready(self, guest: str) -> bool | None:
        """True: ``guest`` is ready; False: it will not be (failed, down); None: not yet."""
        job = self.by_guest.get(guest)
        if job is None:
            return self.outside.get(guest, False)
        if not job.final:
            return None
        return job.outcome in READY_OUTCOMES

    def deps_met(self, job: Job) -> bool:
        """True when ``job`` may start as far as its dependencies go."""
        return job.deps_released or all(self.dep_ready(d) for d in job.deps)

    def waiting_for(self, job: Job) -> list[str]:
        """The dependencies of ``job`` that are not ready."""
        return [d for d in job.deps if not self.dep_ready(d)]

    def dependencies(self, now: float) -> list[tuple[Job, DepVerdict, list[str]]]:
        """Queued jobs whose dependencies are overdue (or, to hold, failed): what to do.

        Counted from when the job's tier opened; ``hold`` does not wait for a dependency that
        has ended without being ready (nothing will change), ``start`` waits the time out.
        """
        out = []
        tiers = set(self.open_tiers())
        for j in self.jobs:
            if j.phase != QUEUED or j.tier not in tiers or self.deps_met(j):
                continue
            missing = self.waiting_for(j)
            failed = [d for d in missing if self.dep_ready(d) is False]
            overdue = now - self.opened_at[j.tier] >= self.dependency_timeout_s
            if self.dependency_failure == DepVerdict.HOLD and (failed or overdue):
                out.append((j, DepVerdict.HOLD, missing))
            elif overdue:
                out.append((j, DepVerdict.RELEASE, missing))
        return out


def _chains(jobs: list[Job]) -> dict[str, float]:
    """Per guest: its expected seconds plus the longest chain of guests that wait for it."""
    known = [j.expected_s for j in jobs if j.expected_s is not None]
    unit = sum(known) / len(known) if known else 1.0
    own = {j.guest: (j.expected_s if j.expected_s is not None else unit) for j in jobs}
    dependents: dict[str, list[str]] = {}
    for j in jobs:
        for d in j.deps:
            dependents.setdefault(d, []).append(j.guest)
    memo: dict[str, float] = {}

    def chain(guest: str, seen: frozenset[str]) -> float:
        if guest in memo:
            return memo[guest]
        after = [chain(g, seen | {guest}) for g in dependents.get(guest, []) if g not in seen]
        memo[guest] = own.get(guest, 0.0) + max(after, default=0.0)
        return memo[guest]

    return {j.guest: chain(j.guest, frozenset()) for j in jobs}
