"""The scheduler's tiers (a part of Scheduler): which tiers may start, and when the next opens.

A tier opens when the one before it is done (every guest final) and each of its guests' start
delays has passed, or when it has waited ``tier_timeout_s``, with a warning.
"""

from __future__ import annotations

from .job import Job
from .outcome import Outcome


class Tiers:
    """Opening tiers in order (a part of Scheduler: it works on the scheduler's state)."""

    # Set in Scheduler.__init__.
    jobs: list[Job]
    tiers: list[int]
    released: int
    gated: set[int]
    opened_at: dict[int, float]
    tier_timeout_s: float

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
