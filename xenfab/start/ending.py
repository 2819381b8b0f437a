"""The end of a run (a part of Engine): one result per guest, and the last round of domain
lists, where a guest running on two hosts is said."""

from __future__ import annotations

import time

from ..duplicates import Duplicate, find_duplicates
from ..duplicates import line as duplicate_line
from .outcome import Outcome
from .report import GuestResult


class EndingUnit:
    """The engine's ending (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.

    def _collect(self) -> None:
        results = []
        for job in self.jobs:
            seconds = 0.0
            if job.first_at is not None and job.ended_at is not None:
                seconds = job.ended_at - job.first_at
            results.append(
                GuestResult(
                    guest=job.guest,
                    host=job.result_host,
                    outcome=job.outcome or Outcome.NOT_STARTED,
                    seconds=seconds,
                    message=job.message,
                    attempts=job.attempts,
                    planned_host=job.planned_host,
                    tier=job.tier,
                    hosts_tried=list(job.hosts_tried),
                    declined=job.declined,
                )
            )
        self.report.results = results + self.extra
        self.report.duplicates = self._last_round()

    def _last_round(self) -> list[Duplicate] | None:
        """Every live host's domain list once more after the starts: a guest on two hosts is said.

        A hand start between a start's clearing read and the start itself cannot be prevented;
        this read is where it shows. None when nothing was sent, or after a second Ctrl-C.
        """
        if self.watch is None or not self.sent_any or self.interrupts.count > 1:
            return None
        rnd = self.watch.begin(skip=self.reader.dead_now())
        limit = time.monotonic() + self.env.ssh.connect_timeout + 1
        while not self.watch.wait(rnd, 0.1):
            if self.interrupts.count > 1 or time.monotonic() > limit:
                break
        found = find_duplicates(rnd.lists())
        tools = {h.name: h.toolstack for h in self.snapshot.hosts}
        for dup in found:
            self.progress.note(duplicate_line(dup, tools))
            self._audit("duplicate", guest=dup.guest, hosts=dup.hosts, outcome="seen")
        return found
