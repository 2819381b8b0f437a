"""The recovery tasks: facts, show-layout, start-host, start-all."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from invoke import task

from ..errors import ConfigError, ExitCode, StartRefused
from ..textsafe import printable
from . import _plans
from ._common import check_format, cli, exit_with, load, saved_snapshot, split_list

if TYPE_CHECKING:
    from ..cluster import ClusterBackend
    from ..config import Environment, XenfabConfig
    from ..plan import Layout, Policy
    from ..snapshot import Snapshot

COMMON_HELP = {
    "env": "environment from the config (default: its default_env)",
    "loc": "only the environment's hosts tagged with this location",
    "config": "config file (default: $XENFAB_CONFIG, then fabfile_config.yaml)",
    "format": "table (default) or json",
}
PLAN_HELP = {
    **COMMON_HELP,
    "from_": "plan from a saved snapshot (fab facts --format json) instead of asking the hosts",
    "strategy": "round-robin, most-free, balanced or pack (overrides policy.strategy)",
    "exclude": "hosts not to place guests on, comma-separated (maintenance)",
    "without": "what-if: plan as if these hosts had failed, comma-separated",
    "explain": "say why each guest got its host, and why unplaced guests fit nowhere",
    "dead": "hosts known dead for this run (powered off or fenced), comma-separated: their "
    "guests may be restarted elsewhere; the audit log records it with your name",
    "expect": "bring back what ran then: start only the down guests this saved snapshot "
    "(fab facts --format json) shows running, preferably where they ran",
    "verbose": "under each start in plain words, the exact remote command it sends",
}


def _facts(c, cfg, env, from_: str | None) -> Snapshot:
    if from_:
        return saved_snapshot(from_, env)
    from ..gather import gather
    from ..show.progress import gathering
    from ..start.lock import configured_path

    # The run lock is read in the same round trip, so a held one is said before any prompt.
    # Every gather is kept in the history: a host declared dead later is known by it.
    lock = configured_path(cfg, env)
    return gather(
        env,
        base_config=c.config,
        lock_path=lock,
        history=_history(cfg, env),
        progress=gathering,
    )


def _history(cfg: XenfabConfig, env: Environment) -> str:
    """The environment's history directory, beside its audit log (the lab's: in the lab)."""
    from ..history import history_dir

    return history_dir(env.audit_log or cfg.audit_log, env.name)


def _recall(cfg: XenfabConfig, env: Environment, dead: list[str]):
    """What the history remembers of the ``dead`` hosts (plan.recall.Recall), or None."""
    if not dead:
        return None
    from ..cluster import backend as get_backend
    from ..history import recall

    auto_dir = get_backend(env.backend, env.backend_options).options.get("auto_dir")
    return recall(_history(cfg, env), dead, env.name, auto_dir)


def refusal(snap: Snapshot, *, lock: bool = True) -> str | None:
    """Why a start on these facts would be refused before any change, or None.

    ``lock``: also refuse when the facts show another run holding the run lock (not for a
    saved snapshot, a dry run or --break-lock). The engine still takes the lock itself.
    """
    from ..cluster import backend as get_backend
    from ..start.lock import seen_refusal
    from ..start.reader import quorum_refusal

    where = f"read on {snap.master}" if snap.master else "no host could read the cluster"
    backend = get_backend(snap.backend)
    # A backend with no quorum (xl: no cluster manager) has no quorum to refuse on.
    why = quorum_refusal(snap.quorate, where, backend) if backend.quorum else None
    if why is None and lock:
        why = seen_refusal(snap.lock)
    return why


def _lock_note(show, snap: Snapshot, refused: str | None, **how) -> None:
    """Print the run-lock line before the plan, unless the refusal above already says it."""
    from ..start.lock import seen_refusal

    note = show.lock_text(snap.lock, **how)
    if note is not None and (refused is None or refused != seen_refusal(snap.lock)):
        print(note + "\n")


def run_policy(
    cfg: XenfabConfig,
    env: Environment,
    strategy: str | None = None,
    exclude: list[str] | None = None,
) -> Policy:
    """The environment's policy with this run's --strategy and --exclude (added to its own)."""
    from ..plan.policy import with_run_options

    return with_run_options(env.policy, strategy, exclude)


def check_dead(snap: Snapshot, dead: list[str], *, answered: bool = False) -> list[str]:
    """The --dead hosts, each one of the environment's hosts (a typo is an error, not a no-op).

    ``answered``: also refuse a host that answered this run's gather (it listed its domains):
    a host that answers is not dead, and declaring it so would start its running guests again
    elsewhere. Off for what-ifs (capacity) and saved snapshots, where --dead is a premise.
    """
    unknown = [d for d in dead if snap.host(d) is None]
    if unknown:
        raise ConfigError(
            f"--dead: no host {', '.join(unknown)} in environment {snap.environment} "
            f"(hosts: {', '.join(h.name for h in snap.hosts)})"
        )
    if answered:
        from ..start.reader import answered as answered_text

        for name in dead:
            host = snap.host(name)
            if host is not None and host.reachable:
                said = answered_text(name, snap.taken_at, (d.name for d in host.domains))
                raise ConfigError(
                    f"--dead {name}: {said}; declare dead only a host that is powered off or "
                    "fenced (nothing was started)"
                )
    return dead


def _layout(cfg, env, snap, strategy, exclude, without, dead=(), expect=None):
    from ..plan import plan
    from ..show.progress import SearchNotice

    policy = run_policy(cfg, env, strategy, exclude)
    if dead:
        policy = replace(policy, recall=_recall(cfg, env, list(dead)))
    if expect:
        from ..plan.expect import with_expectation

        policy = with_expectation(policy, expect, snap)
    layout = plan(snap, policy, without=without, dead=dead, on_search=SearchNotice())
    if layout.search_stopped == "time":
        # The safety stop, not the work budget, ended the search: said, as the JSON says it.
        sys.stderr.write(
            f"xenfab: planning: the search reached its safety stop ({policy.exact_search_s:g} s "
            "of wall time, policy.exact_search_s) before its work budget: this layout may differ "
            "on a less busy machine\n"
        )
    return layout, policy


@dataclass
class _Planned:
    """What show-layout and start-* work from: the facts, their refusal, the plan, the backend."""

    snap: Snapshot
    dead_hosts: list[str]
    refused: str | None
    layout: Layout
    policy: Policy
    backend: ClusterBackend


def _plan_run(c, cfg, environment, from_, strategy, exclude, without, dead, expect, *, lock):
    """Gather (or load) the facts, check --dead and the refusals, plan: one way for every task.

    ``lock``: refuse on a run lock the facts show held (not for --from, a dry run, --break-lock).
    """
    from ..cluster import backend as get_backend

    snap = _facts(c, cfg, environment, from_)
    # A saved snapshot's hosts answered then, not now: --dead is the operator's premise there.
    dead_hosts = check_dead(snap, split_list(dead), answered=not from_)
    refused = refusal(snap, lock=lock)
    layout, policy = _layout(
        cfg,
        environment,
        snap,
        strategy,
        split_list(exclude),
        split_list(without),
        dead_hosts,
        expect,
    )
    # _facts refuses a snapshot of another backend: the environment's backend is the snapshot's.
    backend = get_backend(environment.backend, environment.backend_options)
    return _Planned(snap, dead_hosts, refused, layout, policy, backend)


def _saved_run(c, cfg, environment, path: str, *, lock: bool, given: dict) -> _Planned:
    """--plan PATH: fresh facts, the saved layout, refused unless it still holds on them."""
    from ..cluster import backend as get_backend
    from ..plan import saved

    # The plan carries its own options: a run option beside it would be a plan nobody saw.
    clash = [
        f"--{name.rstrip('_').replace('_', '-')}"
        for name in ("from_", "strategy", "exclude", "without", "dead", "expect")
        if given.get(name)
    ]
    if clash:
        raise ConfigError(
            f"--plan runs the saved plan as previewed: {', '.join(clash)} belong(s) to "
            "fab show-layout --save"
        )
    doc = _plans.load_plan(path, environment)
    snap = _facts(c, cfg, environment, None)
    dead_hosts = check_dead(snap, list(doc["dead"]))
    refused = refusal(snap, lock=lock)
    policy = _plans.plan_policy(environment.policy, doc)
    if refused is None:
        _plans.check_plan(doc, path, snap, policy)
    backend = get_backend(environment.backend, environment.backend_options)
    return _Planned(snap, dead_hosts, refused, saved.layout_of(doc), policy, backend)


@dataclass
class Outcome:
    """How a run ended: its exit code, the last line, and the guests still down."""

    code: ExitCode
    message: str | None
    still: list[dict] = field(default_factory=list)

    def exit(self) -> None:
        """End the task with this outcome's code (returns when it is 0)."""
        exit_with(self.code, self.message)


