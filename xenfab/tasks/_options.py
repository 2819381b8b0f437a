"""The run options, declared once: name, default, help; a task's signature is built from them.

Invoke reads a task's parameters from its signature, so a task that takes the shared options
gets a generated ``__signature__`` (``run_task``) and its body receives one ``RunRequest``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from invoke import task

from ._common import cli


@dataclass(frozen=True)
class Option:
    """One command-line option: its parameter name, its default and its help."""

    name: str
    default: Any
    help: str


_DECLARED = (
    Option(
        "env",
        None,
        "environment from the config (default: its default_env); several: a comma list or a "
        "glob ('dc1-*'), each cluster on its own, one combined view and exit code",
    ),
    Option("config", None, "config file (default: $XENFAB_CONFIG, then fabfile_config.yaml)"),
    Option("loc", None, "only the environment's hosts tagged with this location"),
    Option("format", "table", "table (default) or json"),
    Option(
        "from_",
        None,
        "plan from a saved snapshot (fab facts --format json) instead of asking the hosts",
    ),
    Option(
        "strategy", None, "round-robin, most-free, balanced or pack (overrides policy.strategy)"
    ),
    Option("exclude", None, "hosts not to place guests on, comma-separated (maintenance)"),
    Option("without", None, "what-if: plan as if these hosts had failed, comma-separated"),
    Option(
        "explain", False, "say why each guest got its host, and why unplaced guests fit nowhere"
    ),
    Option(
        "dead",
        None,
        "hosts known dead for this run (powered off or fenced), comma-separated: their "
        "guests may be restarted elsewhere; the audit log records it with your name",
    ),
    Option(
        "expect",
        None,
        "bring back what ran then: start only the down guests this saved snapshot "
        "(fab facts --format json) shows running, preferably where they ran",
    ),
    Option("verbose", False, "under each start in plain words, the exact remote command it sends"),
    Option("yes", False, "start without asking for confirmation"),
    Option("dry_run", False, "print the commands that would run, start nothing"),
    Option(
        "parallel",
        None,
        "most starts in flight at once, cluster-wide (default: start.max_starts_in_flight)",
    ),
    Option("step", False, "confirm each start on the terminal (Enter = start, s = skip, q = quit)"),
    Option(
        "break_lock",
        False,
        "break another run's stale start lock (it is reported with owner and age)",
    ),
    Option(
        "save",
        None,
        "write the plan, with the facts it was made from, to this file: "
        "fab start-all --plan FILE runs exactly it, or refuses (docs/plans.md)",
    ),
    Option(
        "plan",
        None,
        "run exactly this saved plan (fab show-layout --save FILE) on fresh facts, or refuse "
        "when something it depends on changed (docs/plans.md)",
    ),
    Option("run", None, "the run to show (its id in the audit log; default: the last run)"),
    Option("out", None, "the HTML file to write (default: ./xenfab-report-RUNID.html)"),
)
OPTIONS = {o.name: o for o in _DECLARED}

# Which options each kind of task takes, in the order `fab --help` lists them.
COMMON = ("env", "config", "loc", "format")
PLAN = (*COMMON, "from_", "strategy", "exclude", "without", "explain", "dead", "expect", "verbose")
START = (*PLAN, "yes", "dry_run", "parallel", "step", "break_lock", "plan")
# show-layout alone writes a plan to run later.
SHOW = (*PLAN, "save")
# fab report reads a run back from the audit log.
REPORT = ("env", "config", "format", "run", "out")


def helps(names: Iterable[str], **own: str) -> dict[str, str]:
    """The help texts of ``names``, with a task's ``own`` wording where it differs."""
    return {n: own.get(n, OPTIONS[n].help) for n in names} | own


def run_task(
    names: tuple[str, ...],
    *,
    positional: tuple[Option, ...] = (),
    help: dict[str, str] | None = None,  # noqa: A002 - Invoke's own keyword
    **task_kw: Any,
) -> Callable[[Callable], Any]:
    """Make ``body(c, *positional, **options)`` an Invoke task taking ``names`` (declared once).

    The signature Invoke reads is generated: the context, the ``positional`` arguments, then
    every named option with its declared default.
    """

    def wrap(body: Callable) -> Any:
        @functools.wraps(body)
        def fn(c: Any, *args: Any, **kwargs: Any) -> Any:
            return body(c, *args, **kwargs)

        params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [
            inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in positional
        ]
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params += [inspect.Parameter(n, kind, default=OPTIONS[n].default) for n in names]
        fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        texts = {p.name: p.help for p in positional} | helps(names, **(help or {}))
        return task(help=texts, auto_shortflags=False, **task_kw)(cli(fn))

    return wrap
