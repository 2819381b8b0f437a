"""The recovery tasks: facts, show-layout, start-host, start-all.

Each parses its options into a RunRequest, calls the library (xenfab.run), renders the
outcome (tasks/render.py) and exits with its code.
"""

from __future__ import annotations

from typing import Any

from invoke import task

from ..errors import ConfigError, ExitCode
from ..run import RunOutcome, RunRequest, with_duplicates
from ..run.facts import check_dead, refusal, run_policy, split_list
from ..textsafe import printable
from . import render
from ._common import check_format, cli, exit_with, load
from ._options import COMMON, PLAN, SHOW, START, Option, helps, run_task

__all__ = [
    "RunOutcome",
    "check_dead",
    "facts_problems",
    "refusal",
    "request_of",
    "run_policy",
    "with_duplicates",
]

COMMON_HELP = helps(COMMON)
PLAN_HELP = helps(PLAN)
START_HELP = helps(START)


def request_of(options: dict[str, Any], hosts: str | None = None) -> RunRequest:
    """The RunRequest of a task's command-line options (lists split, numbers checked)."""
    from ..config import StartPolicy
    from ..schema import field_type, option

    given = dict(options)
    for key in ("exclude", "without", "dead"):
        if key in given:
            given[key] = tuple(split_list(given[key]))
    if "parallel" in given:
        kind = field_type(StartPolicy, "max_starts_in_flight")
        given["parallel"] = option("--parallel", given["parallel"], kind)
    if hosts is not None:
        given["hosts"] = tuple(_target_hosts(hosts))
    return RunRequest(**given)


def _target_hosts(raw: str) -> list[str]:
    hosts = split_list(raw)
    if not hosts:
        raise ConfigError(
            f"start-host: no host given ({raw!r}); name one or more, comma-separated "
            "(start-all starts every host's guests)"
        )
    return hosts


def finish(outcome: RunOutcome) -> None:
    """End the task with the outcome's code and last line (returns when it is 0)."""
    exit_with(outcome.code, outcome.message)


def facts_problems(snap) -> list[str]:
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


@task(help=COMMON_HELP, auto_shortflags=False)
@cli
def facts(c, env=None, config=None, format="table", loc=None):
    """Gather hosts' RAM and CPUs, guests and cluster state; print them (JSON = snapshot)."""
    from ..run.facts import gather_facts, refusal_of

    check_format(format)
    if _multi(env):
        return _facts_multi(c, env, config, format, loc)
    cfg, environment = load(c, config, env, loc)
    snap = gather_facts(c, cfg, environment, None)
    # A held lock is not the cluster's problem: facts says who holds it and keeps its exit code
    # (a run in progress is the normal case for a lock; scripts gate on facts while it runs).
    refused = refusal_of(snap, lock=False)
    problems = facts_problems(snap)
    render.facts(snap, refused, format)
    if refused and not (snap.quorate is None and snap.errors):
        exit_with(ExitCode.REFUSED, f"refused: {printable(refused.text)}")
    if problems:
        exit_with(
            ExitCode.INCOMPLETE,
            f"facts found {len(problems)} problem(s); first: {printable(problems[0])}",
        )


@run_task(
    SHOW,
    name="show-layout",
    help={"format": "table (default), json, or script (a commented sh script to run by hand)"},
)
def show_layout(c, **options):
    """Plan where each down guest goes and show the layout and the commands, changing nothing."""
    finish(preview(c, request_of(options)))


def _multi(env: str | None) -> bool:
    from ..run.multi import is_multi

    return is_multi(env)


def each_environment(c, spec: str, config: str | None, fmt: str, one) -> None:
    """Run a single-environment task body ``one(env_name)`` for each environment ``spec``
    picks (check, capacity), one after another; one JSON document or each cluster's lines
    naming it; one exit code (0 all clean, 3 all refused, 1 a mistake, else 2)."""
    import json

    from ..run import multi
    from ..show import combined

    docs: dict[str, Any] = {}
    codes: dict[str, int] = {}
    for name in multi.environments(c, config, spec):
        with combined.for_prefix(name):  # its lines leave room for the [env] prefix
            out, codes[name], said = _captured(one, name)
        if fmt == "json":
            try:
                doc = json.loads(out) if out.strip() else None
            except ValueError:
                doc = None
            docs[name] = {"result": doc, "exit_code": codes[name], "message": said}
            continue
        text = out.rstrip("\n") + (f"\n{said}" if said else "")
        print(combined.prefixed(name, text) + "\n")
    if fmt == "json":
        print(json.dumps({"environments": docs}, indent=2))
    _combined_exit(codes)