def _verdict(still: list[dict], refused: str | None, preview: bool) -> Outcome:
    if refused is not None:
        return Outcome(ExitCode.REFUSED, f"refused: {printable(refused)}", still)
    if still:
        verb = "would stay" if preview else "stay"
        return Outcome(
            ExitCode.INCOMPLETE,
            f"recovery incomplete: {len(still)} guest(s) {verb} down (see STILL DOWN)",
            still,
        )
    return Outcome(ExitCode.OK, None, still)


@task(help=COMMON_HELP, auto_shortflags=False)
@cli
def facts(c, env=None, config=None, format="table", loc=None):
    """Gather hosts' RAM and CPUs, guests and cluster state; print them (JSON = snapshot)."""
    from .. import show

    check_format(format)
    cfg, environment = load(c, config, env, loc)
    snap = _facts(c, cfg, environment, None)
    # A held lock is not the cluster's problem: facts says who holds it and keeps its exit code
    # (a run in progress is the normal case for a lock; scripts gate on facts while it runs).
    refused = refusal(snap, lock=False)
    problems = facts_problems(snap)
    if format == "json":
        print(snap.to_json())
    else:
        if refused:
            print(printable(f"REFUSED: starts would be refused: {refused}") + "\n")
        _duplicate_note(show, snap.duplicates, snap)
        _lock_note(show, snap, refused)
        print(show.facts_text(snap))
    if refused and not (snap.quorate is None and snap.errors):
        exit_with(ExitCode.REFUSED, f"refused: {printable(refused)}")
    if problems:
        exit_with(
            ExitCode.INCOMPLETE,
            f"facts found {len(problems)} problem(s); first: {printable(problems[0])}",
        )


