"""Dispatch: which picked starts go now (step prompt, fresh round, precheck) and sending them.

Freshness per start: the domain lists (and the state read) that clear a start are read in a
round begun after every earlier start of the run was sent (the host accepted the command).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cluster import ClusterState, UnsafeName
from ..config import StartPolicy
from ..remote import RunResult
from .checks import Decision, precheck
from .outcome import Action, Outcome
from .prompter import SKIP, START
from .reader import Proof
from .schedule import (
    CONFIRMING,
    QUEUED,
    Job,
    Scheduler,
)

if TYPE_CHECKING:
    pass

# Starts sent in one dispatch before the loop's turn comes round again (tiers, progress).
DISPATCH_MAX = 64


@dataclass
class _StartDone:
    job: Job
    host: str
    command: str
    result: RunResult | None
    # Why the command was never sent (its intent could not be recorded), else None.
    unsent: str | None = None


class _Sent:
    """When a worker's start command left (the host accepted it), or that it never will."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.at: float | None = None
        self.sent = False

    def settle(self, at: float | None, sent: bool) -> None:
        """The first call wins: the command left at ``at`` (``sent``), or did not."""
        if not self.event.is_set():
            self.at, self.sent = at, sent
            self.event.set()


class DispatchUnit:
    """The engine's dispatch (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.
    start_policy: StartPolicy
    _labels: dict[str, str]

    def _dispatch(self, sched: Scheduler, workers: ThreadPoolExecutor, state: ClusterState) -> None:
        assert self.watch is not None
        if self.reader.round is None:
            # No slot was free when the turn began, so no round either; this turn's state read
            # may have freed some. A round begun now fills them, rather than the next turn's
            # (a poll later, on every slot of every wave).
            now = time.monotonic()
            if not sched.ready(now) or now < self.reader.next_round_at:
                return
            view = self._fresh_view(sched, state)
            if view is None:
                return
            state, domains, dead, cleared = view
        else:
            proof = self._proven(sched, state)
            if proof is None:
                return
            domains = proof.domains or {}
            cleared = proof.began
            dead = self.reader.dead_now(state)
        # Set once a start has left: the next one needs a round begun after it.
        used = False
        # One job per pick, picked again after each start: each start waits for a round begun
        # after the previous one left, whose state read may have freed a busier host's slot
        # meanwhile (busiest host first is decided per start, not per burst).
        for _ in range(DISPATCH_MAX):
            picked = sched.pick(time.monotonic(), limit=1)
            if not picked:
                return
            if self.step and not picked[0].approved:
                job = picked[0]
                # Ask only about a guest that is still to start; then look again after the
                # answer, which may have taken minutes.
                first = self._precheck(job, state, domains, dead)
                if first.action == Action.START:
                    assert self.prompter is not None
                    answer = self.prompter.ask(job.guest, job.host)
                    if answer != START:
                        sched.unpick(job)
                        if answer == SKIP:
                            job.declined = True
                            self._finish(job, Outcome.SKIPPED, None, "skipped at the prompt")
                        else:
                            self.quit = self.report.quit = True
                            self.progress.note("quit at the prompt: starting nothing more")
                            self._drop_queued(sched)
                        return
                    job.approved = True
                    used = True  # the answer may have taken minutes: look again
            for i, job in enumerate(picked):
                if self.interrupts or self._stopping():
                    # Ctrl-C (or a stop) during this turn: what is not sent yet stays unsent.
                    sched.unpick(job)
                    return
                if used:
                    view = self._fresh_view(sched, state)
                    if view is None:
                        for rest in picked[i:]:
                            sched.unpick(rest)
                        return
                    state, domains, dead, cleared = view
                    used = False
                decision = self._precheck(job, state, domains, dead)
                if decision.action == Action.START:
                    job.start_state = decision.message
                    job.dead_owner = decision.host
                    job.cleared_at = cleared
                    self._send(sched, workers, job)
                    used = True
                    continue
                sched.unpick(job)
                self._finish(job, Outcome(decision.action), decision.host, decision.message)

    def _fresh_view(
        self, sched: Scheduler, state: ClusterState
    ) -> tuple[ClusterState, dict[str, set[str]], set[str], float | None] | None:
        """A round and a state read begun now (after every start sent so far), or None.

        Both go out together (the round's reads run while the state is read); None when the
        state cannot be read, does not allow starts, or some live host's list is missing.
        """
        self._check_safety()
        if self._stopping() or self.interrupts:
            return None
        self.reader.begin_round(state)
        fresh = self.reader.read_state()
        if fresh is None or not self.reader.may_start(fresh):
            self.reader.round = None
            return None
        # The same read confirms what is in flight: a burst of starts sent one round apart
        # must not hold the slots of guests that came up meanwhile.
        self._drain(sched, block=0.0)
        confirming = [j for j in self.jobs if j.phase == CONFIRMING]
        if confirming:
            self._confirm(sched, confirming, fresh)
        proof = self._proven(sched, fresh)
        if proof is None:
            return None
        self._check_safety()
        if self._stopping():
            return None
        return fresh, proof.domains or {}, self.reader.dead_now(fresh), proof.began

    def _send(self, sched: Scheduler, workers: ThreadPoolExecutor, job: Job) -> None:
        sched.begin(job, time.monotonic())
        try:
            # The state just re-read decides the command: a failed service needs clearing first.
            command = self.backend.start_command(
                job.guest,
                job.host,
                job.start_state,
                config=self._config_of(job.guest),
                dead_owner=job.dead_owner,
            )
        except (UnsafeName, ValueError) as exc:
            self._finish(job, Outcome.FAILED, job.host, str(exc))
            return
        tries = f" (try {job.attempts})" if job.attempts > 1 else ""
        if job.dead_owner is not None:
            # The one case where the run disables a service the cluster shows running: its
            # owner is proven dead. Said loudly, and recorded before it is sent.
            why = (
                "declared dead for this run"
                if job.dead_owner in self.dead_hosts
                else "fenced after it left, in the cluster's record"
            )
            msg = (
                f"WARNING: disabling {self.backend.service_name(job.guest)}, which the cluster "
                f"shows {job.start_state} on "
                f"{job.dead_owner} ({why}), to start it on {job.host}"
            )
            self._event(msg)
            self._audit(
                "stop",
                guest=job.guest,
                host=job.dead_owner,
                command=command,
                outcome="disable-on-dead-owner",
                message=msg,
                sync=True,
            )
        self._event(f"starting {self._said(job.guest)} on {self._said(job.host)}{tries}")
        sent = _Sent()
        send_at = self.last_sent_at + self.start_policy.stagger_s
        workers.submit(self._start_worker, job, job.host, command, send_at, sent)
        # The next round must begin after this command left: wait until the host accepted it
        # (or it is known it never will). A signal stops the wait, and with it every start.
        while not sent.event.wait(0.05):
            if self.interrupts:
                return
        if sent.at is not None:
            self.last_sent_at = max(self.last_sent_at, sent.at)
            if sent.sent:
                job.sent_at = sent.at
        if sent.sent:
            self.sent_any = True
            if sent.at is not None and job.cleared_at is not None:
                age = max(0.0, sent.at - job.cleared_at)
                best = self.report.max_liveness_age_s
                self.report.max_liveness_age_s = age if best is None else max(best, age)

    def _start_worker(self, job: Job, host: str, command: str, send_at: float, sent: _Sent) -> None:
        assert self.pool is not None and self.audit is not None
        time.sleep(max(0.0, send_at - time.monotonic()))
        # The intent is on disk before the command leaves: after a SIGKILL the log still says
        # what may have been sent. One that cannot be written keeps its command from leaving.
        on = self.backend.start_host(self.master, host)
        why = self.audit.write(
            "intent",
            guest=job.guest,
            host=host,
            command=command,
            outcome="sending",
            attempt=job.attempts,
            sync=True,
            # What the plan said of it, so that fab report draws tiers, waits and planned bars.
            tier=job.tier,
            depends_on=job.deps or None,
            expected_start_s=job.planned_start_s,
            expected_ready_s=job.planned_ready_s,
            # xe's names are uuids: fab report names them as people do from the log alone.
            guest_label=self._labels.get(job.guest),
            host_label=self._labels.get(host),
        )
        if why is not None:
            sent.settle(None, False)
            self.results.put(_StartDone(job, host, command, None, unsent=why))
            return
        try:
            res = self.pool.run(
                on,
                command,
                timeout=self.env.ssh.command_timeout,
                on_sent=lambda: sent.settle(time.monotonic(), True),
            )
        finally:
            # Returned without the host accepting it (it never left): the next round may go.
            sent.settle(time.monotonic(), False)
        self.results.put(_StartDone(job, host, command, res))

    def _precheck(
        self, job: Job, state: ClusterState, domains: dict[str, set[str]], dead: set[str]
    ) -> Decision:
        """May ``job`` start now, on this turn's cluster state and fresh domain lists?"""
        return precheck(
            job.guest, state, domains, retry=job.attempts > 0, backend=self.backend, dead=dead
        )

    def _proven(self, sched: Scheduler, state: ClusterState) -> Proof | None:
        """This turn's proof: the round's domain lists (``ClusterReader.proven_domains``), or None.

        When the reader has waited too long for some live host, nothing more is started.
        """
        queued = sum(1 for j in self.jobs if j.phase == QUEUED)
        proof = self.reader.proven_domains(state, queued)
        if proof.stop is not None:
            self.stop_reason = proof.stop
            if not self.sent_any:
                self.report.refused = proof.stop
            self.progress.note(f"STOP: {proof.stop}")
            self._audit("stop", outcome="liveness-unknown", message=proof.stop)
            self._drop_queued(sched)
        return proof if proof.domains is not None else None
