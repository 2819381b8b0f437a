"""The start engine's loop: parallel, capped, tiered, re-checked starts of a planned layout.

One loop on the calling thread owns every decision; worker threads only run the backend's start
command and one more thread re-plans after repeated failures. Each turn of the loop reads the
cluster state once (``ClusterReader``), which both confirms the starts in flight and re-checks
the guests about to start, so the number of round trips does not grow with the number of guests.
The other concerns have their own units: ``interrupts`` (signals, the last look), ``prompter``
(step mode), ``replan`` (moving a guest that failed twice) and ``reader`` (state, quorum,
liveness).

Freshness per start: the domain lists (and the state read) that clear a start are read in a
round begun after every earlier start of the run was sent (the host accepted the command), so
a domain that appears while the run is under way is seen before the next start goes out. The
loop sends one start, begins the next round at once, and sends the next start when it is back.
"""

from __future__ import annotations

import queue
import secrets
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cluster import ClusterState, StartOutcome, UnsafeName, safe_guest, safe_host
from ..cluster import backend as get_backend
from ..cluster.base import MASTER
from ..config import Environment, StartPolicy, XenfabConfig
from ..duplicates import Duplicate, find_duplicates
from ..duplicates import line as duplicate_line
from ..errors import ConfigError, StartRefused
from ..remote import CHANNELS_PER_TRANSPORT, RunResult, SessionPool, fabric_config
from ..snapshot import Snapshot
from ..textsafe import printable
from .audit import AuditLog, local_user
from .interrupts import LAST_READ_S, Interrupts, last_look, stopping_note
from .lock import HEARTBEAT_S, MasterLock, configured_path
from .options import StartOptions
from .outcome import Action, Outcome, Verdict
from .progress import Progress, counts_line
from .prompter import SKIP, START, StepPrompter, terminal_prompt
from .reader import LIVENESS_WAIT_S, ROUND_WAIT_S, ClusterReader, Proof, answered
from .replan import Replanned, Replanner
from .report import GuestResult, StartReport, format_duration
from .schedule import (
    CONFIRMING,
    QUEUED,
    REPLANNING,
    STARTING,
    Decision,
    Job,
    Scheduler,
    confirm,
    precheck,
)
from .watch import DomainWatch

if TYPE_CHECKING:
    from ..plan import Layout, Policy

# A careful admin's global cap (docs/start.md explains the choice); declared in the start policy.
DEFAULT_PARALLEL = StartPolicy().max_starts_in_flight
# How often the loop reads the cluster state while starts are in flight (a read that takes
# longer is followed at once by the next).
POLL_S = 0.2
# Starts are sent at least this far apart, busiest host first, so that they reach the cluster
# in that order (each also waits for a round of domain lists begun after the previous one was
# sent, which usually takes longer).
STAGGER_S = 0.03
# The run lock's commands (take, heartbeat, release) are short: a master that does not answer
# one in this long is noted, and the heartbeat thread is joined within it.
LOCK_COMMAND_S = 10.0
# A start the backend accepted but that does not run this long after is reported failed.
CONFIRM_TIMEOUT_S = 600.0
# Right after an accepted start, the state read may still show the old state for a moment.
CONFIRM_GRACE_S = 3.0
# Starts sent in one dispatch before the loop's turn comes round again (tiers, progress).
DISPATCH_MAX = 64

__all__ = ["DEFAULT_PARALLEL", "Engine", "StartOptions", "terminal_prompt"]


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