def facts_problems(snap: Snapshot) -> list[str]:
    """Every problem the facts list, most urgent first: gathering errors (a host unreachable),
    guests running twice, names xenfab will never start, then unreadable guest configs.
    """
    from .. import show
    from ..cluster.base import GUEST_NAME
    from ..duplicates import summary

    problems = list(snap.errors)
    problems += [summary([d]) for d in snap.duplicates]
    problems += [show.unstartable_name(g.name) for g in snap.guests if not GUEST_NAME.match(g.name)]
    return problems + list(snap.warnings)


def _duplicate_note(show, dups, snap: Snapshot | None) -> None:
    """Print the DUPLICATE lines (each with what to do), before anything else a task shows."""
    text = show.duplicates_text(dups, snap)
    if text is not None:
        print(text + "\n")


def with_duplicates(outcome: Outcome, dups: list) -> Outcome:
    """``outcome``, or exit 2 when a guest runs twice (a refusal or Ctrl-C keeps its code)."""
    from ..duplicates import summary

    if not dups or outcome.code not in (ExitCode.OK, ExitCode.INCOMPLETE):
        return outcome
    said = f"{summary(dups)} (see DUPLICATE)"
    message = f"{outcome.message}; {said}" if outcome.message else said
    return Outcome(ExitCode.INCOMPLETE, message, outcome.still)


