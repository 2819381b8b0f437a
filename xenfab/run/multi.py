"""Several environments in one run: each is the single-environment run, combined at the end.

``--env 'dc1-*'`` or ``--env a,b`` picks several clusters. Each keeps everything of its own
(backend, master, quorum, lock, caps, policy, audit log): it is gathered and planned exactly as
a run of that one environment, and one cluster refused (inquorate, lock held, master down, a
config error of its own) does not stop the others. Every cluster is gathered in one pass (the
hosts asked at once capped for the whole run) and planned on its own, then one confirmation
covers the whole run, then every cluster's engine starts in parallel, each under its own caps
(one after another with ``--step``: one terminal asks one question at a time).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ConfigError, ExitCode, StartRefused, XenfabError
from ..remote.group import shared_workers
from ..start.interrupts import Interrupts
from . import Answer, RunOutcome, RunRequest, _ended, _engine, _plan_for_start, ask_yes
from . import preview as preview_one
from .facts import Planned, Refusal, RefusalKind, check_format, gather_facts, load, refusal_of

if TYPE_CHECKING:
    from ..snapshot import Snapshot

__all__ = ["ClusterRun", "MultiOutcome", "environments", "facts", "is_multi", "preview", "start"]

# Clusters begun at a time (threads). The hosts asked at once are capped for the whole pass,
# not per cluster: the largest ssh.parallel of the run's environments (remote.shared_workers).
CLUSTERS_AT_ONCE = 32
# Options that name one environment's things: with several environments they are refused.
ONE_ENV_ONLY = {
    "from_": "--from",
    "save": "--save",
    "plan": "--plan",
    "dead": "--dead",
    "without": "--without",
    "expect": "--expect",
    "hosts": "start-host",
}


def is_multi(spec: str | None) -> bool:
    """Whether ``--env`` names several environments (a comma list or a glob)."""
    return bool(spec) and ("," in spec or any(ch in spec for ch in "*?["))


def environments(c: Any, config: str | None, spec: str | None) -> list[str]:
    """The environment names ``--env`` picks (one line naming the known ones when none)."""
    cfg, _ = load(c, config, None)
    return cfg.select(spec)


@dataclass
class ClusterRun:
    """One environment's part of a multi-environment run."""

    env: str
    planned: Planned | None = None
    outcome: RunOutcome | None = None
    # Stopped before any change by an error of its own (config, unreachable, bad option).
    error: str | None = None
    snap: Snapshot | None = None
    refusal: Refusal | None = None
    # Wall time of its start phase (engine), when it ran.
    seconds: float | None = None

    @property
    def refused(self) -> str | None:
        """Why nothing was changed on this cluster, or None."""
        if self.error is not None:
            return self.error
        if self.outcome is not None and self.outcome.refusal is not None:
            return self.outcome.refusal.text
        if self.outcome is None and self.refusal is not None:
            return self.refusal.text
        return None

    @property
    def still(self) -> list[dict]:
        """The guests left down, each with ``environment``."""
        rows = self.outcome.still if self.outcome is not None else []
        return [{"environment": self.env, **row} for row in rows]

    @property
    def down(self) -> int | None:
        """Guests down (ours) before the run, None when the facts are not known."""
        layout = self.planned.layout if self.planned is not None else None
        if layout is None:
            return None
        return len(layout.assignments) + len(layout.unplaced)

    @property
    def started(self) -> int:
        """Guests this run started here."""
        from ..start.outcome import Outcome

        report = self.outcome.report if self.outcome is not None else None
        if report is None or report.dry_run:
            return 0
        return sum(1 for r in report.results if r.outcome == Outcome.STARTED)

    @property
    def changed(self) -> bool:
        """Whether anything may have been started on this cluster."""
        report = self.outcome.report if self.outcome is not None else None
        return report is not None and not report.dry_run and bool(report.results)


