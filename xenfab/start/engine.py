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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..cluster import ClusterState
from ..cluster import backend as get_backend
from ..config import Environment, StartPolicy, XenfabConfig
from ..remote import CHANNELS_PER_TRANSPORT, SessionPool, fabric_config
from ..snapshot import Snapshot
from ..values import labels, speaker
from .audit import AuditLog, local_user
from .confirmation import ConfirmationUnit
from .dispatch import DispatchUnit, _StartDone
from .dryrun import DryRunUnit
from .ending import EndingUnit
from .interrupts import Interrupts
from .job import jobs_of
from .lock import MasterLock
from .lockhold import LockUnit
from .loop import LoopUnit
from .options import StartOptions
from .progress import Progress, counts_line
from .prompter import StepPrompter, terminal_prompt
from .reader import ClusterReader
from .readiness import ReadinessUnit
from .ready import ProbeDone
from .replan import Replanned, Replanner
from .report import GuestResult, StartReport
from .schedule import (
    Job,
    Scheduler,
)
from .watch import DomainWatch

if TYPE_CHECKING:
    from ..plan import Layout, Policy

# A careful admin's global cap (docs/start.md explains the choice); declared in the start policy.
DEFAULT_PARALLEL = StartPolicy().max_starts_in_flight
__all__ = ["DEFAULT_PARALLEL", "Engine", "StartOptions", "terminal_prompt"]


class Engine(
    LoopUnit, DispatchUnit, ConfirmationUnit, ReadinessUnit, LockUnit, DryRunUnit, EndingUnit
):
    """One start run; ``run()`` returns the StartReport.

    Its units by responsibility: loop (turns, stops), dispatch (what goes now, sending),
    confirmation (what comes back, phases), readiness (probes, dependencies), lockhold (the
    run lock), dryrun (the listing), ending (the results, the last round of domain lists).
    """

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
        self._labels = labels(snapshot.guests, snapshot.hosts)  # name -> label (xe)
        self._speaker = speaker(self._labels)
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
        # Every setting is the start policy's (config `start:`); a test may give its own.
        self.confirm_timeout_s = opts.confirm_timeout_s or self.start_policy.confirm_timeout_s
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
        self.results: queue.Queue[_StartDone | Replanned | ProbeDone] = queue.Queue()
        self.prompter: StepPrompter | None = None
        # A shared count is falsy until the first signal: `is None`, not `or`.
        self.interrupts = (
            opts.interrupts
            if opts.interrupts is not None
            else Interrupts(lambda: self.prompter is not None and self.prompter.in_prompt)
        )
        self.reader = ClusterReader(
            self.backend,
            env,
            self.master,
            dead_hosts=self.dead_hosts,
            liveness_wait_s=(
                opts.liveness_wait_s
                if opts.liveness_wait_s is not None
                else self.start_policy.liveness_wait_s
            ),
            state_give_up_s=self.start_policy.state_give_up_s,
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
        self.probers: ThreadPoolExecutor | None = None

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
        self.audit.plan_id = self.options.plan_id
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

    def _config_of(self, guest: str) -> str | None:
        g = self.snapshot.guest(guest)
        return g.config_file if g is not None else None

    def _status(self, waits: bool = False) -> str:
        """The counts and ETA; ``waits``: also what queued starts wait for (the live line)."""
        assert self.sched is not None
        mean = sum(self.durations) / len(self.durations) if self.durations else None
        now = time.monotonic()
        why = self.sched.waits(now) if waits else None
        return counts_line(self.sched.counts(), self.sched.eta(mean, now), why)

    def _said(self, name: str | None) -> str:
        """A guest or host as people say it: an identifier (xe's uuid) after its label."""
        return self._speaker(name)

    def _event(self, text: str) -> None:
        self.progress.event(text, self._status() if self.sched is not None else None)

    def _audit(self, action: str, sync: bool = False, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.write(action, sync=sync, **fields)

    def _jobs(self) -> list[Job]:
        jobs, extra = jobs_of(
            self.layout,
            self.snapshot,
            self.start_policy,
            self.backend.start_includes_gate,
            self.only_hosts,
            f"{self.cfg.path}",
            self.env.name,
        )
        self.extra.extend(extra)
        return jobs
