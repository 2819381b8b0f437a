"""The N+k report task: how many hosts may fail with every guest restarted."""

from __future__ import annotations

from invoke import task

from ..errors import ConfigError, ExitCode
from ..plan.capacity import DEFAULT_TIME_BUDGET_S
from ._common import check_format, cli, exit_with, load, saved_snapshot, split_list
from .core import COMMON_HELP, PLAN_HELP, check_dead, run_policy

CAPACITY_HELP = {
    **COMMON_HELP,
    "from_": "report on a saved snapshot (fab facts --format json) instead of asking the hosts",
    "max_k": "check failure sets of at most this many hosts (default: up to all hosts)",
    # The one import of the planner at load time (~10% of `fab --list`): the default has one source.
    "time_budget": f"seconds to spend on failure sets (default {DEFAULT_TIME_BUDGET_S:g}); "
    "past it k is a lower bound",
    "running_only": "count only the guests running now, not the down ones a recovery would start",
    "strategy": PLAN_HELP["strategy"],
    "exclude": "hosts no guest may move to, comma-separated (maintenance; added to policy.exclude)",
    "dead": "hosts known dead now, comma-separated: counted as failed already",
}


@task(help=CAPACITY_HELP, auto_shortflags=False)
@cli
def capacity(
    c,
    env=None,
    config=None,
    loc=None,
    from_=None,
    format="table",
    max_k=None,
    time_budget=None,
    running_only=False,
    strategy=None,
    exclude=None,
    dead=None,
):
    """N+k: per host, could its guests restart elsewhere; how many hosts may fail at once."""
    from .core import _multi, each_environment

    check_format(format)
    if _multi(env):
        if from_ or dead:
            raise ConfigError("--from and --dead name one environment's facts: give one --env")
        given = (loc, format, max_k, time_budget, running_only, strategy, exclude)

        def one(name: str) -> None:
            _capacity(c, name, config, None, *given, None)

        each_environment(c, env, config, format, one)
        return
    _capacity(c, env, config, from_, loc, format, max_k, time_budget, running_only, strategy,
              exclude, dead)  # fmt: skip


def _capacity(c, env, config, from_, loc, format, max_k, time_budget, running_only, strategy,
              exclude, dead) -> None:  # fmt: skip
    from .. import show
    from ..plan.capacity import capacity as nk_report
    from ..schema import NonNegFloat, PosInt, option

    # Options default to None so Invoke hands us text: its own casts fail with a traceback.
    k_cap = option("--max-k", max_k, PosInt)
    budget = option("--time-budget", time_budget, NonNegFloat)
    cfg, environment = load(c, config, env, loc)
    snap = _facts(c, environment, from_, dead)
    policy = run_policy(cfg, environment, strategy, split_list(exclude))
    report = nk_report(
        snap,
        policy,
        mode="running" if running_only else "recovered",
        max_k=k_cap,
        time_budget_s=DEFAULT_TIME_BUDGET_S if budget is None else budget,
    )
    report.warnings[:0] = [f"snapshot: {e}" for e in snap.errors]
    print(show.to_json(report.to_dict()) if format == "json" else show.capacity_text(report))
    if report.k < 0:
        exit_with(
            ExitCode.INCOMPLETE,
            "some guests cannot be restarted even with no other host failing (k = -1)",
        )


def _facts(c, environment, from_: str | None, dead: str | None):
    """The snapshot to report on, with the --dead hosts counted as failed already."""
    from ..gather import gather
    from ..show.progress import gathering

    # Live, a host that does not answer counts as lost already (as in a saved snapshot): the
    # report says so in its warnings instead of refusing to report.
    snap = (
        saved_snapshot(from_, environment)
        if from_
        else gather(environment, base_config=c.config, progress=gathering)
    )
    for name in check_dead(snap, split_list(dead)):
        # Declared dead for this run: counted as failed already, like a host that did not answer.
        host = snap.host(name)
        host.reachable, host.error = False, host.error or "declared dead (--dead)"
    return snap
