"""Operations around a recovery: check the environment, trust a host key."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from invoke import task
from invoke.exceptions import Exit

from ..duplicates import line as duplicate_line
from ..errors import ExitCode, StartRefused
from ..textsafe import printable
from ._common import check_format, cli, exit_with, load
from .core import COMMON_HELP, refusal

if TYPE_CHECKING:
    from ..snapshot import Host


# The remote layer's kinds (xenfab.remote.errors) that the host key column names.
_KEY_STATES = {"host-key-changed": "CHANGED", "host-key-unknown": "UNKNOWN"}


def _key_state(host: Host) -> str:
    if not host.error:
        return "ok" if host.reachable else "-"
    return _KEY_STATES.get(host.error_kind or "", "-")


@task(help=COMMON_HELP, auto_shortflags=False)
@cli
def check(c, env=None, config=None, loc=None, format="table"):
    """Validate the config and reach every host: host key, toolstack, Xen version, round trip."""
    from .core import _multi, each_environment

    check_format(format)
    if _multi(env):
        each_environment(c, env, config, format, lambda one: _check(c, one, config, loc, format))
        return
    _check(c, env, config, loc, format)


def _check(c, env: str | None, config: str | None, loc: str | None, format: str) -> None:
    from .. import show
    from ..gather import gather

    cfg, environment = load(c, config, env, loc)
    from ..show.progress import gathering

    snap = gather(environment, base_config=c.config, progress=gathering)
    rows = _check_rows(snap)
    problems = [r["problem"] for r in rows if r["problem"]] + [
        e for e in snap.errors if not any(e == r["problem"] for r in rows)
    ]
    # A guest running twice is a problem whatever else holds: said with what to do.
    tools = {h.name: h.toolstack for h in snap.hosts}
    problems += [duplicate_line(d, tools) for d in snap.duplicates]
    refused = refusal(snap)
    # Quorum unknown because no host answered: the problem to fix first is the gathering.
    unknown = snap.quorate is None and bool(snap.errors)
    if refused:
        # Otherwise first: it decides the exit code and is what to fix before anything else.
        problems.insert(len(problems) if unknown else 0, refused)
    if format == "json":
        print(show.to_json(_check_doc(cfg, environment, snap, rows, problems)))
    else:
        print(_check_text(cfg, environment, snap, rows, problems))
    if problems:
        code = ExitCode.REFUSED if refused and not unknown else ExitCode.INCOMPLETE
        exit_with(code, f"check found {len(problems)} problem(s); first: {printable(problems[0])}")


@task(
    help={
        "host": "host alias(es) (as in the environment's ssh_config) whose key to trust, "
        "comma-separated",
        "yes": "trust without asking (after checking the fingerprint another way)",
        "replace": "replace a different key already recorded (host reinstalled)",
        "env": COMMON_HELP["env"],
        "config": COMMON_HELP["config"],
    },
    name="trust-host",
    auto_shortflags=False,
)
@cli
def trust_host(c, host, env=None, config=None, yes=False, replace=False):
    """Show HOST's SSH host key fingerprint and record it in known_hosts once confirmed."""
    from ..remote import fabric_config
    from ..schema import HostName, option
    from ._common import split_list

    # Nothing between the commas: the schema's own word on the whole value.
    hosts = [option("HOST", h, HostName) for h in split_list(host) or [host]]
    cfg, environment = load(c, config, env)
    fcfg = fabric_config(environment, c.config)
    for name in hosts:  # one at a time: each fingerprint is shown before it is trusted
        _trust_one(name, environment, fcfg, yes, replace)


def _trust_one(host: str, environment, fcfg, yes: bool, replace: bool) -> None:
    from ..remote import hostkeys

    hk = hostkeys.fetch(host, environment, fcfg)
    path = hostkeys.known_hosts_path(host, environment, fcfg)
    print(f"{host} ({hk.address}) offers {hk.key.get_name()} {hk.fingerprint}")
    if not yes:
        if not sys.stdin.isatty():
            raise StartRefused("no terminal to confirm on; compare the fingerprint, then --yes")
        # The question goes to stderr, as every prompt does: stdout carries only the result.
        sys.stderr.write(f"Trust it and record it in {path}? [y/N] ")
        sys.stderr.flush()
        try:
            answer = input()
        except EOFError:
            # Ctrl-D is no answer, and no answer is not a yes.
            sys.stderr.write("\n")
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            # Not confirmed: exit 2, as for every prompt (README: exit codes).
            raise Exit("xenfab: key not trusted (not confirmed)", int(ExitCode.INCOMPLETE))
    print(f"{hostkeys.trust(hk, path, replace=replace)}: {', '.join(hk.names)} in {path}")


def _check_rows(snap) -> list[dict]:
    """One row a host: reachable, host key, toolstack, Xen, round trip, its problem."""
    return [
        {
            "host": h.name,
            "reachable": h.reachable,
            "host_key": _key_state(h),
            "toolstack": h.toolstack,
            "xen": h.xen_version,
            "rtt_ms": h.rtt_ms,
            "problem": h.error,
            # The problem's kind, for scripts ("host-key-changed", "refused", ...): stable where
            # the text is not.
            "error_kind": h.error_kind,
        }
        for h in snap.hosts
    ]


def _check_doc(cfg, environment, snap, rows: list[dict], problems: list[str]) -> dict:
    """check's JSON document."""
    from .. import show

    return {
        "config": cfg.path,
        "environment": environment.name,
        "master": snap.master,
        "quorate": snap.quorate,
        "hosts": rows,
        "duplicates": show.duplicates_json(snap.duplicates),
        "problems": problems,
    }


def _check_text(cfg, environment, snap, rows: list[dict], problems: list[str]) -> str:
    """check's table: the config, the cluster read, a line a host, then each problem."""
    from tabulate import tabulate

    from .. import show
    from ..show.notes import wrap

    lines = [
        f"config {cfg.path}: valid; environment {environment.name}",
        show.cluster_read_line(snap) + "\n",
    ]
    table = [
        [
            r["host"],
            "yes" if r["reachable"] else "NO",
            r["host_key"],
            r["toolstack"] or "-",
            r["xen"] or "-",
            r["rtt_ms"] if r["rtt_ms"] is not None else "-",
        ]
        for r in rows
    ]
    text = tabulate(
        table,
        headers=["host", "reachable", "host key", "toolstack", "xen", "rtt ms"],
        tablefmt=show.TABLE_FORMAT,
    )
    lines.append(printable(text, newlines=True))
    lines += [ln for p in problems for ln in wrap(printable(p), "  - ", "    ")]
    return "\n".join(lines)
