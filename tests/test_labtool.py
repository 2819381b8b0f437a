"""The lab's C tool client speaks the emulator server's protocol as the bash wrapper does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from xenfab.lab import control

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler"
)


class _Server:
    """One request, answered with ``frames``; what the client sent is kept in ``request``."""

    def __init__(self, frames: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.frames = frames
        self.request = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            # token, argc, host, tool, then argc arguments: NUL-terminated each
            while True:
                fields = self.request.split(b"\0")
                if len(fields) > 2 and len(fields) - 1 >= int(fields[1]) + 4:
                    break
                self.request += conn.recv(65536)
            conn.sendall(self.frames)


def _tool(tmp_path: Path, port: int, tool: str = "xl") -> Path:
    client = control.labtool()
    assert client is not None
    bin_dir = tmp_path / "lab" / "hosts" / "xen07" / "bin"
    bin_dir.mkdir(parents=True)
    conf = f"{port}\nsecret-token\n/nonexistent/python\n/nonexistent/emulator.py\n"
    (tmp_path / "lab" / "bin").mkdir()
    (tmp_path / "lab" / "bin" / "labtool.conf").write_text(conf)
    path = bin_dir / tool
    path.write_text(control._tool_file(tmp_path / "lab", "xen07", tool, {"port": port}, client))
    path.chmod(0o700)
    return path


def test_frames_become_stdout_stderr_and_the_exit_code_byte_for_byte(tmp_path):
    big = bytes(range(256)) * 1000  # over the client's buffer, with every byte value
    frames = b"1 %d\n" % len(big) + big + b"2 6\noops!\n1 3\nend" + b"x 7\n"
    server = _Server(frames)
    tool = _tool(tmp_path, server.port)
    res = subprocess.run([str(tool), "list", "a b", "it's", ""], capture_output=True, timeout=30)
    assert res.returncode == 7
    assert res.stdout == big + b"end"
    assert res.stderr == b"oops!\n"
    fields = server.request.split(b"\0")
    assert fields[:8] == [b"secret-token", b"4", b"xen07", b"xl", b"list", b"a b", b"it's", b""]


def test_a_server_that_goes_away_is_said_with_exit_255(tmp_path):
    server = _Server(b"1 5\nhel")  # cut short inside a frame
    tool = _tool(tmp_path, server.port, "clustat")
    res = subprocess.run([str(tool), "-x"], capture_output=True, timeout=30)
    assert res.returncode == 255
    assert res.stdout == b"hel"
    assert b"clustat: the lab's emulator server went away" in res.stderr


def test_no_server_runs_the_emulator_as_a_command_and_says_when_it_cannot(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    tool = _tool(tmp_path, port)
    res = subprocess.run([str(tool), "info"], capture_output=True, timeout=30)
    assert res.returncode == 255
    assert b"xl: cannot run the lab's emulator" in res.stderr


def test_a_tool_outside_a_lab_hosts_bin_is_refused(tmp_path):
    client = control.labtool()
    assert client is not None
    stray = tmp_path / "xl"
    stray.write_text(f"#!{client}\n")
    stray.chmod(0o700)
    res = subprocess.run([str(stray), "list"], capture_output=True, timeout=30)
    assert res.returncode == 127 and b"not a lab host's tool" in res.stderr
    assert os.access(client, os.X_OK)


def test_a_cache_that_cannot_be_written_means_bash_wrappers(tmp_path, monkeypatch):
    home = tmp_path / "not-a-directory"
    home.write_text("")
    monkeypatch.setattr(Path, "home", lambda: home)
    assert control.labtool() is None