class Engine:
    """One start run; ``run()`` returns the StartReport."""

    def __init__(
        self,
        cfg: XenfabConfig,
        env: Environment,
        snapshot: Snapshot,
        layout: Layout,
        policy: Policy,
        options: StartOptions | None = None,
    ):
        """Prepare a run; nothing touches the cluster before ``run()``."""
        opts = options or StartOptions()
        self.options = opts
        self.cfg = cfg
        self.env = env
        self.snapshot = snapshot
        self.layout = layout
        self.policy = policy
        # The start caps are the environment's start policy (config `start:`), not the planner's.
        self.start_policy = opts.start_policy or env.start
        self.only_hosts = set(opts.only_hosts) if opts.only_hosts is not None else None
        self.step = opts.step
        # --parallel for this run, else the environment's start policy.
        configured = opts.parallel or self.start_policy.max_starts_in_flight
        self.parallel = 1 if opts.step else max(1, int(configured))
        self.dry_run = opts.dry_run
        self.verbose = opts.verbose
        # Progress and prompts never go to stdout: `--format json` keeps it for the document.
        self.out = opts.out if opts.out is not None else sys.stderr
        self.prompt = opts.prompt
        self.confirm_timeout_s = opts.confirm_timeout_s or CONFIRM_TIMEOUT_S
        # Hosts declared dead for this run (--dead): their guests may be moved, their domain
        # lists are not waited for.
        self.dead_hosts = frozenset(opts.dead_hosts)
        self.backend = get_backend(env.backend, env.backend_options)
        # The snapshot names the host that actually read the cluster; the config is the fallback.
        self.master = snapshot.master or env.master or ""
        # The lock's host: the reader (rgmanager), or a host fixed in the config (xl), so that
        # two workstations that read on different hosts still meet at the same lock.
        first = snapshot.hosts[0].name if snapshot.hosts else self.master
        self.lock_host = self.backend.lock_host(self.master, env.master or first)
        self.progress = Progress(self.out)
        self.report = StartReport(environment=env.name, dry_run=opts.dry_run)
        self.results: queue.Queue[_StartDone | Replanned] = queue.Queue()
        self.prompter: StepPrompter | None = None
        self.interrupts = Interrupts(lambda: self.prompter is not None and self.prompter.in_prompt)
        self.reader = ClusterReader(
            self.backend,
            env,
            self.master,
            dead_hosts=self.dead_hosts,
            liveness_wait_s=_cap(opts.liveness_wait_s, policy, "liveness_wait_s", LIVENESS_WAIT_S),
            note=self.progress.note,
            audit=self._audit,
            interrupted=lambda: bool(self.interrupts),
        )
        self.replanner = Replanner(
            env, opts.base_config, layout, policy, self.backend, self.results, self.only_hosts
        )
        self.stop_reason: str | None = None
        self.quit = False
        self.sent_any = False
        self.primed: ClusterState | None = None
        # When the latest start command left (monotonic); the next start's round begins after.
        self.last_sent_at = 0.0
        self.beat_stop = threading.Event()
        self.beat_thread: threading.Thread | None = None
        self.durations: list[float] = []
        self.pool: SessionPool | None = None
        self.watch: DomainWatch | None = None
        self.audit: AuditLog | None = None
        self.lock: MasterLock | None = None
        self.sched: Scheduler | None = None
        self.jobs: list[Job] = []
        self.extra: list[GuestResult] = []

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> StartReport:
        """Start the layout's guests; raise StartRefused before the first start when unsafe."""
        t0 = time.monotonic()
        if self.backend.quorum:
            self.reader.refuse_unless_quorate(self.snapshot.quorate, f"snapshot from {self.master}")
        self.jobs = self._jobs()
        self.reader.guests = [j.guest for j in self.jobs]
        if self.dry_run:
            return self._dry_run(t0)
        if not self.jobs:
            self.report.results = self.extra
            self.progress.note("nothing to start")
            return self.report
        if self.step:
            self.prompter = StepPrompter(self.prompt or terminal_prompt(), self.progress.note)
        run_id = secrets.token_hex(6)
        self.audit = AuditLog(self.cfg.audit_log, self.env.name, run_id)
        self.audit.open()
        for host in sorted(self.dead_hosts):
            self._audit(
                "declare-dead",
                host=host,
                outcome="declared",
                message=f"declared dead for this run by {local_user()}",
                sync=True,
            )
        fab_cfg = fabric_config(self.env, self.options.base_config)
        self.pool = SessionPool(self.env, fab_cfg)
        # While the lock is taken: connect to every host and read their domain lists, and open
        # the master's transports the first burst of starts will need.
        self.watch = DomainWatch(
            self.pool,
            self.snapshot.hosts,
            self.env.ssh.connect_timeout,
            self.progress.note,
            backend=self.backend,
            master=self.master,
            declared_dead=self.dead_hosts,
        )
        self.reader.attach(self.pool, self.watch)
        # A first round while the lock is taken opens a transport to every host; the loop reads
        # its own rounds (a round vouches only for the turn it began in).
        self.reader.begin_round()
        warm = threading.Thread(
            target=self.pool.warm,
            args=(self.master, -(-self.parallel // CHANNELS_PER_TRANSPORT)),
            daemon=True,
        )
        warm.start()
        self.interrupts.trap()
        try:
            try:
                self._take_lock()
                self._loop(t0)
            finally:
                self._stop_heartbeat()
                self.watch.stop()
                self._release_lock()
        finally:
            self.interrupts.restore()
            if self.pool is not None:
                self.pool.close()
            self.audit.write(
                "run-end",
                outcome="interrupted" if self.report.interrupted else "done",
                counts=self.report.counts(),
            )
            self.audit.close()
        self.report.seconds = time.monotonic() - t0
        self.progress.clear()
        return self.report

    def _loop(self, t0: float) -> None:
        sched = Scheduler(
            self.jobs,
            per_host=self.start_policy.max_starts_per_host,
            parallel=self.parallel,
            tier_timeout_s=self.start_policy.tier_timeout_s,
            now=time.monotonic(),
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
        self._collect()

    def _turn(self, sched: Scheduler, workers: ThreadPoolExecutor) -> None:
        self._drain(sched, block=0.0)
        self._check_safety()
        now = time.monotonic()
        stopping = self.report.interrupted or self.quit or self.stop_reason is not None
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
                and time.monotonic() - reader.read_at < POLL_S
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
        stopping = self.report.interrupted or self.quit or self.stop_reason is not None
        if state is not None and reader.may_start(state) and not stopping:
            self._dispatch(sched, workers, state)
        self.progress.tick(self._status())
        if sched.done():
            return
        # Wait for results until the next read is due, handling each as it comes.
        deadline = reader.read_at + POLL_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.interrupts:
                break
            self._drain(sched, block=left)

    # -- before each start ---------------------------------------------------------------------

    def _dispatch(self, sched: Scheduler, workers: ThreadPoolExecutor, state: ClusterState) -> None:
        assert self.watch is not None
        proof = self._proven(sched, state)
        if proof is None:
            return
        domains: dict[str, set[str]] = proof.domains or {}
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
                            self._finish(job, Outcome.SKIPPED, None, "skipped at the prompt")
                        else:
                            self.quit = True
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

    def _stopping(self) -> bool:
        return self.report.interrupted or self.quit or self.stop_reason is not None

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
        self._event(f"starting {job.guest} on {job.host}{tries}")
        sent = _Sent()
        send_at = self.last_sent_at + STAGGER_S
        workers.submit(self._start_worker, job, job.host, command, send_at, sent)
        # The next round must begin after this command left: wait until the host accepted it
        # (or it is known it never will). A signal stops the wait, and with it every start.
        while not sent.event.wait(0.05):
            if self.interrupts:
                return
        if sent.at is not None:
            self.last_sent_at = max(self.last_sent_at, sent.at)
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

    # -- what comes back -----------------------------------------------------------------------

    def _drain(self, sched: Scheduler, block: float) -> None:
        try:
            item = self.results.get(timeout=block) if block > 0 else self.results.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(item, _StartDone):
                self._on_start_done(sched, item)
            else:
                self._on_replanned(sched, item)
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return

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
                self._event(f"{job.guest}: {tool} started it on {actual}, not {job.host}")
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
                CONFIRM_GRACE_S,
                self.backend,
            )
            if c.status == Verdict.WAIT:
                continue
            if c.status == Verdict.STARTED:
                if job.command_at is not None:
                    self.durations.append(now - job.command_at)
                self._finish(job, Outcome.STARTED, c.host, c.message)
            elif c.status == Verdict.STUCK:
                self._finish(job, Outcome.FAILED, c.host, c.message)
            else:
                self._failed(sched, job, c.message)

    def _failed(self, sched: Scheduler, job: Job, why: str) -> None:
        why = why.strip().splitlines()[0] if why.strip() else "start failed"
        job.message = why
        host = job.host
        step = sched.after_failure(job, time.monotonic())
        if self.report.interrupted or self.quit or self.stop_reason is not None:
            self._finish(job, Outcome.FAILED, host, why)
            return
        if step == "retry":
            self._event(f"{job.guest} failed on {host}: {why}; retrying there")
        elif step == "relocate":
            self._event(f"{job.guest} failed twice on {host}: {why}; re-planning")
            # Guests still to start keep their planned room: the re-plan places this one only.
            self.replanner.later(job, [j for j in self.jobs if j is not job and not j.final])
        else:
            tried = ", ".join(job.hosts_tried)
            self._finish(job, Outcome.FAILED, host, f"failed on {tried}: {why}")

    def _on_replanned(self, sched: Scheduler, r: Replanned) -> None:
        job = r.job
        if job.phase != REPLANNING:
            return
        if self.report.interrupted or self.quit or self.stop_reason is not None:
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
        self._event(f"{job.guest}: moving from {old} to {r.host} ({r.why})")
        self._audit("relocate", guest=job.guest, host=r.host, outcome="queued", previous=old)

    def _finish(self, job: Job, outcome: Outcome, host: str | None, message: str) -> None:
        assert self.sched is not None
        self.sched.finish(job, outcome, host, message, time.monotonic())
        verb = {
            Outcome.STARTED: f"started {job.guest} on {host}",
            Outcome.FAILED: f"FAILED {job.guest}" + (f" on {host}" if host else ""),
            Outcome.ALREADY_RUNNING: f"{job.guest} already running on {host}",
            Outcome.FOUND_RUNNING: f"{job.guest}",
            Outcome.SKIPPED: f"skipped {job.guest}",
            Outcome.NOT_STARTED: f"not started: {job.guest}",
            Outcome.UNCONFIRMED: f"UNCONFIRMED {job.guest}" + (f" on {host}" if host else ""),
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
        elif outcome in (Outcome.STARTED, Outcome.FAILED, Outcome.UNCONFIRMED):
            self._audit(
                "result",
                guest=job.guest,
                host=host,
                outcome=outcome,
                message=message,
                attempts=job.attempts,
            )

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

    def _config_of(self, guest: str) -> str | None:
        g = self.snapshot.guest(guest)
        return g.config_file if g is not None else None

    # -- lock, interrupts ----------------------------------------------------------------------

    def _take_lock(self) -> None:
        assert self.pool is not None and self.audit is not None
        pool = self.pool
        path = configured_path(self.cfg, self.env)
        timeout = min(self.env.ssh.command_timeout, LOCK_COMMAND_S)
        self.lock = MasterLock(
            lambda host, cmd: pool.run(host, cmd, timeout=timeout),
            self.lock_host,
            path,
            local_user(),
        )
        try:
            self.lock.acquire(break_lock=self.options.break_lock)
        except StartRefused as exc:
            self._audit("lock", host=self.lock_host, outcome="refused", message=str(exc))
            raise
        if self.lock.broken is not None:
            msg = f"broke the lock held by {self.lock.broken.describe()}"
            self.progress.note(f"warning: {msg}")
            self._audit("lock-broken", host=self.lock_host, outcome="broken", message=msg)
        self._audit("lock", host=self.lock_host, outcome="acquired", path=path)
        self.beat_thread = threading.Thread(target=self._heartbeat, name="lock-beat", daemon=True)
        self.beat_thread.start()
        # A host declared dead that answers the first round is not dead: a live one answers
        # within a round's wait (a powered-off one is not waited for longer than that).
        assert self.watch is not None
        self.watch.probes_done(ROUND_WAIT_S)
        self._check_safety()
        # The lock is ours: re-read quorum live before the first start.
        state = self.reader.read_state()
        if state is None:
            raise StartRefused(
                f"cannot read the cluster state on {self.master}: {self.reader.last_state_error}"
            )
        if self.backend.quorum:
            self.reader.refuse_unless_quorate(
                state.quorate, f"{self.backend.state_tool} on {self.master}"
            )
        self.primed = state

    def _heartbeat(self) -> None:
        """Refresh the lock's heartbeat while the run lives (another run sees it alive)."""
        assert self.lock is not None
        while not self.beat_stop.wait(HEARTBEAT_S):
            self.lock.beat()

    def _stop_heartbeat(self) -> None:
        self.beat_stop.set()
        if self.beat_thread is not None:
            # A beat under way ends within its command's limit; the release must come after.
            self.beat_thread.join(LOCK_COMMAND_S + 2)

    def _release_lock(self) -> None:
        if self.lock is None or not self.lock.held:
            return
        for _ in range(3):
            try:
                self.lock.release()
                self._audit("unlock", host=self.lock_host, outcome="released")
                return
            except KeyboardInterrupt:
                # Releasing is the one thing Ctrl-C must not skip.
                self.interrupts.add()
                continue

    def _on_interrupt(self) -> None:
        self.report.interrupted = True
        flying = [j for j in self.jobs if j.active]
        self.progress.note(stopping_note(len(flying)))
        self._audit("interrupt", outcome="stopping", in_flight=len(flying))
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

    # -- output --------------------------------------------------------------------------------

    def _status(self) -> str:
        assert self.sched is not None
        mean = sum(self.durations) / len(self.durations) if self.durations else None
        return counts_line(self.sched.counts(), self.sched.eta(mean, time.monotonic()))

    def _event(self, text: str) -> None:
        self.progress.event(text, self._status() if self.sched is not None else None)

    def _audit(self, action: str, sync: bool = False, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.write(action, sync=sync, **fields)

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

    # -- setup ---------------------------------------------------------------------------------

    def _jobs(self) -> list[Job]:
        jobs: list[Job] = []
        for i, a in enumerate(self.layout.assignments):
            if self.only_hosts is not None and a.host not in self.only_hosts:
                continue
            job = Job(a.guest, a.host, int(a.tier), i, a.memory_mib, a.vcpus)
            try:
                safe_guest(a.guest)
                safe_host(a.host)
            except UnsafeName as exc:
                self.extra.append(GuestResult(a.guest, a.host, Outcome.FAILED, message=str(exc)))
                continue
            jobs.append(job)
        if self.only_hosts is None:
            for u in getattr(self.layout, "unplaced", []) or []:
                self.extra.append(
                    GuestResult(u.guest, None, Outcome.NOT_STARTED, message=f"no host: {u.reason}")
                )
        return jobs

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


def _cap(given: float | None, policy: Any, name: str, default: float) -> float:
    """A limit for this run: the keyword, else the (start) policy's value, else the default."""
    if given is not None:
        return float(given)
    value = getattr(policy, name, None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else default
