"""A run is a value: the request the command line builds, the outcome ``preview``/``start`` return.

The tasks (xenfab/tasks) parse the command line into a ``RunRequest``, call ``preview`` or
``start``, render the ``RunOutcome`` and exit with its code. Every decision is taken here, on
typed values (``Refusal.kind``, ``Answer``), never on the text of a message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ExitCode, StartRefused
from ..textsafe import printable
from ..values import labels
from . import plans
from .facts import Planned, Refusal, RefusalKind, check_format, load, plan_run, saved_run

if TYPE_CHECKING:
    from ..cluster import ClusterBackend
    from ..plan import Layout
    from ..snapshot import Snapshot
    from ..start.report import StartReport

__all__ = [
    "Answer",
    "Planned",
    "Refusal",
    "RefusalKind",
    "RunOutcome",
    "RunRequest",
    "ask_terminal",
    "preview",
    "start",
    "with_duplicates",
]

NO_TERMINAL = "no terminal to confirm on; give --yes to start, or --dry-run"


@dataclass(frozen=True)
class RunRequest:
    """One run as the command line asked for it (the shared options of facts/show/start)."""

    env: str | None = None
    config: str | None = None
    loc: str | None = None
    format: str = "table"
    from_: str | None = None
    strategy: str | None = None
    exclude: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    explain: bool = False
    dead: tuple[str, ...] = ()
    expect: str | None = None
    verbose: bool = False
    yes: bool = False
    dry_run: bool = False
    parallel: int | None = None
    step: bool = False
    break_lock: bool = False
    # start-host's targets (None: start-all, every host).
    hosts: tuple[str, ...] | None = None
    # fab demo has just shown this plan, and says STILL DOWN last itself: each is said once.
    plan_shown: bool = False
    # show-layout --save FILE: write the plan with its facts; start-* --plan FILE: run it.
    save: str | None = None
    plan: str | None = None

    @property
    def only(self) -> set[str] | None:
        """The hosts this run starts on (start-host), None for all."""
        return set(self.hosts) if self.hosts else None


class Answer(Enum):
    """The answer to "Start N guest(s)?"."""

    YES = "yes"
    DECLINED = "declined"  # no, Ctrl-D, or anything but y/yes
    NO_TERMINAL = "no-terminal"  # nobody to ask


@dataclass
class RunOutcome:
    """How a run ended, as one value: what was planned, refused, started and left down."""

    code: ExitCode
    message: str | None = None
    still: list[dict] = field(default_factory=list)
    planned: Planned | None = None
    refusal: Refusal | None = None
    duplicates: list = field(default_factory=list)
    report: StartReport | None = None
    declined: bool = False

    @property
    def layout(self) -> Layout | None:
        """The plan the run worked from."""
        return self.planned.layout if self.planned is not None else None

    @property
    def snap(self) -> Snapshot | None:
        """The facts the run planned from."""
        return self.planned.snap if self.planned is not None else None

    @property
    def backend(self) -> ClusterBackend | None:
        """The environment's cluster backend."""
        return self.planned.backend if self.planned is not None else None

    @property
    def refused(self) -> str | None:
        """The refusal's text, or None."""
        return self.refusal.text if self.refusal is not None else None


def verdict(
    still: list[dict], refusal: Refusal | None, preview: bool
) -> tuple[ExitCode, str | None]:
    """The exit code and last line for a run that left ``still`` down, or was refused."""
    if refusal is not None:
        return ExitCode.REFUSED, f"refused: {printable(refusal.text)}"
    if still:
        verb = "would stay" if preview else "stay"
        said = f"recovery incomplete: {len(still)} guest(s) {verb} down (see STILL DOWN)"
        return ExitCode.INCOMPLETE, said
    return ExitCode.OK, None


def with_duplicates(outcome: RunOutcome, dups: list) -> RunOutcome:
    """``outcome``, or exit 2 when a guest runs twice (a refusal or Ctrl-C keeps its code)."""
    from ..duplicates import summary

    if not dups or outcome.code not in (ExitCode.OK, ExitCode.INCOMPLETE):
        return outcome
    said = f"{summary(dups)} (see DUPLICATE)"
    message = f"{outcome.message}; {said}" if outcome.message else said
    return replace(outcome, code=ExitCode.INCOMPLETE, message=message)


