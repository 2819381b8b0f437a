"""The start engine: parallel, capped, tiered, re-checked starts of a planned layout.

One loop on the calling thread owns every decision; worker threads only run ``clusvcadm`` on the
master and one more thread re-plans after repeated failures. Each turn of the loop reads the
cluster state once (one ``clustat`` on the master), which both confirms the starts in flight and
re-checks the guests about to start, so the number of round trips does not grow with the number
of guests.
"""

from __future__ import annotations

import contextlib
import copy
import queue
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO

from .. import remote as ssh
from ..cluster import ClusterState, StartOutcome, UnsafeName, safe_guest, safe_host
from ..cluster import backend as get_backend
from ..cluster.base import MASTER
from ..config import Environment, StartPolicy, XenfabConfig, expand_path
from ..errors import StartRefused, XenfabError
from ..gather import batch
from ..remote import CHANNELS_PER_TRANSPORT, RunResult, SessionPool
from ..snapshot import Domain, Snapshot
from ..textsafe import printable
from .audit import AuditLog, local_user
from .lock import MasterLock
from .progress import Progress, counts_line
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
from .watch import DomainWatch, Round

# A careful admin's global cap (docs/start.md explains the choice); declared in the start policy.
DEFAULT_PARALLEL = StartPolicy().max_starts_in_flight
# How often the loop reads clustat while starts are in flight (a read that takes longer is
# followed at once by the next).
POLL_S = 0.2
# Starts picked together are sent this far apart, busiest host first, so that they reach the
# cluster in that order instead of racing (a burst of 40 otherwise lands in any order).
STAGGER_S = 0.03
# A start that clusvcadm accepted but that is not `started` this long after is reported failed.
CONFIRM_TIMEOUT_S = 600.0
# Right after clusvcadm's Success, clustat may still show the old state for a moment.
CONFIRM_GRACE_S = 3.0
# With no answer from the master this long, nothing more is started.
STATE_GIVE_UP_S = 60.0
# With no fresh domain list from some live host this long, the guests still queued are not
# started (their liveness cannot be proven). A round of reads is waited on (beyond the reads' own
# timeout) this long, and a round with a failed read is retried this often.
LIVENESS_WAIT_S = 60.0
ROUND_WAIT_S = 1.0
ROUND_RETRY_S = 1.0
# After a second Ctrl-C, one last clustat read (this long at most) says which starts came up.
LAST_READ_S = 5.0

PROMPT = "Start {guest} on {host}? [Enter=yes, s=skip, q=quit] "
# Signals that stop a run like Ctrl-C: a `kill`, a closed terminal or ssh session.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@dataclass
class _StartDone:
    job: Job
    host: str
    command: str
    result: RunResult


@dataclass
class _Replanned:
    job: Job
    host: str | None
    why: str
    snapshot: Snapshot | None


