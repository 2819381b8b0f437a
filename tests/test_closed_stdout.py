"""`fab --list` into a closed pipe: one line on stderr, no traceback (Invoke prints the list)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# stdout is a pipe whose reader is already gone, so the first write fails (no race with `head`).
SCRIPT = """
import os, sys
r, w = os.pipe()
os.close(r)
os.dup2(w, 1)
sys.argv = ["fab", "--list"]
from fabric.main import program
program.run()
"""


def test_fab_list_into_closed_pipe_prints_one_line_not_a_traceback() -> None:
    """The listing's BrokenPipeError ends in our one line and a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["xenfab: stdout was closed before the output ended"]


def test_other_errors_still_reach_the_previous_hook() -> None:
    """Only BrokenPipeError is quieted: any other uncaught error keeps its traceback."""
    code = "import xenfab.tasks\nraise RuntimeError('boom')\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "RuntimeError: boom" in proc.stderr