def preview(c: Any, request: RunRequest) -> RunOutcome:
    """show-layout's work: gather (or load) and plan, changing nothing; how it would end."""
    from .. import show

    if request.format != "script":  # show-layout alone prints the plan as a script
        check_format(request.format)
    cfg, env = load(c, request.config, request.env, request.loc)
    # A saved snapshot's lock is as it was then: said, never refused on.
    planned = plan_run(c, cfg, env, request, lock=not request.from_)
    layout = planned.layout
    if request.save:
        plans.save_plan(request.save, planned.snap, planned.policy, layout, planned.dead_hosts)
        sys.stderr.write(
            printable(
                f"plan {layout.plan_id} saved to {request.save}: "
                f"fab start-all --plan {request.save}"
            )
            + "\n"
        )
    if not request.from_:
        plans.record_preview(cfg, env, layout)
    still = show.still_down(planned.layout, refused=_text(planned.refusal))
    code, message = verdict(still, planned.refusal, preview=True)
    outcome = RunOutcome(code, message, still, planned, planned.refusal, planned.snap.duplicates)
    if request.format == "script":  # a script has no DUPLICATE lines to point at
        return outcome
    return with_duplicates(outcome, planned.snap.duplicates)


def ask_terminal(count: int) -> Answer:
    """Ask "Start N guest(s)?" on the terminal (stderr): y/yes is the one yes."""
    return ask_yes(f"Start {count} guest(s)?")


def ask_yes(question: str) -> Answer:
    """Ask ``question`` on the terminal (stderr) with ``[y/N]``: y/yes is the one yes."""
    if not sys.stdin.isatty():
        return Answer.NO_TERMINAL
    # The question goes to stderr: stdout carries only the result (JSON stays one document).
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        # Ctrl-D (or a closed input) is no answer, and no answer is not a yes.
        sys.stderr.write("\n")
        return Answer.DECLINED
    return Answer.YES if answer.strip().lower() in ("y", "yes") else Answer.DECLINED


def start(
    c: Any,
    request: RunRequest,
    *,
    shown: Callable[[Planned], None] | None = None,
    ask: Callable[[int], Answer] = ask_terminal,
) -> RunOutcome:
    """start-host/start-all's work: plan, confirm, start; how it ended.

    ``shown`` is called with the plan before the confirmation (the task prints it there);
    ``ask`` asks for the confirmation when neither --yes, --dry-run nor --step gave it.
    """
    planned = _plan_for_start(c, request)
    if shown is not None:
        shown(planned)
    if not request.plan:
        said = labels(planned.snap.guests, planned.snap.hosts)
        note = plans.preview_note(planned.cfg, planned.env, planned.layout, said)
        if note:
            sys.stderr.write(note + "\n")
    only = request.only
    todo = [a for a in planned.layout.assignments if not only or a.host in only]
    refusal, answer = planned.refusal, Answer.YES
    if refusal is None and todo and not (request.yes or request.dry_run or request.step):
        answer = ask(len(todo))
        if answer is Answer.NO_TERMINAL:
            refusal = Refusal(RefusalKind.NO_TERMINAL, NO_TERMINAL)
    report = None
    if refusal is None and todo and answer is Answer.YES:
        try:
            report = _engine(c, request, planned)
        except StartRefused as exc:
            refusal = Refusal(RefusalKind.ENGINE, str(exc))
        except KeyboardInterrupt:
            return _interrupted(request, planned)
    return _ended(request, planned, report, refusal, declined=answer is Answer.DECLINED)


def _plan_for_start(c: Any, request: RunRequest) -> Planned:
    """Check the request, load, plan: refusals first (a lock the facts show held refuses
    before the prompt; a dry run and --break-lock only say it)."""
    check_format(request.format)
    if request.without:
        raise ConfigError(
            f"--without {','.join(request.without)}: a what-if, for fab show-layout and fab "
            "capacity only; a start acts on the hosts as they are (--dead HOST for a host "
            "known powered off or fenced)"
        )
    cfg, env = load(c, request.config, request.env, request.loc)
    if request.from_ and not request.dry_run:
        raise ConfigError(
            "--from plans from old facts: only with --dry-run; starts use fresh facts"
        )
    # The engine still takes the lock: mkdir settles a race.
    lock = not (request.break_lock or request.dry_run or request.from_)
    if request.plan:
        planned = saved_run(c, cfg, env, request, lock=lock)
    else:
        planned = plan_run(c, cfg, env, request, lock=lock)
    if request.hosts is not None:
        check_targets(list(request.hosts), planned)
    return planned