class Engine:
    """One start run; ``run()`` returns the StartReport."""

    def __init__(
        self,
        cfg: XenfabConfig,
        env: Environment,
        snapshot: Snapshot,
        layout: Any,
        policy: Any,
        *,
        base_config: object | None = None,
        only_hosts: Collection[str] | None = None,
        parallel: int | None = None,
        dry_run: bool = False,
        step: bool = False,
        break_lock: bool = False,
        out: TextIO | None = None,
        prompt: Callable[[str], str] | None = None,
        confirm_timeout_s: float | None = None,
        start_policy: StartPolicy | None = None,
        dead_hosts: Collection[str] = (),
        liveness_wait_s: float | None = None,
    ):
        """Prepare a run; nothing touches the cluster before ``run()``."""
        self.cfg = cfg
        self.env = env
        self.snapshot = snapshot
        self.layout = layout
        self.policy = policy
        # The start caps are the environment's start policy (config `start:`), not the planner's.
        self.start_policy = start_policy or env.start
        self.base_config = base_config
        self.only_hosts = set(only_hosts) if only_hosts is not None else None
        self.step = step
        # --parallel for this run, else the environment's start policy.
        configured = parallel or self.start_policy.max_starts_in_flight
        self.parallel = 1 if step else max(1, int(configured))
        self.dry_run = dry_run
        self.break_lock = break_lock
        # Progress and prompts never go to stdout: `--format json` keeps it for the document.
        self.out = out if out is not None else sys.stderr
        self.prompt = prompt
        self.confirm_timeout_s = confirm_timeout_s or CONFIRM_TIMEOUT_S
        # Hosts declared dead for this run (--dead): their guests may be moved, their domain
        # lists are not waited for.
        self.dead_hosts = frozenset(dead_hosts)
        self.liveness_wait_s = _cap(liveness_wait_s, policy, "liveness_wait_s", LIVENESS_WAIT_S)
        self.backend = get_backend(env.backend, env.backend_options)
        # The snapshot names the host that actually read the cluster; the config is the fallback.
        self.master = snapshot.master or env.master or ""
        # The lock's host: the reader (rgmanager), or a host fixed in the config (xl), so that
        # two workstations that read on different hosts still meet at the same lock.
        first = snapshot.hosts[0].name if snapshot.hosts else self.master
        configured = env.master or first
        self.lock_host = self.backend.lock_host(self.master, configured)
        self.progress = Progress(self.out)
        self.report = StartReport(environment=env.name, dry_run=dry_run)
        self.results: queue.Queue[_StartDone | _Replanned] = queue.Queue()
        self.interrupts = 0
        self.stop_reason: str | None = None
        self.quit = False
        self.in_prompt = False
        self.in_loop = False
        self.watch: DomainWatch | None = None
        self.round: Round | None = None
        self.next_round_at = 0.0
        self.waiting_since: float | None = None
        self.waiting_key: tuple[str, ...] | None = None
        self.last_state: ClusterState | None = None
        self.sent_any = False
        self.old_handlers: dict[int, Any] = {}
        self.state_ok_at = time.monotonic()
        self.read_at = 0.0
        self.primed: ClusterState | None = None
        self.next_send = 0.0
        self.last_state_error: str | None = None
        self.durations: list[float] = []
        self.pool: SessionPool | None = None
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
            self._refuse_unless_quorate(self.snapshot.quorate, f"snapshot from {self.master}")
        self.jobs = self._jobs()
        if self.dry_run:
            return self._dry_run(t0)
        if not self.jobs:
            self.report.results = self.extra
            self.progress.note("nothing to start")
            return self.report
        if self.step and self.prompt is None:
            self.prompt = terminal_prompt()
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
        fab_cfg = ssh.fabric_config(self.env, self.base_config)
        self.pool = SessionPool(self.env, fab_cfg)
        # While the lock is taken: connect to every host and read their domain lists, and open
        # the master's transports the first burst of starts will need.
        self.watch = DomainWatch(
            self.pool, self.snapshot.hosts, self.env.ssh.connect_timeout, self.progress.note
        )
        # A first round while the lock is taken opens a transport to every host; the loop reads
        # its own rounds (a round vouches only for the turn it began in).
        self.round = self.watch.begin(skip=self._dead_now())
        warm = threading.Thread(
            target=self.pool.warm,
            args=(self.master, -(-self.parallel // CHANNELS_PER_TRANSPORT)),
            daemon=True,
        )
        warm.start()
        self._trap_signals()
        try:
            try:
                self._take_lock()
                self._loop(t0)
            finally:
                self.watch.stop()
                self._release_lock()
        finally:
            self._restore_signals()
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
                    "domains, the cluster shows it offline, or it is declared dead (--dead)"
                )
        workers = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="start")
        self.in_loop = True
        try:
            while not sched.done():
                try:
                    if self.interrupts and not self.report.interrupted:
                        self._on_interrupt()
                    if self.interrupts > 1:
                        self._abandon()
                        break
                    self._turn(sched, workers)
                except KeyboardInterrupt:
                    self.interrupts += 1
        finally:
            # Workers finish their clusvcadm (bounded by command_timeout); nothing waits on
            # them after a second Ctrl-C.
            self.in_loop = False
            try:
                workers.shutdown(wait=self.interrupts < 2, cancel_futures=True)
            except KeyboardInterrupt:
                self.interrupts += 1
        self._collect()

    def _turn(self, sched: Scheduler, workers: ThreadPoolExecutor) -> None:
        self._drain(sched, block=0.0)
        now = time.monotonic()
        stopping = self.report.interrupted or self.quit or self.stop_reason is not None
        if stopping:
            self._drop_queued(sched)
        confirming = [j for j in self.jobs if j.phase == CONFIRMING]
        may_start = not stopping and sched.ready(now)
        # A round vouches only for the turn it began in: the decision to start is taken now,
        # and every list that vouches for it is read after.
        self.round = None
        if may_start and now >= self.next_round_at:
            assert self.watch is not None
            self.round = self.watch.begin(skip=self._dead_now())
        state: ClusterState | None = None
        if confirming or may_start:
            primed, self.primed = self.primed, None
            # The read that checked quorum after taking the lock serves the first turn, unless
            # a start may follow: its cluster state must be read after the round began.
            fresh = (
                primed is not None
                and time.monotonic() - self.read_at < POLL_S
                and (self.round is None or self.read_at >= self.round.began)
                and not may_start
            )
            state = primed if fresh else self._read_state()
        if state is not None:
            self._confirm(sched, confirming, state)
            if state.quorate is False and self.stop_reason is None:
                self.stop_reason = "the cluster lost quorum"
                self.progress.note("STOP: the cluster is not quorate; starting nothing more")
                self._audit("stop", outcome="inquorate")
        elif (confirming or may_start) and time.monotonic() - self.state_ok_at > STATE_GIVE_UP_S:
            self._give_up_on_state(sched)
        for note in sched.advance(time.monotonic()):
            self.progress.note(note)
        stopping = self.report.interrupted or self.quit or self.stop_reason is not None
        if state is not None and self._may_start(state) and not stopping:
            self._dispatch(sched, workers, state)
        self.progress.tick(self._status())
        if sched.done():
            return
        # Wait for results until the next read is due, handling each as it comes.
        deadline = self.read_at + POLL_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.interrupts:
                break
            self._drain(sched, block=left)

    # -- before each start ---------------------------------------------------------------------

    def _dispatch(self, sched: Scheduler, workers: ThreadPoolExecutor, state: ClusterState) -> None:
        assert self.watch is not None
        domains = self._proven_domains(sched, state)
        if domains is None:
            return
        dead = self._dead_now(state)
        for _ in range(4):
            picked = sched.pick(time.monotonic(), limit=1 if self.step else None)
            if not picked:
                return
            if self.step and not picked[0].approved:
                job = picked[0]
                # Ask only about a guest that is still to start; then look again after the
                # answer, which may have taken minutes.
                first = self._precheck(job, state, domains, dead)
                if first.action == "start":
                    answer = self._ask(job)
                    if answer != "start":
                        sched.unpick(job)
                        if answer == "skip":
                            self._finish(job, "skipped", None, "skipped at the prompt")
                        else:
                            self.quit = True
                            self.progress.note("quit at the prompt: starting nothing more")
                            self._drop_queued(sched)
                        return
                    job.approved = True
                    # The answer may have taken minutes: a new round, then the state.
                    self.round = self.watch.begin(skip=self._dead_now(state))
                    fresh = self._read_state()
                    if fresh is None or not self._may_start(fresh):
                        sched.unpick(job)
                        return
                    state = fresh
                    self.watch.wait(self.round, self.env.ssh.connect_timeout + 1)
                    proven = self._proven_domains(sched, state)
                    if proven is None:
                        sched.unpick(job)
                        return
                    domains = proven
                    dead = self._dead_now(state)
            dropped = 0
            for job in picked:
                if self.interrupts:
                    # Ctrl-C arrived during this turn: what is not sent yet stays unsent.
                    sched.unpick(job)
                    continue
                decision = self._precheck(job, state, domains, dead)
                if decision.action == "start":
                    job.start_state = decision.message
                    job.dead_owner = decision.host
                    self._send(sched, workers, job)
                    continue
                dropped += 1
                sched.unpick(job)
                self._finish(job, decision.action, decision.host, decision.message)
            if not dropped:
                return

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
            self._finish(job, "failed", job.host, str(exc))
            return
        self.sent_any = True
        tries = f" (try {job.attempts})" if job.attempts > 1 else ""
        if job.dead_owner is not None:
            # The one case where the run disables a service the cluster shows running: its
            # owner is proven dead. Said loudly, and recorded before it is sent.
            why = (
                "declared dead for this run"
                if job.dead_owner in self.dead_hosts
                else "offline in the cluster's word"
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
        now = time.monotonic()
        send_at = max(now, self.next_send)
        self.next_send = send_at + STAGGER_S
        workers.submit(self._start_worker, job, job.host, command, send_at)

    def _start_worker(self, job: Job, host: str, command: str, send_at: float) -> None:
        assert self.pool is not None
        time.sleep(max(0.0, send_at - time.monotonic()))
        # The intent is on disk before the command leaves: after a SIGKILL the log still says
        # what may have been sent.
        on = self.backend.start_host(self.master, host)
        self._audit(
            "intent",
            guest=job.guest,
            host=host,
            command=command,
            outcome="sending",
            attempt=job.attempts,
            sync=True,
        )
        res = self.pool.run(on, command, timeout=self.env.ssh.command_timeout)
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
        if job.phase != STARTING:
            # Given up on (second Ctrl-C, master lost) while clusvcadm still ran: record only.
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
            outcome="accepted" if outcome.ok else "failed",
            message=outcome.message,
            exit_code=outcome.exit_code,
            attempt=job.attempts,
            seconds=round(res.seconds, 2),
        )
        if outcome.refused and outcome.already_running:
            self._finish(job, "found running", outcome.running_on, outcome.message)
            return
        if outcome.already_running:
            where = outcome.running_on or outcome.acted_on or done.host
            tool = self.backend.start_tool
            self._finish(job, "already running", where, f"{tool}: {outcome.message}")
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
            c = confirm(
                job,
                state.services.get(job.guest),
                now,
                self.confirm_timeout_s,
                CONFIRM_GRACE_S,
                self.backend,
            )
            if c.status == "wait":
                continue
            if c.status == "started":
                if job.command_at is not None:
                    self.durations.append(now - job.command_at)
                self._finish(job, "started", c.host, c.message)
            elif c.status == "stuck":
                self._finish(job, "failed", c.host, c.message)
            else:
                self._failed(sched, job, c.message)

    def _failed(self, sched: Scheduler, job: Job, why: str) -> None:
        why = why.strip().splitlines()[0] if why.strip() else "start failed"
        job.message = why
        host = job.host
        step = sched.after_failure(job, time.monotonic())
        if self.report.interrupted or self.quit or self.stop_reason is not None:
            self._finish(job, "failed", host, why)
            return
        if step == "retry":
            self._event(f"{job.guest} failed on {host}: {why}; retrying there")
        elif step == "relocate":
            self._event(f"{job.guest} failed twice on {host}: {why}; re-planning")
            self._replan_later(job)
        else:
            tried = ", ".join(job.hosts_tried)
            self._finish(job, "failed", host, f"failed on {tried}: {why}")

    def _replan_later(self, job: Job) -> None:
        # Guests still to start keep their planned room: the re-plan places this one only.
        pending = [
            (j.guest, j.slot or j.host, j.memory_mib, j.vcpus)
            for j in self.jobs
            if j is not job and not j.final
        ]
        avoid = {job.guest: set(job.failed_hosts)}
        thread = threading.Thread(
            target=self._replan_worker, args=(job, pending, avoid), daemon=True, name="replan"
        )
        thread.start()

    def _replan_worker(self, job: Job, pending: list[tuple], avoid: dict[str, set[str]]) -> None:
        try:
            from ..gather import gather
            from ..plan import plan

            fresh = gather(self.env, self.base_config)
            trial = _only_this_guest(fresh, job.guest, pending)
            without = list(getattr(self.layout, "without", []) or [])
            if self.only_hosts is not None:
                without += [h.name for h in fresh.hosts if h.name not in self.only_hosts]
            layout = plan(trial, self.policy, without=sorted(set(without)), avoid=avoid)
            a = layout.assignment(job.guest)
            if a is not None:
                self.results.put(_Replanned(job, a.host, a.why, fresh))
                return
            why = next((u.reason for u in layout.unplaced if u.guest == job.guest), None)
            why = why or next((s.reason for s in layout.skipped if s.guest == job.guest), None)
            self.results.put(_Replanned(job, None, why or "the planner found no other host", fresh))
        except XenfabError as exc:
            self.results.put(_Replanned(job, None, f"re-plan failed: {exc}", None))
        except Exception as exc:  # noqa: BLE001 - a planner bug must not kill the run
            self.results.put(_Replanned(job, None, f"re-plan failed: {exc!r}", None))

    def _on_replanned(self, sched: Scheduler, r: _Replanned) -> None:
        job = r.job
        if job.phase != REPLANNING:
            return
        if self.report.interrupted or self.quit or self.stop_reason is not None:
            self._finish(job, "not-started", None, "stopped before it could move")
            return
        if r.host is None:
            tried = ", ".join(job.hosts_tried)
            self._finish(job, "failed", job.host, f"failed on {tried}: {job.message}; {r.why}")
            return
        old = job.host
        sched.relocate(job, r.host)
        self._event(f"{job.guest}: moving from {old} to {r.host} ({r.why})")
        self._audit("relocate", guest=job.guest, host=r.host, outcome="queued", previous=old)

    def _finish(self, job: Job, outcome: str, host: str | None, message: str) -> None:
        assert self.sched is not None
        self.sched.finish(job, outcome, host, message, time.monotonic())
        verb = {
            "started": f"started {job.guest} on {host}",
            "failed": f"FAILED {job.guest}" + (f" on {host}" if host else ""),
            "already running": f"{job.guest} already running on {host}",
            "found running": f"{job.guest}",
            "skipped": f"skipped {job.guest}",
            "not-started": f"not started: {job.guest}",
            "unconfirmed": f"UNCONFIRMED {job.guest}" + (f" on {host}" if host else ""),
        }[outcome]
        took = ""
        if outcome == "started" and job.command_at is not None:
            took = f" ({format_duration(time.monotonic() - job.command_at)})"
        tail = f": {message}" if message and outcome != "found running" else ""
        if outcome == "found running":
            tail = f" {message}"
        self._event(f"{verb}{took}{tail}")
        if outcome in ("found running", "skipped", "not-started"):
            self._audit(
                outcome.replace(" ", "-"),
                guest=job.guest,
                host=host,
                outcome=outcome,
                message=message,
            )
        elif outcome in ("started", "failed", "unconfirmed"):
            self._audit(
                "result",
                guest=job.guest,
                host=host,
                outcome=outcome,
                message=message,
                attempts=job.attempts,
            )

    # -- liveness ------------------------------------------------------------------------------

    def _precheck(
        self, job: Job, state: ClusterState, domains: dict[str, set[str]], dead: set[str]
    ) -> Decision:
        """May ``job`` start now, on this turn's cluster state and fresh domain lists?"""
        return precheck(
            job.guest, state, domains, retry=job.attempts > 0, backend=self.backend, dead=dead
        )

    def _dead_now(self, state: ClusterState | None = None) -> set[str]:
        """Hosts proven dead: declared for the run, or offline in the cluster manager's word."""
        state = state or self.last_state
        dead = set(self.dead_hosts)
        if state is not None:
            dead |= {name for name, online in state.members.items() if online is False}
        return dead

    def _proven_domains(self, sched: Scheduler, state: ClusterState) -> dict[str, set[str]] | None:
        """The domain lists of a round begun after the decision to start, from every live host.

        None while some live host has not answered such a round: nothing starts meanwhile, the
        run says what it waits for, and after ``liveness_wait_s`` the queued guests are given up.
        """
        assert self.watch is not None
        rnd = self.round
        if rnd is None:
            return None
        # Each read is bounded (its command timeout); a signal cuts the wait short.
        limit = time.monotonic() + self.env.ssh.connect_timeout + ROUND_WAIT_S
        while not self.watch.wait(rnd, 0.1):
            if self.interrupts or time.monotonic() > limit:
                self.round = None
                return None
        self.round = None
        needed = [h for h in self.watch.hosts if h not in self._dead_now(state)]
        missing = rnd.unproven(needed)
        if not missing:
            if self.waiting_since is not None:
                self.progress.note("every live host listed its domains: starting again")
                self._audit("wait", outcome="resolved")
            self.waiting_since = self.waiting_key = None
            return rnd.lists()
        now = time.monotonic()
        self.next_round_at = now + ROUND_RETRY_S
        if self.waiting_since is None:
            self.waiting_since = now
        key = tuple(sorted(missing))
        why = "; ".join(f"{h}: {missing[h]}" for h in key)
        queued = sum(1 for j in self.jobs if j.phase == QUEUED)
        if key != self.waiting_key:
            self.waiting_key = key
            msg = (
                f"waiting: no domain list from {', '.join(key)} ({why}); {queued} guest(s) wait "
                f"because any of them could run there (giving up after "
                f"{self.liveness_wait_s:g} s; declare a dead host with --dead HOST)"
            )
            self.progress.note(msg)
            self._audit("wait", outcome="liveness-unknown", message=msg)
        if now - self.waiting_since >= self.liveness_wait_s:
            reason = (
                f"liveness unknown: no domain list from {', '.join(key)} for "
                f"{self.liveness_wait_s:g} s ({why}); fence or power off the host, or declare "
                "it dead for this run (--dead HOST)"
            )
            self.stop_reason = reason
            if not self.sent_any:
                self.report.refused = reason
            self.progress.note(f"STOP: {reason}")
            self._audit("stop", outcome="liveness-unknown", message=reason)
            self._drop_queued(sched)
        return None

    # -- reading the cluster -------------------------------------------------------------------

    def _read_state(self, timeout: float | None = None) -> ClusterState | None:
        assert self.pool is not None
        self.read_at = time.monotonic()
        if self.watch is not None and not self.backend.state_probes():
            return self._read_lists(timeout)
        nonce = batch.new_nonce()
        script = batch.build_script(nonce, self.backend.state_probes())
        res = self.pool.run(self.master, script, timeout=timeout or self.env.ssh.command_timeout)
        if res.error is not None or res.output is None:
            self._state_problem(res.error or "no output")
            return None
        split = batch.split_output(res.output.text, nonce)
        state = self.backend.parse_state(split.outputs, source=self.master)
        if state.quorate is None:
            self._state_problem(state.error or f"{self.master}: cluster state unreadable")
            return None
        self.state_ok_at = time.monotonic()
        self.last_state_error = None
        self.last_state = state
        return state

    def _read_lists(self, timeout: float | None = None) -> ClusterState | None:
        """No manager: the hosts' domain lists are the state (this turn's round, or a new one).

        A host that does not answer shows nothing here; starts still wait for every live
        host's list in the round that vouches for them (``_proven_domains``).
        """
        assert self.watch is not None
        rnd = self.round if self.round is not None else self.watch.begin(skip=self._dead_now())
        limit = time.monotonic() + (timeout or self.env.ssh.command_timeout)
        while not self.watch.wait(rnd, 0.1):
            if self.interrupts or time.monotonic() > limit:
                break
        lists = rnd.lists()
        if not lists:
            self._state_problem("no host listed its domains")
            return None
        state = self.backend.live_state(lists, [j.guest for j in self.jobs])
        self.state_ok_at = time.monotonic()
        self.last_state_error = None
        self.last_state = state
        return state

    def _may_start(self, state: ClusterState) -> bool:
        """True when the state read allows starts: quorate, or a backend with no quorum."""
        return bool(state.quorate) or not self.backend.quorum

    def _config_of(self, guest: str) -> str | None:
        g = self.snapshot.guest(guest)
        return g.config_file if g is not None else None

    def _state_problem(self, error: str) -> None:
        error = printable(error)
        if error != self.last_state_error:
            self.progress.note(f"warning: cannot read the cluster state: {error}")
        self.last_state_error = error

    # -- refusals, lock, interrupts ------------------------------------------------------------

    def _refuse_unless_quorate(self, quorate: bool | None, where: str) -> None:
        if quorate is True:
            return
        if quorate is False:
            raise StartRefused(
                f"the cluster is not quorate ({where}): starting guests now could run them twice "
                "once the partitions rejoin; restore quorum first (clustat, cman_tool status)"
            )
        raise StartRefused(
            f"the cluster's quorum is unknown ({where}): cannot confirm it is safe to start guests"
        )

    def _take_lock(self) -> None:
        assert self.pool is not None and self.audit is not None
        pool = self.pool
        # A per-environment lock_path (when the config has one) wins over the global key.
        path = getattr(self.env, "lock_path", None) or self.cfg.lock_path
        if "XENFAB_LAB_DIR" in path:
            path = expand_path(path)
        self.lock = MasterLock(
            lambda host, cmd: pool.run(host, cmd), self.lock_host, path, local_user()
        )
        try:
            self.lock.acquire(break_lock=self.break_lock)
        except StartRefused as exc:
            self._audit("lock", host=self.lock_host, outcome="refused", message=str(exc))
            raise
        if self.lock.broken is not None:
            msg = f"broke the lock held by {self.lock.broken.describe()}"
            self.progress.note(f"warning: {msg}")
            self._audit("lock-broken", host=self.lock_host, outcome="broken", message=msg)
        self._audit("lock", host=self.lock_host, outcome="acquired", path=path)
        # The lock is ours: re-read quorum live before the first start.
        state = self._read_state()
        if state is None:
            raise StartRefused(
                f"cannot read the cluster state on {self.master}: {self.last_state_error}"
            )
        if self.backend.quorum:
            self._refuse_unless_quorate(state.quorate, f"clustat on {self.master}")
        self.primed = state

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
                self.interrupts += 1
                continue

    def _trap_signals(self) -> None:
        """Ctrl-C, SIGTERM and SIGHUP all stop the run the same way (a closed terminal too)."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            # A prompt blocks in input(): only an exception gets out of it (counted by the loop).
            if self.in_prompt:
                raise KeyboardInterrupt
            # The first signal is a flag the loop reads between two steps, so no bookkeeping is
            # cut in half; the second one breaks out of whatever wait is under way.
            self.interrupts += 1
            if self.interrupts > 1 and self.in_loop:
                raise KeyboardInterrupt

        for sig in STOP_SIGNALS:
            try:
                self.old_handlers[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                continue

    def _restore_signals(self) -> None:
        for sig, old in self.old_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.old_handlers = {}

    def _on_interrupt(self) -> None:
        self.report.interrupted = True
        flying = [j for j in self.jobs if j.active]
        self.progress.note(
            f"interrupted: starting nothing new; waiting for {len(flying)} start(s) in flight "
            "(Ctrl-C again to stop waiting)"
        )
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
                state = self._read_state(timeout=min(LAST_READ_S, self.env.ssh.command_timeout))
            except KeyboardInterrupt:
                self.interrupts += 1
        for job in active:
            svc = state.services.get(job.guest) if state is not None else None
            if svc is not None and svc.state == "started" and job.command_at is not None:
                self._finish(job, "started", svc.owner or job.host, "confirmed after the interrupt")
                continue
            sent = "accepted by clusvcadm" if job.phase == CONFIRMING else "sent"
            seen = f" (clustat: {svc.state})" if svc is not None else ""
            self._finish(
                job,
                "unconfirmed",
                job.host,
                f"interrupted before it was confirmed: start {sent}{seen}; check clustat",
            )
        self._drop_queued(self.sched)

    def _drop_queued(self, sched: Scheduler) -> None:
        why = self.stop_reason or ("quit at the prompt" if self.quit else "interrupted")
        for job in self.jobs:
            if job.phase in (QUEUED, REPLANNING):
                sched.unpick(job)
                self._finish(job, "not-started", None, why)

    def _give_up_on_state(self, sched: Scheduler) -> None:
        self.stop_reason = f"no cluster state from {self.master} for {STATE_GIVE_UP_S:g} s"
        self.progress.note(f"STOP: {self.stop_reason}: {self.last_state_error}")
        for job in self.jobs:
            if job.phase in (STARTING, CONFIRMING):
                self._finish(job, "failed", job.host, f"unconfirmed: {self.last_state_error}")
        self._drop_queued(sched)

    def _ask(self, job: Job) -> str:
        assert self.prompt is not None
        text = PROMPT.format(guest=job.guest, host=job.host)
        for _ in range(5):
            self.in_prompt = True
            try:
                answer = self.prompt(text)
            except EOFError:
                return "quit"
            finally:
                self.in_prompt = False
            word = (answer or "").strip().lower()
            if word in ("", "y", "yes"):
                return "start"
            if word in ("s", "skip", "n", "no"):
                return "skip"
            if word in ("q", "quit"):
                return "quit"
            self.progress.note("answer Enter (start), s (skip) or q (quit)")
        return "quit"

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
                    outcome=job.outcome or "not-started",
                    seconds=seconds,
                    message=job.message,
                    attempts=job.attempts,
                    planned_host=job.planned_host,
                    tier=job.tier,
                    hosts_tried=list(job.hosts_tried),
                )
            )
        self.report.results = results + self.extra

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
                self.extra.append(GuestResult(a.guest, a.host, "failed", message=str(exc)))
                continue
            jobs.append(job)
        if self.only_hosts is None:
            for u in getattr(self.layout, "unplaced", []) or []:
                self.extra.append(
                    GuestResult(u.guest, None, "not-started", message=f"no host: {u.reason}")
                )
        return jobs

    def _dry_run(self, t0: float) -> StartReport:
        down = "/".join(sorted(self.backend.states.down))
        via = f" via {self.master}" if self.backend.start_on == MASTER else ""
        lines = [
            f"dry run: would start {len(self.jobs)} guests{via} "
            f"(at most {self.start_policy.max_starts_per_host} per host, {self.parallel} in all), "
            f"each only if still {down} and running nowhere:"
        ]
        for tier in sorted({j.tier for j in self.jobs}):
            lines.append(f"tier {tier}:")
            for job in (j for j in self.jobs if j.tier == tier):
                state = self._snapshot_state(job.guest)
                # The plan names the dead owner a guest is taken over from (declared dead, or
                # offline in the cluster's word): the same move a real run makes.
                planned = self.layout.assignment(job.guest)
                dead_owner = planned.takeover_from if planned is not None else None
                try:
                    command = self.backend.start_command(
                        job.guest,
                        job.host,
                        state,
                        config=self._config_of(job.guest),
                        dead_owner=dead_owner,
                    )
                except (UnsafeName, ValueError) as exc:
                    command = f"# not startable: {exc}"
                lines.append(f"  {self.backend.start_host(self.master, job.host)}$ {command}")
        self.progress.write("\n".join(lines) + "\n")
        self.report.results = [
            GuestResult(j.guest, j.host, "not-started", 0.0, "dry run", 0, j.host, j.tier)
            for j in self.jobs
        ] + self.extra
        self.report.seconds = time.monotonic() - t0
        return self.report

    def _snapshot_state(self, guest: str) -> str | None:
        g = self.snapshot.guest(guest)
        return g.state if g is not None else None


def _only_this_guest(snap: Snapshot, guest: str, pending: list[tuple]) -> Snapshot:
    """A copy of ``snap`` where only ``guest`` is to place and the run's other guests hold room."""
    trial = copy.deepcopy(snap)
    hosts = {h.name: h for h in trial.hosts}
    held = {name: (host, mem, vcpus) for name, host, mem, vcpus in pending}
    for g in trial.guests:
        if g.name == guest:
            # rgmanager leaves a service whose start failed `stopped`: still ours to place.
            if g.state == "stopped":
                g.state = "disabled"
            continue
        if not trial.is_down(g):
            continue
        # Not ours to place now: either another guest of this run (its room is held below) or
        # a guest outside this run (--host), which must not compete for the room.
        g.state = "pending"
    for name, (host_name, mem, vcpus) in held.items():
        h = hosts.get(host_name)
        if h is None or any(d.name == name for d in h.domains):
            continue
        h.domains.append(Domain(name, mem, vcpus, "pending"))
        h.free_mib -= mem
    return trial


def terminal_prompt() -> Callable[[str], str]:
    """A prompt that reads from the controlling terminal; StartRefused when there is none."""
    if sys.stdin is not None and sys.stdin.isatty():
        return _ask_on_stderr
    try:
        tty = open("/dev/tty", "r+", encoding="utf-8")  # noqa: SIM115 - lives for the run
    except OSError:
        raise StartRefused("--step needs a terminal to ask on; none is attached") from None

    def ask(text: str) -> str:
        tty.write(text)
        tty.flush()
        line = tty.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return ask


def _ask_on_stderr(text: str) -> str:
    """Ask on stderr, read the answer from stdin: stdout carries only the result (JSON)."""
    sys.stderr.write(text)
    sys.stderr.flush()
    return input()


def _cap(given: float | None, policy: Any, name: str, default: float) -> float:
    """A limit for this run: the keyword, else the (start) policy's value, else the default."""
    if given is not None:
        return float(given)
    value = getattr(policy, name, None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else default
