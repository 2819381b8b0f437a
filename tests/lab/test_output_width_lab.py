"""Every task's table output on the lab fits 100 columns (long texts go to footnotes)."""

from __future__ import annotations

import pytest
from clitools import LAB_BOOT_S, fab, no_traceback

pytestmark = pytest.mark.lab

WIDTH = 100
# Each task as an admin runs it on the lab just after the crash, then after the recovery.
BEFORE = [
    ("facts",),
    ("check",),
    ("capacity",),
    ("show-layout",),
    ("show-layout", "--explain"),
    ("show-layout", "--without", "xen01,xen03", "--explain"),
    ("show-layout", "--format", "script"),
    ("start-all", "--dry-run", "--explain"),
    ("start-host", "xen05", "--yes"),
    ("start-all", "--yes"),
    ("lab.status",),
]
AFTER = [("facts",), ("capacity",), ("show-layout",), ("start-all", "--yes")]


def _wide(res) -> list[str]:
    return [line for line in res.stdout.splitlines() if len(line) > WIDTH]


@pytest.mark.parametrize("backend", ["rgmanager", "xl"])
def test_every_task_fits_100_columns(lab, backend):
    lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend=backend)
    env = () if backend == "rgmanager" else ("--env", "lab-xl")
    wide = {}
    for args in BEFORE + AFTER:
        task_env = env if not args[0].startswith("lab.") else ()
        res = fab(*args, *task_env, env={"COLUMNS": str(WIDTH)})
        no_traceback(res)
        assert res.returncode in (0, 2), (args, res.stderr)
        assert res.stdout.strip(), args
        if _wide(res):
            wide[" ".join(args)] = _wide(res)
    assert not wide, wide


def test_a_long_reason_is_said_once_per_output(fresh_lab):
    res = fab("show-layout", "--explain", env={"COLUMNS": str(WIDTH)})
    out = res.stdout
    # legacy07's reason is in UNPLACED, the warnings and STILL DOWN: its full text once.
    assert out.count("cannot read it without running the config") == 1, out
    assert out.count("] no config file in ") == 1
    assert "legacy07 (size unknown): no config file in" in out  # its start, then the mark
