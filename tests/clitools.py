"""Running the real `fab` CLI from tests, the way an admin does."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Seconds a guest of the session lab takes to boot: long enough that a start is seen in
# transition, short enough that the suite does not spend its time waiting for boots.
LAB_BOOT_S = 0.4


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


# One `fab` process answers `--help` for many tasks: the same Program an admin runs, without
# paying Python's and Fabric's start-up once per task.
_HELPS = """
import contextlib, io, json, sys
from fabric.main import program
out = {}
for name in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        program.run(["fab", "--help", *([name] if name else [])], exit=False)
    out[name] = buf.getvalue()
print(json.dumps(out))
"""


def fab_helps(names: list[str], cwd: Path = ROOT) -> dict[str, str]:
    """``fab --help NAME`` for every name ('' for plain ``fab --help``), in one process."""
    res = subprocess.run(
        [sys.executable, "-c", _HELPS, json.dumps(names)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def default_signals() -> None:
    """For ``preexec_fn``: the child starts with SIGHUP, SIGTERM and SIGINT at their defaults.

    xenfab keeps a signal its parent ignores ignored (as ``nohup`` asks); a test that sends one
    must not inherit that from however its own runner was started.
    """
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def no_traceback(res: subprocess.CompletedProcess) -> None:
    """A user-facing failure is one line, never a Python traceback."""
    assert "Traceback" not in res.stderr + res.stdout


def live_processes(text: str) -> list[str]:
    """Command lines of live (non-zombie) processes holding ``text``, pytest's own aside.

    The lab's hosts are local processes, so /proc shows what a remote command left running.
    """
    return list(live_pids(text).values())


def live_pids(text: str) -> dict[int, str]:
    """PID -> command line of the live processes ``live_processes`` names."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # pytest itself may hold the text among its arguments; its temporary paths may too.
        runner = " -m pytest" in cmd or cmd.split(" ", 1)[0].endswith("pytest")
        if text in cmd and state != "Z" and not runner and int(pid) != os.getpid():
            found[int(pid)] = cmd
    return found


def fab_interrupted(
    *args: str, when: Callable[[], bool], env: dict | None = None, wait_s: float = 60
) -> subprocess.CompletedProcess:
    """Run `fab ARGS` and send it one SIGINT (Ctrl-C) as soon as ``when()`` is true."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabric", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + wait_s
        while not when() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def answer_on_pty(
    fd: int, question: bytes, answers: list[str], wait_s: float = 90
) -> tuple[str, int]:
    """Read a child's terminal (``fd`` from pty.fork) to its end, typing the next of ``answers``
    (then ``q``) at each ``question``; what it printed, and how many questions it asked."""
    out = b""
    asked = 0
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if out.count(question) > asked:
            asked += 1
            os.write(fd, (answers.pop(0) if answers else "q\n").encode())
    return out.decode(errors="replace"), asked