@dataclass
class MultiOutcome:
    """How a run over several environments ended: one code, one message, every cluster."""

    code: ExitCode
    message: str | None
    runs: list[ClusterRun]
    preview: bool = False
    declined: bool = False

    @property
    def still(self) -> list[dict]:
        """Every guest left down, cluster by cluster, each naming its environment."""
        return [row for run in self.runs for row in run.still]


def check_request(request: RunRequest) -> None:
    """Refuse the options that belong to one environment (one line)."""
    for key, flag in ONE_ENV_ONLY.items():
        value = getattr(request, key)
        if value:
            raise ConfigError(
                f"{flag}: one environment at a time; --env {request.env} picks several "
                "(give one environment)"
            )


def combined_code(runs: list[ClusterRun], *, preview: bool = False) -> tuple[ExitCode, str | None]:
    """0 when every down guest of every cluster is (or would be) up; 3 when every cluster was
    refused before any change; 130 when a cluster was interrupted; otherwise 2."""
    codes = [run.outcome.code if run.outcome is not None else None for run in runs]
    if any(code is ExitCode.INTERRUPTED for code in codes):
        return ExitCode.INTERRUPTED, "interrupted (see STILL DOWN and fab facts)"
    refused = [run for run in runs if run.refused is not None and not run.changed]
    if runs and len(refused) == len(runs):
        return ExitCode.REFUSED, f"refused: every cluster ({len(runs)}) was refused (see SUMMARY)"
    if all(code is ExitCode.OK for code in codes):
        return ExitCode.OK, None
    still = sum(len(run.still) for run in runs)
    verb = "would stay" if preview else "stay"
    parts = [f"{still} guest(s) {verb} down"] if still else []
    if refused:
        parts.append(f"{len(refused)} of {len(runs)} cluster(s) refused")
    said = "; ".join(parts) or "incomplete"
    return ExitCode.INCOMPLETE, f"recovery incomplete: {said} (see SUMMARY and STILL DOWN)"


def _each(work: Callable[[ClusterRun], None], runs: Iterable[ClusterRun], cap: int) -> None:
    """``work(run)`` for every run, ``cap`` at a time; an unexpected error is that run's."""

    def guarded(run: ClusterRun) -> None:
        try:
            work(run)
        except XenfabError as exc:
            run.error = str(exc)

    runs = list(runs)
    if cap <= 1 or len(runs) <= 1:
        for run in runs:
            guarded(run)
        return
    with ThreadPoolExecutor(max_workers=min(cap, len(runs)), thread_name_prefix="env") as pool:
        list(pool.map(guarded, runs))


def _one_pass(
    c: Any, config: str | None, runs: list[ClusterRun], work: Callable[[ClusterRun], None]
) -> None:
    """``work`` (gather, then plan) for every cluster at once: one gather pass, whose hosts
    asked at once are capped for the whole run, as one cluster's gather caps its own."""
    cfg, _ = load(c, config, None)
    known = cfg.environments
    cap = max((known[r.env].ssh.parallel for r in runs if r.env in known), default=1)
    with shared_workers(cap):
        _each(work, runs, CLUSTERS_AT_ONCE)


def facts(c: Any, config: str | None, spec: str, loc: str | None) -> list[ClusterRun]:
    """fab facts over several environments: each gathered (side by side), with its refusal."""
    runs = [ClusterRun(name) for name in environments(c, config, spec)]

    def gather_one(run: ClusterRun) -> None:
        cfg, env = load(c, config, run.env, loc)
        run.snap = gather_facts(c, cfg, env, None)
        run.refusal = refusal_of(run.snap, lock=False)

    _one_pass(c, config, runs, gather_one)
    return runs


def preview(c: Any, request: RunRequest) -> MultiOutcome:
    """show-layout over several environments: each planned on its own; how it would end."""
    check_format(request.format)
    check_request(request)
    runs = [ClusterRun(name) for name in environments(c, request.config, request.env)]

    def plan_one(run: ClusterRun) -> None:
        run.outcome = preview_one(c, replace(request, env=run.env))
        run.planned = run.outcome.planned

    _one_pass(c, request.config, runs, plan_one)
    code, message = combined_code(runs, preview=True)
    return MultiOutcome(code, message, runs, preview=True)


