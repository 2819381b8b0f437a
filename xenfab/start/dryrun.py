"""A dry run: the starts a run would send, tier by tier, in plain words or exact commands."""

from __future__ import annotations

import textwrap
import time
from typing import TYPE_CHECKING

from ..cluster import UnsafeName
from ..cluster.base import MASTER
from ..config import StartPolicy
from .outcome import Outcome
from .report import GuestResult, StartReport

if TYPE_CHECKING:
    pass


class DryRunUnit:
    """The engine's dryrun (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.
    start_policy: StartPolicy

    def _dry_run(self, t0: float) -> StartReport:
        down = "/".join(sorted(self.backend.states.down))
        via = f" via {self.master}" if self.backend.start_on == MASTER else ""
        lines = [
            f"dry run: would start {len(self.jobs)} guests{via} "
            f"(at most {self.start_policy.max_starts_per_host} per host, {self.parallel} in all),",
            f"each only if still {down} and running nowhere:",
        ]
        for tier in sorted({j.tier for j in self.jobs}):
            lines.append(f"tier {tier}:")
            for job in (j for j in self.jobs if j.tier == tier):
                state = self._snapshot_state(job.guest)
                # The plan names the dead owner a guest is taken over from (declared dead, or
                # fenced after it left, in the cluster's record): the same move a real run makes.
                planned = self.layout.assignment(job.guest)
                dead_owner = planned.takeover_from if planned is not None else None
                # Plain words unless asked for the exact commands (--verbose; JSON has them).
                how = self.backend.start_command if self.verbose else self.backend.start_plain
                try:
                    command = how(
                        job.guest,
                        job.host,
                        state,
                        config=self._config_of(job.guest),
                        dead_owner=dead_owner,
                    )
                except (UnsafeName, ValueError) as exc:
                    command = f"# not startable: {exc}"
                line = f"  {self.backend.start_host(self.master, job.host)}$ {command}"
                # The chain (start.depends_on) and what counts as up (start.ready), when set.
                notes = [f"after: {', '.join(job.deps)}"] if job.deps else []
                if job.probe != "started":
                    notes.append(f"up when it answers {job.probe}")
                if notes:
                    line += f"  ({'; '.join(notes)})"
                if not self.verbose:  # plain words fit 100 columns; a command is never cut
                    line = "\n".join(textwrap.wrap(line, 100, subsequent_indent=" " * 6))
                lines.append(line)
        self.progress.write("\n".join(lines) + "\n")
        self.report.results = [
            GuestResult(j.guest, j.host, Outcome.NOT_STARTED, 0.0, "dry run", 0, j.host, j.tier)
            for j in self.jobs
        ] + self.extra
        self.report.seconds = time.monotonic() - t0
        return self.report

    def _snapshot_state(self, guest: str) -> str | None:
        g = self.snapshot.guest(guest)
        return g.state if g is not None else None