SHOW_HELP = {
    **PLAN_HELP,
    "format": "table (default), json, or script (a commented sh script to run by hand)",
    "save": "write the plan, with the facts it was made from, to this file: "
    "fab start-all --plan FILE runs exactly it, or refuses (docs/plans.md)",
}


@task(help=SHOW_HELP, name="show-layout", auto_shortflags=False)
@cli
def show_layout(
    c,
    env=None,
    config=None,
    format="table",
    from_=None,
    strategy=None,
    exclude=None,
    without=None,
    explain=False,
    loc=None,
    dead=None,
    expect=None,
    verbose=False,
    save=None,
):
    """Plan where each down guest goes and show the layout and the commands, changing nothing."""
    opts = dict(locals())
    del opts["c"]
    preview(c, **opts).exit()


def preview(
    c,
    *,
    env,
    config,
    format,
    from_,
    strategy,
    exclude,
    without,
    explain,
    loc,
    dead,
    expect=None,
    verbose=False,
    save=None,
) -> Outcome:
    """show-layout's work: print the plan and the STILL DOWN block; return how it ended."""
    from .. import show

    if format != "script":  # show-layout alone prints the plan as a script to run by hand
        check_format(format)
    cfg, environment = load(c, config, env, loc)
    # A saved snapshot's lock is as it was then: said, never refused on.
    run = _plan_run(
        c, cfg, environment, from_, strategy, exclude, without, dead, expect, lock=not from_
    )
    snap, refused, layout, backend = run.snap, run.refused, run.layout, run.backend
    if save:
        _plans.save_plan(save, snap, run.policy, layout, run.dead_hosts)
        sys.stderr.write(
            printable(f"plan {layout.plan_id} saved to {save}: fab start-all --plan {save}") + "\n"
        )
    if not from_:
        _plans.record_preview(cfg, environment, layout)
    still = show.still_down(layout, refused=refused)
    if format == "script":
        return _script(show, run, still, refused)
    if format == "json":
        doc = show.layout_json(layout, snap, backend, refused=refused, still=still)
        print(show.to_json(doc))
    else:
        if refused:
            print(show.refusal_text(refused) + "\n")
        _duplicate_note(show, snap.duplicates, snap)
        _lock_note(show, snap, refused, saved_at=snap.taken_at if from_ else None)
        print(show.layout_text(layout.to_dict(), snap, backend, explain=explain, verbose=verbose))
        print(f"\nPlan {layout.plan_id}")
        print("\n" + show.still_down_text(still, preview=True))
    return with_duplicates(_verdict(still, refused, preview=True), snap.duplicates)


def _script(show, run: _Planned, still: list[dict], refused: str | None) -> Outcome:
    """``--format script``: the plan as a shell script on stdout, unless a start is refused."""
    from ..show.script import script_text

    if refused is not None:
        # A script is a start by other hands: refused for the same reasons, before any line.
        return _verdict(still, refused, preview=True)
    print(script_text(run.layout, run.snap, run.backend), end="")
    return _verdict(still, None, preview=True)


START_HELP = {
    **PLAN_HELP,
    "yes": "start without asking for confirmation",
    "dry_run": "print the commands that would run, start nothing",
    "parallel": "most starts in flight at once, cluster-wide (default: start.max_starts_in_flight)",
    "step": "confirm each start on the terminal (Enter = start, s = skip, q = quit)",
    "break_lock": "break another run's stale start lock (it is reported with owner and age)",
    "plan": "run exactly this saved plan (fab show-layout --save FILE) on fresh facts, or refuse "
    "when something it depends on changed (docs/plans.md)",
}


def _target_hosts(raw: str) -> list[str]:
    hosts = split_list(raw)
    if not hosts:
        raise ConfigError(
            f"start-host: no host given ({raw!r}); name one or more, comma-separated "
            "(start-all starts every host's guests)"
        )
    return hosts


