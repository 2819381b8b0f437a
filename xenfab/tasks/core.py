"""The recovery tasks: facts, show-layout, start-host, start-all."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from invoke import task
from invoke.exceptions import Exit

from ..errors import StartRefused
from ._common import check_format, cli, load, split_list

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
    from ..plan import Policy
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
}


def _facts(c, cfg, env, from_: str | None) -> Snapshot:
    if from_:
        from ..snapshot import Snapshot

        return Snapshot.load(from_)
    from ..gather import gather

    return gather(env, base_config=c.config)


def run_policy(
    cfg: XenfabConfig,
    env: Environment,
    strategy: str | None = None,
    exclude: list[str] | None = None,
) -> Policy:
    """The environment's policy with this run's --strategy and --exclude (added to its own)."""
    from ..plan.policy import with_run_options

    return with_run_options(env.policy, strategy, exclude)


def _layout(cfg, env, snap, strategy, exclude, without):
    from ..plan import plan

    policy = run_policy(cfg, env, strategy, exclude)
    return plan(snap, policy, without=without), policy


@task(help=COMMON_HELP, auto_shortflags=False)
@cli
def facts(c, env=None, config=None, format="table", loc=None):
    """Gather hosts' RAM and CPUs, guests and cluster state; print them (JSON = snapshot)."""
    from .. import show
    from ..gather import gather

    check_format(format)
    cfg, environment = load(c, config, env, loc)
    snap = gather(environment, base_config=c.config)
    print(snap.to_json() if format == "json" else show.facts_text(snap))
    if snap.errors:
        raise Exit(
            f"xenfab: {len(snap.errors)} problem(s) while gathering; first: {snap.errors[0]}", 2
        )


@task(help=PLAN_HELP, name="show-layout", auto_shortflags=False)
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
):
    """Plan where each down guest goes and show the layout and the commands, changing nothing."""
    from .. import show

    check_format(format)
    cfg, environment = load(c, config, env, loc)
    snap = _facts(c, cfg, environment, from_)
    layout, _ = _layout(cfg, environment, snap, strategy, split_list(exclude), split_list(without))
    backend = _backend(snap, environment)
    if format == "json":
        data = layout.to_dict()
        guests = {g.name: g for g in snap.guests}
        data["commands"] = [show.command_text(backend, guests, a) for a in data["assignments"]]
        print(show.to_json(data))
    else:
        print(show.layout_text(layout.to_dict(), snap, backend, explain=explain))


def _backend(snap: Any, environment: Any) -> Any:
    """The backend that gathered ``snap``, with the environment's options when it is its own."""
    from ..cluster import backend as get_backend

    name = snap.backend or environment.backend
    return get_backend(name, environment.backend_options if name == environment.backend else None)


START_HELP = {
    **PLAN_HELP,
    "yes": "start without asking for confirmation",
    "dry_run": "print the commands that would run, start nothing",
    "parallel": "most starts in flight at once, cluster-wide (default: start.max_starts_in_flight)",
    "step": "confirm each start on the terminal (Enter = start, s = skip, q = quit)",
    "break_lock": "break another run's stale start lock (it is reported with owner and age)",
}


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
):
    from .. import show
    from ..config import StartPolicy
    from ..schema import field_type, option
    from ..start import start_guests

    check_format(format)
    parallel = option("--parallel", parallel, field_type(StartPolicy, "max_starts_in_flight"))
    cfg, environment = load(c, config, env, loc)
    if from_ and not dry_run:
        raise StartRefused(
            "--from plans from old facts: only with --dry-run; starts use fresh facts"
        )
    snap = _facts(c, cfg, environment, from_)
    layout, policy = _layout(
        cfg, environment, snap, strategy, split_list(exclude), split_list(without)
    )
    if hosts is not None:
        missing = [h for h in hosts if snap.host(h) is None]
        if missing:
            raise StartRefused(f"no host {', '.join(missing)} in environment {environment.name}")
    backend = _backend(snap, environment)
    only = set(hosts) if hosts else None
    if format == "table":
        print(show.layout_text(layout.to_dict(), snap, backend, explain=explain, only_hosts=only))
    todo = [a for a in layout.assignments if not only or a.host in only]
    if not todo:
        print("Nothing to start.")
        if layout.unplaced:
            raise Exit(f"xenfab: {len(layout.unplaced)} guest(s) fit nowhere; see UNPLACED", 1)
        return
    if not (yes or dry_run or step):
        if not sys.stdin.isatty():
            raise StartRefused("no terminal to confirm on; give --yes to start, or --dry-run")
        answer = input(f"Start {len(todo)} guest(s)? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise Exit("xenfab: nothing started", 1)
    report = start_guests(
        cfg,
        environment,
        snap,
        layout,
        policy,
        base_config=c.config,
        only_hosts=only,
        parallel=parallel,
        dry_run=dry_run,
        step=step,
        break_lock=break_lock,
    )
    if dry_run:
        return
    print(show.to_json(report.to_dict()) if format == "json" else report.table())
    if not report.ok or layout.unplaced:
        failed = sum(1 for r in report.results if r.outcome == "failed")
        raise Exit(f"xenfab: {failed} start(s) failed, {len(layout.unplaced)} guest(s) unplaced", 1)


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
):
    """Start the guests the layout puts on HOST (comma-separated for several)."""
    opts = dict(locals())
    del opts["c"], opts["host"]
    _start(c, split_list(host), **opts)


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
):
    """Start every down guest where the layout puts it, in parallel within safe caps."""
    opts = dict(locals())
    del opts["c"]
    _start(c, None, **opts)