def ask_terminal(guests: int, clusters: int) -> Answer:
    """Ask "Start N guest(s) on M cluster(s)?" on the terminal (stderr): y/yes is the one yes."""
    return ask_yes(f"Start {guests} guest(s) on {clusters} cluster(s)?")


def start(
    c: Any,
    request: RunRequest,
    *,
    shown: Callable[[list[ClusterRun]], None] | None = None,
    ask: Callable[[int, int], Answer] = ask_terminal,
) -> MultiOutcome:
    """start-all over several environments: plan each, one confirmation, start all; the end."""
    from . import NO_TERMINAL

    check_format(request.format)
    check_request(request)
    runs = [ClusterRun(name) for name in environments(c, request.config, request.env)]

    def plan_one(run: ClusterRun) -> None:
        run.planned = _plan_for_start(c, replace(request, env=run.env))

    _one_pass(c, request.config, runs, plan_one)
    if shown is not None:
        shown(runs)
    ready = [run for run in runs if _ready(run)]
    total = sum(len(run.planned.layout.assignments) for run in ready if run.planned)
    answer = Answer.YES
    if ready and not (request.yes or request.dry_run or request.step):
        answer = ask(total, len(ready))
    nobody = answer is Answer.NO_TERMINAL
    refusal = Refusal(RefusalKind.NO_TERMINAL, NO_TERMINAL) if nobody else None
    declined = answer is Answer.DECLINED
    reports: dict[str, Any] = {}
    refusals: dict[str, Refusal] = {}
    lost: set[str] = set()
    if answer is Answer.YES:
        _start_all(c, request, ready, reports, refusals, lost)
    for run in runs:
        if run.planned is None:
            continue
        if run.env in lost:
            run.outcome = _lost(run)
            continue
        why = run.planned.refusal or refusals.get(run.env) or (refusal if run in ready else None)
        ask_declined = declined and run in ready
        run.outcome = _ended(
            replace(request, env=run.env),
            run.planned,
            reports.get(run.env),
            why,
            declined=ask_declined,
        )
    code, message = combined_code(runs, preview=request.dry_run)
    if declined:
        code, message = ExitCode.INCOMPLETE, "nothing started (not confirmed)"
    return MultiOutcome(code, message, runs, preview=request.dry_run, declined=declined)


def _ready(run: ClusterRun) -> bool:
    planned = run.planned
    return planned is not None and planned.refusal is None and bool(planned.layout.assignments)


