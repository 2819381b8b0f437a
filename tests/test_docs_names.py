"""What docs/*.md name (tasks, options, exit codes) exists: docs and code agree."""

from __future__ import annotations

import re

from clitools import ROOT

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
    return {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}


def test_every_task_a_doc_runs_exists():
    missing = {
        (doc, t)
        for doc, text in _docs().items()
        for t in re.findall(r"`fab ([a-z][a-z.-]*[a-z])(?![\w.*-])", text)
        if t not in TASKS
    }
    assert not missing, missing


def test_every_option_a_doc_gives_a_task_exists():
    options = _options()
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
