"""Every task has a one-line docstring (its --list help) and help for every argument."""

from __future__ import annotations

import subprocess
import sys

from clitools import ROOT
from invoke import Collection

import xenfab


def _tasks(coll: Collection, prefix: str = ""):
    for name, task in coll.tasks.items():
        yield prefix + name, task
    for name, sub in coll.collections.items():
        yield from _tasks(sub, f"{prefix}{name}.")


CHECK = """
import sys, xenfab
def walk(coll, prefix=""):
    for name, task in coll.tasks.items():
        yield prefix + name, task
    for name, sub in coll.collections.items():
        yield from walk(sub, prefix + name + ".")
problems = []
for name, task in walk(xenfab.ns):
    doc = (task.__doc__ or "").strip().split("\\n\\n")[0]
    if not doc or "\\n" in doc:
        problems.append(name + ": needs a one-line docstring")
    # Invoke pops help entries while building arguments: only a fresh process sees them all.
    missing = [a.name for a in task.get_arguments() if not a.help]
    if missing:
        problems.append(f"{name}: no help for {missing}")
print("\\n".join(problems))
sys.exit(1 if problems else 0)
"""


def test_every_task_and_argument_is_documented():
    tasks = dict(_tasks(xenfab.ns))
    assert {"facts", "show-layout", "start-host", "start-all", "check", "capacity"} <= set(tasks)
    assert {"lab.up", "lab.down", "lab.status", "lab.inject", "trust-host", "demo"} <= set(tasks)
    res = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_fab_list_shows_every_task():
    res = subprocess.run(
        [sys.executable, "-m", "fabric", "--list"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    for name, _ in _tasks(xenfab.ns):
        assert name in res.stdout


def test_parsers_import_without_fabric():
    code = (
        "import sys, xenfab; xenfab.parse_xl_info; from xenfab.plan import plan; "
        "bad = [m for m in ('fabric', 'paramiko', 'invoke') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
