"""What docs/*.md and README.md name (tasks, options, exit codes) exists: docs and code agree.

The options are read from what an admin reads, ``fab --help TASK`` for every task (and ``fab
--help`` for Fabric's own), not only from the task objects.
"""

from __future__ import annotations

import functools
import re

from clitools import ROOT, fab_helps

import xenfab
from xenfab.errors import ExitCode


def _tasks(coll, prefix=""):
    for name, task in coll.tasks.items():
        yield prefix + name, task
    for name, sub in coll.collections.items():
        yield from _tasks(sub, f"{prefix}{name}.")


TASKS = dict(_tasks(xenfab.ns))
# Fabric's and Invoke's own flags, which a doc may name too.
CORE = {"--list", "--help", "--version", "--prompt-for-login-password", "--hosts", "--ssh-config"}


def _options() -> set[str]:
    out = set(CORE)
    for task in TASKS.values():
        for arg in task.get_arguments():
            out.update(f"--{n.replace('_', '-')}" for n in arg.names if len(n) > 1)
    return out


def _docs() -> dict[str, str]:
    docs = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
    readme = ROOT / "README.md"
    if readme.exists():
        docs["README.md"] = readme.read_text()
    return docs


def _options_in(help_text: str) -> set[str]:
    """The long options a ``--help`` output lists (its option lines: two spaces, then a dash)."""
    out = set()
    for line in help_text.splitlines():
        if re.match(r"\s{2}-", line):
            out.update(re.findall(r"(--[a-z][a-z-]*)", line.split("  ")[1]))
    return out


@functools.cache
def _help() -> dict[str, str]:
    """``fab --help TASK`` for every task, and ``fab --help`` under the key ''."""
    out = fab_helps(["", *TASKS])
    for name, text in out.items():
        assert "Usage:" in text, (name, text)
    return out


def test_every_task_help_runs_and_lists_its_options():
    for name, task in TASKS.items():
        text = _help()[name]
        # A flag with no name (the old `--=STRING`) is a help nobody can use.
        assert not re.search(r"(^|\s)--[=\s]", text), (name, text)
        declared = {
            f"--{n.replace('_', '-')}" for a in task.get_arguments() for n in a.names if len(n) > 1
        }
        assert declared <= _options_in(text), (name, declared - _options_in(text))


def _help_options(tasks: list[str] | None = None) -> set[str]:
    """The options ``--help`` lists for ``tasks`` (every task when None), Fabric's own included."""
    names = list(TASKS) if tasks is None else tasks
    return _options_in(_help()[""]).union(*(_options_in(_help()[n]) for n in names))


def test_every_task_a_doc_runs_exists():
    missing = {
        (doc, t)
        for doc, text in _docs().items()
        for t in re.findall(r"`fab ([a-z][a-z.-]*[a-z])(?![\w.*-])", text)
        if t not in TASKS
    }
    assert not missing, missing


def test_every_option_a_doc_gives_a_task_exists():
    options = _options() | _help_options()
    missing = {
        (doc, o)
        for doc, text in _docs().items()
        for cmd in re.findall(r"`fab [^`]*`", text)
        for o in re.findall(r"(--[a-z][a-z-]*)", cmd)
        if o not in options
    }
    assert not missing, missing


def test_every_exit_code_a_doc_names_is_one_of_the_codes():
    codes = {int(c) for c in ExitCode}
    named = {
        (doc, int(n))
        for doc, text in _docs().items()
        # "exit 247 = ..." is a remote tool's code explained, not one of xenfab's.
        for n in re.findall(r"\bexit(?:s| code| status)? (\d+)\b(?! =)", text)
    }
    assert named and {n for _, n in named} <= codes, named


def test_every_option_in_the_readme_task_table_is_its_tasks():
    """A row of the README's task table names only options its own task(s) take."""
    text = _docs().get("README.md")
    if text is None:
        return
    rows = [ln for ln in text.splitlines() if re.match(r"\| `fab [a-z]", ln)]
    assert rows, "README.md has no task table"
    missing = set()
    for row in rows:
        first = row.split("|")[1]
        tasks = re.findall(r"`(?:fab )?([a-z][a-z.-]*[a-z])(?: [A-Z]+)?`", first)
        assert tasks and all(t in TASKS for t in tasks), (row, tasks)
        options = _help_options(tasks)
        missing |= {(tasks[0], o) for o in re.findall(r"`(--[a-z][a-z-]*)", row)} - {
            (tasks[0], o) for o in options
        }
    assert not missing, missing


def test_the_readme_exit_code_table_is_exactly_the_codes():
    text = _docs().get("README.md")
    if text is None:
        return
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    table = {int(n) for n in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    assert table == {int(c) for c in ExitCode}