def _start_all(
    c: Any,
    request: RunRequest,
    ready: list[ClusterRun],
    reports: dict[str, Any],
    refusals: dict[str, Refusal],
    lost: set[str],
) -> None:
    """Every ready cluster's engine, in parallel (one at a time with --step).

    A Ctrl-C (SIGTERM, SIGHUP) reaches the main thread only: it is passed on to every engine
    still running, so each one does what a run of its own does. The first raises their shared
    signal count, which each loop reads between two steps (start nothing new, wait for the
    starts in flight); the second also raises KeyboardInterrupt in each engine's thread, to get
    out of whatever wait is under way (as a second signal does in a run of its own).
    """
    table = request.format == "table"
    stream = sys.stdout if (request.dry_run and table) else sys.stderr

    finished = threading.Semaphore(0)
    # Every threaded engine's signal count: a Ctrl-C here raises it, as a signal in a run of
    # its own would (with --step the engines run here, one at a time, with their own).
    shared = None if request.step else Interrupts()

    def start_one(run: ClusterRun) -> None:
        try:
            try:
                _start_one(run)
            except KeyboardInterrupt:  # passed on just as the engine returned
                if run.env not in reports:
                    lost.add(run.env)
        finally:
            finished.release()

    def _start_one(run: ClusterRun) -> None:
        assert run.planned is not None
        prompt = None
        if request.step:
            from ..start.prompter import terminal_prompt

            try:
                ask = terminal_prompt()
            except StartRefused as exc:
                refusals[run.env] = Refusal(RefusalKind.ENGINE, str(exc))
                return
            prompt = _prefixed_prompt(ask, run.env)
        t0 = time.monotonic()
        try:
            reports[run.env] = _engine(
                c,
                replace(request, env=run.env),
                run.planned,
                out=Prefixed(stream, run.env),
                prompt=prompt,
                interrupts=shared,
            )
        except StartRefused as exc:
            refusals[run.env] = Refusal(RefusalKind.ENGINE, str(exc))
        except KeyboardInterrupt:
            lost.add(run.env)  # out of the engine's own handling: what started is not known
        finally:
            run.seconds = time.monotonic() - t0

    if request.step:
        # One terminal asks one question at a time: the clusters one after another; after an
        # interrupt, the clusters not begun are not started.
        for run in ready:
            ended = list(reports.values())
            if lost or any(r.interrupted for r in ended):
                refusals[run.env] = Refusal(RefusalKind.ENGINE, INTERRUPTED_BEFORE)
            elif any(getattr(r, "quit", False) for r in ended):
                refusals[run.env] = Refusal(RefusalKind.ENGINE, QUIT_BEFORE)
            else:
                _start_one(run)
        return
    threads = [
        threading.Thread(target=start_one, args=(run,), name=f"start-{run.env}") for run in ready
    ]
    pressed = False  # a Ctrl-C while the threads were still being started
    for thread in threads:
        try:
            thread.start()
        except KeyboardInterrupt:
            pressed = True
    # Waited for on a semaphore, never by Thread.join: a join that a signal interrupts can
    # leave a live thread marked as ended, and the process would exit under a running engine.
    while True:
        try:
            if pressed:
                pressed = False
                raise KeyboardInterrupt
            if not any(thread.is_alive() for thread in threads):
                break
            finished.acquire(timeout=0.2)
        except KeyboardInterrupt:
            assert shared is not None
            # The first: a flag each loop reads between two steps (nothing new starts, the
            # starts in flight are waited for). The second: out of whatever wait is under way.
            shared.add()
            if shared.count > 1:
                for thread in threads:
                    _interrupt(thread)


INTERRUPTED_BEFORE = "interrupted before this cluster's starts began"
QUIT_BEFORE = "quit at an earlier cluster's prompt: this cluster's starts never began"


def _interrupt(thread: threading.Thread) -> None:
    """Raise KeyboardInterrupt in ``thread`` (an engine's), as a second Ctrl-C in its own run
    would: only an exception gets a thread out of a wait under way. Python has no other way
    to raise in another thread than CPython's PyThreadState_SetAsyncExc."""
    import ctypes

    if thread.is_alive() and thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
        )


def _prefixed_prompt(ask: Callable[[str], str], env: str) -> Callable[[str], str]:
    def prompt(text: str) -> str:
        return ask(f"[{env}] {text}")

    return prompt


class Prefixed:
    """A text stream that starts each line with ``[env]``: the engines of several clusters
    write their progress to one terminal, and every line must say whose it is."""

    _lock = threading.Lock()

    def __init__(self, stream: TextIO, env: str) -> None:
        """Write to ``stream``, each line prefixed with the environment's name."""
        self.stream = stream
        self.prefix = f"[{env}] "
        self._buf = ""

    def write(self, text: str) -> int:
        """Write whole lines, prefixed; keep a partial line until its end comes."""
        self._buf += text
        if "\n" in self._buf:
            *lines, self._buf = self._buf.split("\n")
            with self._lock:
                self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        """Flush the stream (a partial line stays until its end)."""
        self.stream.flush()

    def isatty(self) -> bool:
        """Never a terminal: no status line redrawn across clusters' lines."""
        return False


def _lost(run: ClusterRun) -> RunOutcome:
    """A cluster whose engine was stopped outside its own handling: what started is unknown."""
    from .. import show

    assert run.planned is not None
    why = "interrupted: may have started; see fab facts"
    still = show.still_down(run.planned.layout, refused=why)
    return RunOutcome(ExitCode.INTERRUPTED, why, still, run.planned)
