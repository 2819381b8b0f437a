"""The search's budget: counted in work, with a wall-clock safety stop that reports itself.

Apart from the search so that the solvers it calls (mip, cpsat) import it without importing the
search that imports them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

CPSAT_DETERMINISTIC_S = 5.0  # CP-SAT's own deterministic time (not wall time)


@dataclass
class Budget:
    """How far the search may go: work counts (above) and a wall-clock safety stop.

    ``deadline`` (time.monotonic()) is the safety stop only; when the search reaches it,
    ``stopped`` becomes ``"time"`` and the layout says so: its result then depends on the
    machine's speed and load, which the normal end never does.
    """

    deadline: float
    search: bool = True  # False: greedy only, as asked (a budget of 0), not a stop
    stopped: str | None = None
    nodes: int = 0  # solver nodes spent (diagnostics: what the work budget bought)

    def out_of_time(self) -> bool:
        """True (and remembered) once the safety stop is reached."""
        if self.stopped is None and time.monotonic() >= self.deadline:
            self.stopped = "time"
        return self.stopped is not None

    def left(self) -> float:
        """Seconds left before the safety stop (never negative)."""
        return max(self.deadline - time.monotonic(), 0.0)