def _captured(one, name: str) -> tuple[str, int, str | None]:
    """What ``one(name)`` printed, its exit code and its last line (a task body's Exit)."""
    import io
    import sys

    from invoke.exceptions import Exit

    from ..errors import XenfabError

    buf, said, code = io.StringIO(), None, 0
    saved, sys.stdout = sys.stdout, buf
    try:
        one(name)
    except Exit as exc:
        code, said = int(exc.code or 0), exc.message
    except XenfabError as exc:
        code, said = int(exc.exit_code), f"xenfab: {printable(exc)}"
    finally:
        sys.stdout = saved
    return buf.getvalue(), code, said


def _combined_exit(codes: dict[str, int]) -> None:
    """Exit with the one code of several environments' codes (returns when all are 0)."""
    values = set(codes.values())
    if values <= {0}:
        return
    bad = sorted(n for n, v in codes.items() if v)
    if values == {int(ExitCode.REFUSED)}:
        exit_with(ExitCode.REFUSED, f"every environment refused: {', '.join(bad)}")
    worst = ExitCode.USER_ERROR if int(ExitCode.USER_ERROR) in values else ExitCode.INCOMPLETE
    exit_with(worst, f"{len(bad)} of {len(codes)} environment(s) not clean: {', '.join(bad)}")


def _facts_multi(c, env: str, config: str | None, format: str, loc: str | None) -> None:
    """fab facts over several environments: each cluster's facts, one exit code."""
    from ..run import multi

    runs = multi.facts(c, config, env, loc)
    render.facts_multi(runs, format)
    refused = [r for r in runs if r.error or (r.refusal and r.snap and r.snap.quorate is not None)]
    problems = sum(len(facts_problems(r.snap)) for r in runs if r.snap is not None)
    if runs and len(refused) == len(runs):
        exit_with(ExitCode.REFUSED, f"refused: every cluster ({len(runs)}) would refuse starts")
    if refused or problems:
        exit_with(
            ExitCode.INCOMPLETE,
            f"facts of {len(runs)} cluster(s): {len(refused)} refused, {problems} problem(s)",
        )


def preview(c, request: RunRequest) -> RunOutcome:
    """show-layout's work: plan, print the plan and the STILL DOWN block; return how it ended."""
    from .. import run

    if _multi(request.env):
        from ..run import multi

        combined = multi.preview(c, request)
        render.preview_multi(request, combined)
        return combined  # type: ignore[return-value] - finish() reads code and message
    outcome = run.preview(c, request)
    render.preview(request, outcome)
    return outcome


def start(c, request: RunRequest) -> RunOutcome:
    """start-host/start-all's work: plan, print it, confirm, start, print how it ended."""
    from .. import run

    if _multi(request.env):
        from ..run import multi

        combined = multi.start(c, request, shown=lambda runs: render.plan_multi(request, runs))
        render.ended_multi(request, combined)
        return combined  # type: ignore[return-value] - finish() reads code and message
    outcome = run.start(c, request, shown=lambda planned: render.plan(request, planned))
    render.ended(request, outcome)
    return outcome


@run_task(
    START,
    name="start-host",
    positional=(Option("host", None, "the host whose planned guests to start"),),
    help={"env": "the one environment of HOST (default: the config's default_env)"},
)
def start_host(c, host, **options):
    """Start the guests the layout puts on HOST (comma-separated for several)."""
    if _multi(options.get("env")):
        raise ConfigError(
            f"start-host: --env {options['env']}: one environment (start-all takes several)"
        )
    finish(start(c, request_of(options, hosts=host)))


@run_task(START, name="start-all")
def start_all(c, **options):
    """Start every down guest where the layout puts it, in parallel within safe caps."""
    finish(start(c, request_of(options)))
