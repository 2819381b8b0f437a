"""Confirmation: what comes back (a start command's answer, a re-plan, the state read) moves a
guest through its phases (schedule.Phase) to its outcome."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..cluster import ClusterState, StartOutcome
from ..config import StartPolicy
from ..textsafe import printable
from .checks import confirm
from .outcome import Outcome, Verdict
from .replan import Replanned
from .report import format_duration
from .schedule import (
    CONFIRMING,
    REPLANNING,
    STARTING,
    Job,
    Scheduler,
)

if TYPE_CHECKING:
    pass
from .dispatch import _StartDone
from .schedule import Next


class ConfirmationUnit:
    """The engine's confirmation (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.
    start_policy: StartPolicy

    def _on_start_done(self, sched: Scheduler, done: _StartDone) -> None:
        job, now = done.job, time.monotonic()
        res = done.result
        if done.unsent is not None or res is None:
            why = done.unsent or "not sent"
            self._stop(f"cannot write the audit log: {why}", "audit-failed")
            self._finish(
                job,
                Outcome.NOT_STARTED,
                None,
                f"not sent: its intent could not be written to the audit log ({why})",
            )
            return
        if job.phase != STARTING:
            # Given up on (second Ctrl-C, master lost) while the start still ran: record only.
            self._audit(
                "start",
                guest=job.guest,
                host=done.host,
                command=done.command,
                outcome="late",
                message=res.error or "returned after the run gave up",
            )
            return
        if res.error is not None or res.output is None:
            outcome = StartOutcome(job.guest, done.host, False, res.error or "no output", 255)
        else:
            outcome = self.backend.parse_start(job.guest, done.host, res.output)
        outcome.message = printable(outcome.message)
        self._audit(
            "start",
            guest=job.guest,
            host=done.host,
            command=done.command,
            outcome="accepted" if outcome.ok else Outcome.FAILED,
            message=outcome.message,
            exit_code=outcome.exit_code,
            attempt=job.attempts,
            seconds=round(res.seconds, 2),
        )
        if outcome.refused and outcome.already_running:
            self._finish(job, Outcome.FOUND_RUNNING, outcome.running_on, outcome.message)
            return
        if outcome.already_running:
            where = outcome.running_on or outcome.acted_on or done.host
            tool = self.backend.start_tool
            self._finish(job, Outcome.ALREADY_RUNNING, where, f"{tool}: {outcome.message}")
            return
        if outcome.ok:
            job.phase = CONFIRMING
            job.returned_at = now
            actual = outcome.running_on or outcome.acted_on
            if actual and actual != job.host:
                # It boots there, whatever we asked: that host's slot is the one in use.
                sched.occupy(job, actual)
                tool = self.backend.start_tool
                self._event(
                    f"{self._said(job.guest)}: {tool} started it on {self._said(actual)}, "
                    f"not {self._said(job.host)}"
                )
            return
        self._failed(sched, job, outcome.message or f"exit {outcome.exit_code}")

    def _confirm(self, sched: Scheduler, jobs: list[Job], state: ClusterState) -> None:
        now = time.monotonic()
        for job in jobs:
            if job.returned_at is not None and job.returned_at > self.reader.read_at:
                # The read began before this start returned: it may still show the service
                # `failed` from before the start, which is no verdict on it.
                continue
            c = confirm(
                job,
                state.services.get(job.guest),
                now,
                self.confirm_timeout_s,
                self.start_policy.confirm_grace_s,
                self.backend,
            )
            if c.status == Verdict.WAIT:
                continue
            if c.status == Verdict.STARTED:
                self._started(sched, job, c.host, c.message)
            elif c.status == Verdict.STUCK:
                self._finish(job, Outcome.FAILED, c.host, c.message)
            else:
                self._failed(sched, job, c.message)

    def _failed(self, sched: Scheduler, job: Job, why: str) -> None:
        why = why.strip().splitlines()[0] if why.strip() else "start failed"
        job.message = why
        host = job.host
        step = sched.after_failure(job, time.monotonic())
        if self._stopping():
            self._finish(job, Outcome.FAILED, host, why)
            return
        if step is Next.RETRY:
            self._event(
                f"{self._said(job.guest)} failed on {self._said(host)}: {why}; retrying there"
            )
        elif step is Next.RELOCATE:
            self._event(
                f"{self._said(job.guest)} failed twice on {self._said(host)}: {why}; re-planning"
            )
            # Guests still to start keep their planned room: the re-plan places this one only.
            self.replanner.later(job, [j for j in self.jobs if j is not job and not j.final])
        else:
            tried = ", ".join(job.hosts_tried)
            self._finish(job, Outcome.FAILED, host, f"failed on {tried}: {why}")

    def _on_replanned(self, sched: Scheduler, r: Replanned) -> None:
        job = r.job
        if job.phase != REPLANNING:
            return
        if self._stopping():
            self._finish(job, Outcome.NOT_STARTED, None, "stopped before it could move")
            return
        if r.host is None:
            tried = ", ".join(job.hosts_tried)
            self._finish(
                job, Outcome.FAILED, job.host, f"failed on {tried}: {job.message}; {r.why}"
            )
            return
        old = job.host
        sched.relocate(job, r.host)
        self._event(
            f"{self._said(job.guest)}: moving from {self._said(old)} "
            f"to {self._said(r.host)} ({r.why})"
        )
        self._audit("relocate", guest=job.guest, host=r.host, outcome="queued", previous=old)

    def _finish(self, job: Job, outcome: Outcome, host: str | None, message: str) -> None:
        assert self.sched is not None
        self.sched.finish(job, outcome, host, message, time.monotonic())
        guest, on = self._said(job.guest), f" on {self._said(host)}" if host else ""
        verb = {
            Outcome.STARTED: f"started {guest}{on}",
            Outcome.FAILED: f"FAILED {guest}{on}",
            Outcome.ALREADY_RUNNING: f"{guest} already running{on}",
            Outcome.FOUND_RUNNING: f"{guest}",
            Outcome.SKIPPED: f"skipped {guest}",
            Outcome.NOT_STARTED: f"not started: {guest}",
            Outcome.UNCONFIRMED: f"UNCONFIRMED {guest}{on}",
            Outcome.NOT_READY: f"NOT READY {guest}{on}",
        }[outcome]
        took = ""
        if outcome == Outcome.STARTED and job.command_at is not None:
            took = f" ({format_duration(time.monotonic() - job.command_at)})"
        tail = f": {message}" if message and outcome != Outcome.FOUND_RUNNING else ""
        if outcome == Outcome.FOUND_RUNNING:
            tail = f" {message}"
        self._event(f"{verb}{took}{tail}")
        if outcome in (Outcome.FOUND_RUNNING, Outcome.SKIPPED, Outcome.NOT_STARTED):
            self._audit(
                outcome.value.replace(" ", "-"),
                guest=job.guest,
                host=host,
                outcome=outcome,
                message=message,
            )
        elif outcome in (Outcome.STARTED, Outcome.FAILED, Outcome.UNCONFIRMED, Outcome.NOT_READY):
            self._audit(
                "result",
                guest=job.guest,
                host=host,
                outcome=outcome,
                message=message,
                attempts=job.attempts,
            )