def _check_targets(hosts: list[str], snap: Snapshot, layout, env_name: str) -> None:
    missing = [h for h in hosts if snap.host(h) is None]
    if missing:
        raise ConfigError(
            f"start-host: no host {', '.join(missing)} in environment {env_name} "
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


def _start(
    c,
    hosts: list[str] | None,
    *,
    env,
    config,
    loc,
    format,
    from_,
    strategy,
    exclude,
    without,
    explain,
    yes,
    dry_run,
    parallel,
    step,
    break_lock,
    dead,
    expect=None,
    verbose=False,
    plan_shown=False,
    plan=None,
) -> Outcome:
    from .. import show
    from ..config import StartPolicy
    from ..schema import field_type, option
    from ..start import StartOptions, start_guests
    from ..start.outcome import Outcome as GuestOutcome

    check_format(format)
    if split_list(without):
        raise ConfigError(
            f"--without {without}: a what-if, for fab show-layout and fab capacity only; a start "
            "acts on the hosts as they are (--dead HOST for a host known powered off or fenced)"
        )
    parallel = option("--parallel", parallel, field_type(StartPolicy, "max_starts_in_flight"))
    cfg, environment = load(c, config, env, loc)
    if environment.audit_log:
        cfg = replace(cfg, audit_log=environment.audit_log)
    if from_ and not dry_run:
        raise ConfigError(
            "--from plans from old facts: only with --dry-run; starts use fresh facts"
        )
    # Refusals first: a lock the facts show held refuses before the prompt (a dry run and
    # --break-lock only say it). The engine still takes the lock: mkdir settles a race.
    lock = not (break_lock or dry_run or from_)
    if plan:
        given = dict(
            from_=from_,
            strategy=strategy,
            exclude=exclude,
            without=without,
            dead=dead,
            expect=expect,
        )
        run = _saved_run(c, cfg, environment, plan, lock=lock, given=given)
    else:
        run = _plan_run(
            c, cfg, environment, from_, strategy, exclude, without, dead, expect, lock=lock
        )
    snap, dead_hosts, refused = run.snap, run.dead_hosts, run.refused
    layout, policy, backend = run.layout, run.policy, run.backend
    if hosts is not None:
        _check_targets(hosts, snap, layout, environment.name)
    only = set(hosts) if hosts else None
    table = format == "table"
    if table:
        if refused:
            print(show.refusal_text(refused) + "\n")
        _duplicate_note(show, snap.duplicates, snap)
        saved_at = snap.taken_at if from_ else None
        _lock_note(show, snap, refused, saved_at=saved_at, break_lock=break_lock)
        if not plan_shown:  # fab demo has just shown this plan: said once
            print(
                show.layout_text(
                    layout.to_dict(),
                    snap,
                    backend,
                    explain=explain,
                    only_hosts=only,
                    verbose=verbose,
                )
            )
        print(f"\nPlan {layout.plan_id}" + (f" (saved: {plan})" if plan else ""))
        sys.stdout.flush()
    if not plan:
        note = _plans.preview_note(cfg, environment, layout)
        if note:
            sys.stderr.write(note + "\n")
    todo = [a for a in layout.assignments if not only or a.host in only]
    report = None
    declined = False
    try:
        if refused is None and todo:
            _confirm(len(todo), yes or dry_run or step)
    except StartRefused as exc:
        refused = str(exc)
    except _Declined:
        declined = True
    try:
        if refused is None and todo and not declined:
            options = StartOptions(
                base_config=c.config,
                only_hosts=only,
                parallel=parallel,
                dry_run=dry_run,
                step=step,
                break_lock=break_lock,
                dead_hosts=dead_hosts,
                verbose=verbose,
                plan_id=layout.plan_id,
                # Progress goes to stderr; a dry run's listing is the result, in a table stdout.
                out=sys.stdout if (dry_run and table) else sys.stderr,
            )
            report = start_guests(cfg, environment, snap, layout, policy, options)
    except StartRefused as exc:
        refused = str(exc)
    except KeyboardInterrupt:
        # Out of the engine's own handling (a second Ctrl-C): what started is not known here.
        still = show.still_down(
            layout, refused="interrupted: may have started; see fab facts", only_hosts=only
        )
        _close(table, show, layout, snap, backend, None, still, None, dry_run)
        return Outcome(ExitCode.INTERRUPTED, "interrupted (see fab facts)", still)
    why = refused or ("not confirmed at the prompt" if declined else None)
    still = show.still_down(layout, report, refused=why, only_hosts=only)
    if table and only:
        others = [a.guest for a in layout.assignments if a.host not in only]
        if others:
            print(
                f"\n{len(others)} other guest(s) planned on other hosts, not in this run "
                "(fab start-all starts them)."
            )
    dups = _close(table, show, layout, snap, backend, report, still, refused, dry_run)
    if report is not None and report.interrupted:
        done = sum(1 for r in report.results if r.outcome == GuestOutcome.STARTED)
        return Outcome(
            ExitCode.INTERRUPTED,
            f"interrupted: {done} started, {len(still)} still down (see STILL DOWN)",
            still,
        )
    if declined:
        outcome = Outcome(ExitCode.INCOMPLETE, "nothing started (not confirmed)", still)
        return with_duplicates(outcome, dups)
    return with_duplicates(_verdict(still, refused, preview=dry_run), dups)


class _Declined(Exception):
    pass


def _confirm(count: int, given: bool) -> None:
    if given:
        return
    if not sys.stdin.isatty():
        raise StartRefused("no terminal to confirm on; give --yes to start, or --dry-run")
    # The question goes to stderr: stdout carries only the result (JSON stays one document).
    sys.stderr.write(f"Start {count} guest(s)? [y/N] ")
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        # Ctrl-D (or a closed input) is no answer, and no answer is not a yes.
        sys.stderr.write("\n")
        raise _Declined from None
    if answer.strip().lower() not in ("y", "yes"):
        raise _Declined


def _close(table, show, layout, snap, backend, report, still, refused, dry_run) -> list:
    """The end of every start run: the result table (or the one JSON document), the DUPLICATE
    lines, then STILL DOWN. Returns the duplicates: the gathering's and the run's last round's.
    """
    from ..duplicates import merge

    dups = merge(snap.duplicates, (report.duplicates or []) if report is not None else [])
    if not table:
        doc = report.to_dict() if report is not None else {"dry_run": dry_run, "results": []}
        doc["layout"] = show.layout_json(layout, snap, backend, refused=refused, still=still)
        doc["refused"] = refused
        doc["still_down"] = still
        doc["duplicates"] = show.duplicates_json(dups)
        print(show.to_json(doc))
        return dups
    if report is not None and not report.dry_run:
        print("\n" + show.results_text(report))
    if dups:
        print("\n" + (show.duplicates_text(dups, snap) or ""))
    print("\n" + show.still_down_text(still, preview=dry_run))
    return dups


@task(
    help={"host": "the host whose planned guests to start", **START_HELP},
    name="start-host",
    auto_shortflags=False,
)
@cli
def start_host(
    c,
    host,
    env=None,
    config=None,
    loc=None,
    format="table",
    from_=None,
    strategy=None,
    exclude=None,
    without=None,
    explain=False,
    yes=False,
    dry_run=False,
    parallel=None,
    step=False,
    break_lock=False,
    dead=None,
    expect=None,
    verbose=False,
    plan=None,
):
    """Start the guests the layout puts on HOST (comma-separated for several)."""
    opts = dict(locals())
    del opts["c"], opts["host"]
    _start(c, _target_hosts(host), **opts).exit()


@task(help=START_HELP, name="start-all", auto_shortflags=False)
@cli
def start_all(
    c,
    env=None,
    config=None,
    loc=None,
    format="table",
    from_=None,
    strategy=None,
    exclude=None,
    without=None,
    explain=False,
    yes=False,
    dry_run=False,
    parallel=None,
    step=False,
    break_lock=False,
    dead=None,
    expect=None,
    verbose=False,
    plan=None,
):
    """Start every down guest where the layout puts it, in parallel within safe caps."""
    opts = dict(locals())
    del opts["c"]
    _start(c, None, **opts).exit()
