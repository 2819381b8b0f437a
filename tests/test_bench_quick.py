"""bench/run.py --smoke runs every benchmark against the lab and prints its summary table.

A smoke test of the benchmarks, not a timed test: it asserts nothing about the figures, only
that every benchmark ran to its end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.lab


def test_run_smoke_prints_the_summary_table():
    if not os.path.exists("/usr/sbin/sshd"):
        pytest.skip("/usr/sbin/sshd is missing: install openssh-server to run the lab benchmarks")
    env = {k: v for k, v in os.environ.items() if k != "XENFAB_LAB_DIR"}
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # A benchmark may miss its target (its exit code says so); it must not crash.
    assert "Traceback" not in res.stdout, res.stdout[-3000:]
    summary = res.stdout.split("##### Summary", 1)
    assert len(summary) == 2, res.stdout[-3000:]
    table = summary[1]
    assert "| bench " in table and "| verdict " in table
    for bench in ("gather", "memory", "plan", "place", "start", "confirm"):
        assert f"| {bench} " in table
    assert "fab facts" in table
    assert "guests: RSS (task peak, KiB/guest)" in table  # the memory sweep over guest counts