def _engine(
    c: Any,
    request: RunRequest,
    planned: Planned,
    *,
    out: Any = None,
    prompt: Callable[[str], str] | None = None,
    interrupts: Any = None,
) -> StartReport:
    """Start the plan; ``out`` and ``prompt`` replace the progress stream and the step prompt
    (run.multi: each cluster's lines name it), ``interrupts`` the engine's signal count (one
    shared by every cluster's engine)."""
    from ..start import StartOptions, start_guests

    table = request.format == "table"
    if out is None:
        # Progress goes to stderr; a dry run's listing is the result, in a table stdout.
        out = sys.stdout if (request.dry_run and table) else sys.stderr
    options = StartOptions(
        base_config=c.config,
        only_hosts=request.only,
        parallel=request.parallel,
        dry_run=request.dry_run,
        step=request.step,
        break_lock=request.break_lock,
        dead_hosts=planned.dead_hosts,
        verbose=request.verbose,
        plan_id=planned.layout.plan_id,
        out=out,
        prompt=prompt,
        interrupts=interrupts,
    )
    # The engine writes to the config's audit_log: the one this environment resolves to.
    cfg = replace(planned.cfg, audit_log=planned.cfg.audit_log_of(planned.env))
    return start_guests(cfg, planned.env, planned.snap, planned.layout, planned.policy, options)


def _interrupted(request: RunRequest, planned: Planned) -> RunOutcome:
    """Out of the engine's own handling (a second Ctrl-C): what started is not known here."""
    from .. import show

    why = "interrupted: may have started; see fab facts"
    still = show.still_down(planned.layout, refused=why, only_hosts=request.only)
    return RunOutcome(
        ExitCode.INTERRUPTED,
        "interrupted (see fab facts)",
        still,
        planned,
        duplicates=list(planned.snap.duplicates),
    )


def _ended(
    request: RunRequest,
    planned: Planned,
    report: StartReport | None,
    refusal: Refusal | None,
    *,
    declined: bool,
) -> RunOutcome:
    from .. import show
    from ..duplicates import merge
    from ..start.outcome import Outcome

    why = _text(refusal) or ("not confirmed at the prompt" if declined else None)
    still = show.still_down(planned.layout, report, refused=why, only_hosts=request.only)
    dups = merge(planned.snap.duplicates, (report.duplicates or []) if report else [])
    ended = RunOutcome(ExitCode.OK, None, still, planned, refusal, dups, report, declined)
    if report is not None and report.interrupted:
        done = sum(1 for r in report.results if r.outcome == Outcome.STARTED)
        ended.code = ExitCode.INTERRUPTED
        ended.message = f"interrupted: {done} started, {len(still)} still down (see STILL DOWN)"
        return ended
    if declined:
        ended.code, ended.message = ExitCode.INCOMPLETE, "nothing started (not confirmed)"
    else:
        ended.code, ended.message = verdict(still, refusal, preview=request.dry_run)
    return with_duplicates(ended, dups)


def check_targets(hosts: list[str], planned: Planned) -> None:
    """start-host's hosts: each one of the environment's, up, with guests planned on it."""
    snap, layout = planned.snap, planned.layout
    missing = [h for h in hosts if snap.host(h) is None]
    if missing:
        raise ConfigError(
            f"start-host: no host {', '.join(missing)} in environment {planned.env.name} "
            f"(hosts: {', '.join(h.name for h in snap.hosts)})"
        )
    status = {h.name: h.status for h in layout.hosts}
    for name in hosts:
        why = status.get(name) or "ok"
        if why == "ok":
            continue
        host = snap.host(name)
        if host is not None and not host.reachable:
            detail = f"unreachable ({host.error})" if host.error else "unreachable"
            raise ConfigError(
                f"start-host: {name} is {detail}: no guest can start there. Its guests are "
                f"restarted elsewhere only once it is known dead (powered off or fenced): "
                f"fab start-all --dead {name}"
            )
        raise ConfigError(f"start-host: {name} is {why}: no guest is planned there")


def _text(refusal: Refusal | None) -> str | None:
    return refusal.text if refusal is not None else None
