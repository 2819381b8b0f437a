"""Running the real `fab` CLI from tests, the way an admin does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fab(
    *args: str,
    cwd: Path = ROOT,
    env: dict | None = None,
    stdin: str | None = None,
    drop_env: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """Run `fab ARGS` (from the repo root unless ``cwd``) and capture what it printed."""
    environ = {k: v for k, v in os.environ.items() if k not in drop_env}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fabric", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env=environ,
        input=stdin,
    )


def no_traceback(res: subprocess.CompletedProcess) -> None:
    """A user-facing failure is one line, never a Python traceback."""
    assert "Traceback" not in res.stderr + res.stdout
