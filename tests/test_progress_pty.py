"""Progress while waiting, on a terminal only: tested under a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest
from clitools import ROOT

from xenfab.show.progress import Waiting

# Alone (scripts/test.sh): it times work or loads the CPU on purpose.
pytestmark = pytest.mark.slow  # it runs fab on a pseudo-terminal


def _run_on_pty(*args: str, until: float) -> tuple[str, float | None, subprocess.Popen]:
    """Run `fab ARGS` on a pseudo-terminal; the output and when 'waiting' first showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabric", *args],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(slave)
    t0, seen, out = time.monotonic(), None, b""
    try:
        while time.monotonic() - t0 < until:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if seen is None and b"waiting" in out:
                    seen = time.monotonic() - t0
            elif proc.poll() is not None:
                break
    finally:
        proc.wait(timeout=60)
        os.close(master)
    return out.decode(errors="replace"), seen, proc


@pytest.mark.lab
def test_a_slow_host_shows_a_waiting_line_within_3_s(fresh_lab):
    fresh_lab.inject("slow", "xen03", "5000")
    try:
        out, seen, proc = _run_on_pty("facts", until=30)
    finally:
        fresh_lab.inject("slow", "xen03", "0")
    # 2: facts lists the lab's one problem, legacy07's config (it exits 2 on any problem).
    assert proc.returncode == 2, out
    # Within 3 s of asking: fab's own start-up (Python, Fabric, paramiko, the config, SSH) is
    # measured apart, as a whole `fab facts` with no slow host, on this loaded machine.
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "fabric", "facts"], cwd=ROOT, capture_output=True)
    startup = time.monotonic() - t0
    assert seen is not None and seen - startup < 3.0, (seen, startup, out)
    line = next(ln for ln in out.replace("\r", "\n").splitlines() if "waiting" in ln)
    assert "gathering: waiting" in line and "xen03" in line and "xen01" not in line


@pytest.mark.lab
def test_no_waiting_line_off_a_terminal(fresh_lab):
    fresh_lab.inject("slow", "xen03", "3000")
    try:
        res = subprocess.run(
            [sys.executable, "-m", "fabric", "facts"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        fresh_lab.inject("slow", "xen03", "0")
    assert res.returncode == 2, res.stderr  # the lab's legacy07 config, as above
    assert "waiting" not in res.stderr + res.stdout


@pytest.mark.parametrize("tty", [True, False])
def test_waiting_names_only_the_hosts_not_answered(tty):
    import io

    out = io.StringIO()
    with Waiting("gathering", ["xen01", "xen02", "xen03"], out=out, after_s=0.1, tty=tty) as w:
        w.answered("xen01")
        w.answered("xen02")
        time.sleep(0.4)
        assert w.line() is not None and "xen03" in w.line() and "xen01" not in w.line()
    text = out.getvalue()
    assert ("gathering: waiting" in text and "xen03" in text) == tty
