"""The start engine's loop: one turn reads the state once, confirms, advances, dispatches;
and the stops (a lost lock, the audit log, Ctrl-C, an unreadable state) that end starting."""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..cluster import ClusterState
from ..config import StartPolicy
from ..errors import ConfigError
from ..textsafe import printable
from .interrupts import LAST_READ_S, last_look, stopping_note
from .outcome import Outcome
from .reader import answered
from .readiness import PROBERS
from .ready import STARTED, ProbeDone
from .schedule import (
    CONFIRMING,
    QUEUED,
    REPLANNING,
    STARTING,
    Scheduler,
)

if TYPE_CHECKING:
    pass
from .dispatch import _StartDone


class LoopUnit:
    """The engine's loop (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.
    start_policy: StartPolicy

    def _loop(self, t0: float) -> None:
        sched = Scheduler(
            self.jobs,
            per_host=self.start_policy.max_starts_per_host,
            parallel=self.parallel,
            tier_timeout_s=self.start_policy.tier_timeout_s,
            now=time.monotonic(),
            tries_per_host=self.start_policy.tries_per_host,
            max_hosts=self.start_policy.max_hosts_per_guest,
            retry_delay_s=self.start_policy.retry_delay_s,
            dependency_timeout_s=self.start_policy.dependency_timeout_s,
            dependency_failure=self.start_policy.dependency_failure,
            outside=self._outside_dependencies(),
        )
        self.sched = sched
        tiers = sorted({j.tier for j in self.jobs})
        hosts = len({j.host for j in self.jobs})
        self.progress.note(
            f"starting {len(self.jobs)} guests on {hosts} hosts: at most "
            f"{self.start_policy.max_starts_per_host} per host, {self.parallel} in all"
            + (f", tiers {', '.join(map(str, tiers))} in order" if len(tiers) > 1 else "")
            + (" (step mode)" if self.step else "")
        )
        for h in self.snapshot.hosts:
            if h.name in self.dead_hosts:
                self.progress.note(f"note: {h.name} declared dead for this run")
            elif not h.reachable:
                self.progress.note(
                    f"note: {h.name} was unreachable; no guest starts until it lists its "
                    "domains, the cluster shows it fenced, or it is declared dead (--dead)"
                )
        workers = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="start")
        if any(j.probe != STARTED for j in self.jobs):
            self.probers = ThreadPoolExecutor(max_workers=PROBERS, thread_name_prefix="probe")
        self.interrupts.in_loop = True
        try:
            while not sched.done():
                try:
                    if self.interrupts and not self.report.interrupted:
                        self._on_interrupt()
                    if self.interrupts.count > 1:
                        self._abandon()
                        break
                    self._turn(sched, workers)
                except KeyboardInterrupt:
                    self.interrupts.add()
        finally:
            # Workers finish their start command (bounded by command_timeout); nothing waits on
            # them after a second Ctrl-C.
            self.interrupts.in_loop = False
            try:
                workers.shutdown(wait=self.interrupts.count < 2, cancel_futures=True)
            except KeyboardInterrupt:
                self.interrupts.add()
            if self.probers is not None:
                # A probe is a read; nothing waits for one still out.
                self.probers.shutdown(wait=False, cancel_futures=True)
        self._collect()

    def _turn(self, sched: Scheduler, workers: ThreadPoolExecutor) -> None:
        self._drain(sched, block=0.0)
        self._check_safety()
        now = time.monotonic()
        stopping = self._stopping()
        if stopping:
            self._drop_queued(sched)
        confirming = [j for j in self.jobs if j.phase == CONFIRMING]
        may_start = not stopping and sched.ready(now)
        # A round vouches only for the turn it began in: the decision to start is taken now,
        # and every list that vouches for it is read after.
        reader = self.reader
        reader.round = None
        if may_start and now >= reader.next_round_at:
            reader.begin_round()
        state: ClusterState | None = None
        if confirming or may_start:
            primed, self.primed = self.primed, None
            # The read that checked quorum after taking the lock serves the first turn, unless
            # a start may follow: its cluster state must be read after the round began.
            fresh = (
                primed is not None
                and time.monotonic() - reader.read_at < self.start_policy.poll_s
                and (reader.round is None or reader.read_at >= reader.round.began)
                and not may_start
            )
            state = primed if fresh else reader.read_state()
        if state is not None:
            self._confirm(sched, confirming, state)
            if state.quorate is False and self.stop_reason is None:
                self.stop_reason = "the cluster lost quorum"
                self.progress.note("STOP: the cluster is not quorate; starting nothing more")
                self._audit("stop", outcome="inquorate")
        elif (confirming or may_start) and reader.stale(time.monotonic()):
            self._give_up_on_state(sched)
        for note in sched.advance(time.monotonic()):
            self.progress.note(note)
        self._probes(sched)
        if not self._stopping():
            self._dependencies(sched)
        stopping = self._stopping()
        if state is not None and reader.may_start(state) and not stopping:
            self._dispatch(sched, workers, state)
        # The live line on a terminal also says what the queue waits for (a slot, a tier...).
        self.progress.tick(self._status(waits=True))
        if sched.done():
            return
        # Wait for results until the next read is due, handling each as it comes.
        deadline = reader.read_at + self.start_policy.poll_s
        if state is None:
            # Nothing read this turn (only probes or held guests to wait for): wait a poll.
            deadline = max(deadline, time.monotonic() + self.start_policy.poll_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.interrupts:
                break
            self._drain(sched, block=left)

    def _drain(self, sched: Scheduler, block: float) -> None:
        try:
            item = self.results.get(timeout=block) if block > 0 else self.results.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(item, _StartDone):
                self._on_start_done(sched, item)
            elif isinstance(item, ProbeDone):
                self._on_probe_done(item)
            else:
                self._on_replanned(sched, item)
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return

    def _outside_dependencies(self) -> dict[str, bool]:
        """Dependencies not started by this run, and whether the snapshot shows each running."""
        mine = {j.guest for j in self.jobs}
        out = {}
        for d in {d for j in self.jobs for d in j.deps} - mine:
            g = self.snapshot.guest(d)
            out[d] = g is not None and self.backend.states.kind(g.state) == "running"
        return out

    def _stopping(self) -> bool:
        return self.report.interrupted or self.quit or self.stop_reason is not None

    def _check_safety(self) -> None:
        """Stop starting when the audit log, the lock or a declared-dead host says so.

        A declared-dead host that lists its domains before anything was sent is the operator's
        mistake: ConfigError (exit 1, nothing sent). Later, the run starts nothing more.
        """
        if self.watch is not None and self.watch.risen:
            host, (when, names) = sorted(self.watch.risen.items())[0]
            said = answered(host, when, names)
            if not self.sent_any:
                self._audit("stop", host=host, outcome="dead-host-answered", message=said)
                raise ConfigError(
                    f"--dead {host}: {said}; declare dead only a host that is powered off or "
                    "fenced (nothing was started)"
                )
            if self.stop_reason is None:
                self._stop(f"{host} was declared dead, but {said}", "dead-host-answered")
        if self.audit is not None and self.audit.failed and self.stop_reason is None:
            self._stop(f"cannot write the audit log: {self.audit.failed}", "audit-failed")
        if self.lock is not None and self.stop_reason is None:
            why = self.lock.trouble(time.monotonic())
            if why is not None:
                self._stop(why, "lock-lost")

    def _stop(self, why: str, outcome: str) -> None:
        """Start nothing more (what is in flight is still confirmed), and say why."""
        if self.stop_reason is not None:
            return
        self.stop_reason = why
        self.progress.note(f"STOP: {printable(why)}; starting nothing more")
        self._audit("stop", outcome=outcome, message=why)
        if self.sched is not None:
            self._drop_queued(self.sched)

    def _on_interrupt(self) -> None:
        self.report.interrupted = True
        flying = [j for j in self.jobs if j.active]
        self.progress.note(stopping_note(len(flying)))
        self._audit("interrupt", outcome="stopping", in_flight=len(flying))
        self._end_probing("interrupted")
        if self.sched is not None:
            self._drop_queued(self.sched)

    def _abandon(self) -> None:
        assert self.sched is not None
        active = [job for job in self.jobs if job.active]
        state = None
        if active:
            # One last, short look: a start that came up is reported started, never failed.
            try:
                timeout = min(LAST_READ_S, self.env.ssh.command_timeout)
                state = self.reader.read_state(timeout=timeout)
            except KeyboardInterrupt:
                self.interrupts.add()
        for end in last_look(active, state, self.backend):
            self._finish(end.job, end.outcome, end.host, end.message)
        self._end_probing("interrupted")
        self._drop_queued(self.sched)

    def _drop_queued(self, sched: Scheduler) -> None:
        why = self.stop_reason or ("quit at the prompt" if self.quit else "interrupted")
        for job in self.jobs:
            if job.phase in (QUEUED, REPLANNING):
                sched.unpick(job)
                self._finish(job, Outcome.NOT_STARTED, None, why)

    def _give_up_on_state(self, sched: Scheduler) -> None:
        error = self.reader.last_state_error
        self.stop_reason = self.reader.give_up_reason()
        self.progress.note(f"STOP: {self.stop_reason}: {error}")
        for job in self.jobs:
            if job.phase in (STARTING, CONFIRMING):
                self._finish(job, Outcome.FAILED, job.host, f"unconfirmed: {error}")
        self._drop_queued(sched)
