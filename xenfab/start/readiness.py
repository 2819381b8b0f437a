"""Readiness and dependencies in the engine: probing started guests until they answer (or time
out), and letting go or holding the guests that wait for them (``start.depends_on``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ..cluster import UnsafeName
from ..config import StartPolicy
from ..textsafe import printable
from .outcome import Outcome
from .ready import PROBE_INTERVAL_S, STARTED, ProbeDone, probe_command, probe_timeout
from .report import format_duration
from .schedule import PROBING, DepVerdict, Job, Scheduler

# Probes out at once: each is a short command on a cluster host, over the run's connections.
PROBERS = 8


def _names(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


class ReadinessUnit:
    """The engine's readiness (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.
    start_policy: StartPolicy
    probers: ThreadPoolExecutor | None

    def _started(self, sched: Scheduler, job: Job, host: str | None, message: str) -> None:
        """``job`` is seen started on ``host``: ready now (probe ``started``), or probe it."""
        now = time.monotonic()
        if job.command_at is not None:
            self.durations.append(now - job.command_at)
        if job.probe == STARTED:
            self._ready(job, host, now)
            self._finish(job, Outcome.STARTED, host, message)
            return
        # Booted: its start slot is free for the next start; the guest is not up until it
        # answers, so its tier and its dependents still wait for it.
        sched.release(job)
        job.phase = PROBING
        job.result_host = host
        job.message = message
        job.probe_since = now
        job.next_probe_at = now
        self._event(
            f"{self._said(job.guest)} booted on {self._said(host)}; "
            f"waiting for it to answer {job.probe}"
        )

    def _ready(self, job: Job, host: str | None, now: float) -> None:
        """Record that ``job`` answered (audit ``ready`` with ``ready_s``)."""
        job.ready_at = now
        since = job.sent_at if job.sent_at is not None else job.command_at
        self._audit(
            "ready",
            guest=job.guest,
            host=host,
            outcome="ready",
            probe=job.probe,
            ready_s=round(now - since, 2) if since is not None else None,
        )

    def _probes(self, sched: Scheduler) -> None:
        """Send the probes that are due; report the guests that did not answer in time."""
        now = time.monotonic()
        for job in [j for j in self.jobs if j.phase == PROBING]:
            assert job.probe_since is not None
            waited = now - job.probe_since
            if waited >= self.start_policy.ready_timeout_s:
                self._not_ready(job, waited)
                continue
            if job.probe_out or job.next_probe_at > now or self.probers is None:
                continue
            host = job.result_host or job.host
            on = self.backend.start_host(self.master, host)
            try:
                command = probe_command(job.probe, job.guest)
            except (UnsafeName, ValueError) as exc:
                self._not_ready(job, waited, str(exc))
                continue
            job.probe_out = True
            try:
                self.probers.submit(self._probe_worker, job, on, command)
            except RuntimeError:  # shut down meanwhile (second Ctrl-C)
                job.probe_out = False

    def _probe_worker(self, job: Job, on: str, command: str) -> None:
        assert self.pool is not None
        res = self.pool.run(on, command, timeout=probe_timeout(job.probe))
        ok = res.error is None and res.output is not None and res.output.exit_code == 0
        if ok:
            said = ""
        elif res.error is not None or res.output is None:
            said = res.error or "no output"
        else:
            first = (res.output.text.strip().splitlines() or [""])[0]
            said = f"exit {res.output.exit_code}" + (f": {first[:160]}" if first else "")
        self.results.put(ProbeDone(job, on, ok, printable(said), time.monotonic()))

    def _on_probe_done(self, done: ProbeDone) -> None:
        job = done.job
        job.probe_out = False
        if job.phase != PROBING:
            return  # timed out or given up on meanwhile
        if done.ok:
            self._ready(job, job.result_host, done.at)
            took = format_duration(done.at - (job.command_at or done.at))
            self._finish(job, Outcome.STARTED, job.result_host, f"answered {job.probe} ({took})")
            return
        job.probe_said = done.said
        job.next_probe_at = done.at + PROBE_INTERVAL_S

    def _not_ready(self, job: Job, waited: float, why: str | None = None) -> None:
        """``job`` runs but did not answer in time: reported, left running, never retried."""
        said = why or job.probe_said or "no answer"
        self._audit(
            "ready",
            guest=job.guest,
            host=job.result_host,
            outcome="timeout",
            probe=job.probe,
            waited_s=round(waited, 2),
            message=said,
        )
        self._finish(
            job,
            Outcome.NOT_READY,
            job.result_host,
            f"running, but no answer to {job.probe} after {format_duration(waited)} "
            f"({said}); left running",
        )

    def _end_probing(self, why: str) -> None:
        """Stop waiting for answers (Ctrl-C): a started guest is reported started, not awaited."""
        for job in [j for j in self.jobs if j.phase == PROBING]:
            self._finish(job, Outcome.STARTED, job.result_host, f"{why}: {job.probe} not awaited")

    def _dependencies(self, sched: Scheduler) -> None:
        """Let go, with a warning, or hold down the guests whose dependencies are not ready."""
        for job, verdict, missing in sched.dependencies(time.monotonic()):
            names = _names(missing)
            if verdict == DepVerdict.HOLD:
                sched.unpick(job)
                self._finish(
                    job,
                    Outcome.NOT_STARTED,
                    None,
                    f"held: waits for {names}, not ready (start.dependency_failure: hold)",
                )
                continue
            job.deps_released = True
            self._event(
                f"WARNING: {job.guest} starts without {names} (not ready after "
                f"{self.start_policy.dependency_timeout_s:g} s; start.dependency_failure: start)"
            )
            self._audit("dependency", guest=job.guest, outcome="released", waits_for=list(missing))
