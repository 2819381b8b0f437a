"""The long-lived reader (xenfab.remote.stream): its real loop script, run by a local sh.

The channel is one end of a socketpair whose other end is the loop's stdin and stdout, so the
framing, the nonce checks, the time and size bounds and the fallbacks are the real ones.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from xenfab.config import Environment
from xenfab.errors import RemoteError
from xenfab.remote import stream
from xenfab.remote.channel import NotSent
from xenfab.remote.stream import StreamReader, loop_script, one_shot

pytestmark = pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")


class SockChannel:
    """The few paramiko.Channel calls a stream makes, over a socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def settimeout(self, t: float) -> None:
        self.sock.settimeout(t)

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def close(self) -> None:
        self.sock.close()


class LocalOpener:
    """Opens each channel as a local ``sh -c SCRIPT`` on a socketpair."""

    def __init__(self, path: str | None = None, refuse: bool = False, down: bool = False):
        self.env = Environment(name="t", hosts=["h1"], guest_config_dir="/xen")
        self.path = path
        self.refuse = refuse
        self.down = down
        self.procs: list[subprocess.Popen] = []
        self.released = 0

    def open_channel(self, host, command):
        if self.down:
            raise RemoteError(f"{host}: connection refused", host=host)
        if self.refuse:
            raise NotSent(OSError("channel refused"))
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        if self.path is not None:
            env["PATH"] = self.path
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=theirs, stdout=theirs, stderr=theirs, env=env
        )
        theirs.close()
        self.procs.append(proc)
        chan = SockChannel(ours)

        def release():
            self.released += 1
            chan.close()

        return chan, "127.0.0.1:22", release

    def reap(self) -> list[int | None]:
        out = []
        for p in self.procs:
            try:
                out.append(p.wait(5))
            except subprocess.TimeoutExpired:
                p.kill()
                out.append(None)
        return out


NONCE = "0123456789abcdef"


def test_each_request_runs_the_body_again_on_one_channel():
    opener = LocalOpener()
    s = StreamReader(opener, "h1", 'echo "read $n"; echo line2', 5)
    try:
        first = s.ask(NONCE)
        second = s.ask("fedcba9876543210")
        assert first is not None and first.ok, first
        assert first.output.text == f"read {NONCE}\nline2\n"
        assert first.output.exit_code == 0
        assert second is not None and second.output.text.startswith("read fedcba9876543210\n")
        assert s.opens == 1 and len(opener.procs) == 1 and s.answered == 2
    finally:
        s.close()
    assert opener.reap() == [0]  # the loop read end-of-file and ended
    assert opener.released == 1


def test_the_exit_code_and_output_without_a_final_newline():
    s = StreamReader(LocalOpener(), "h1", "printf 'no newline'; exit 7", 5)
    try:
        res = s.ask(NONCE)
        assert res is not None and res.output.text == "no newline"
        assert res.output.exit_code == 7
    finally:
        s.close()


def test_output_cannot_forge_the_end_of_an_answer():
    # A host's text holding an end marker of another nonce (or none) is only content.
    forged = "printf '\\n@@xenfab:%s stream-end 0\\n' 00000000deadbeef; echo after"
    s = StreamReader(LocalOpener(), "h1", forged, 5)
    try:
        res = s.ask(NONCE)
        assert res is not None
        assert res.output.text == "\n@@xenfab:00000000deadbeef stream-end 0\nafter\n"
    finally:
        s.close()


def test_the_nonce_is_hex_only_on_both_sides():
    s = StreamReader(LocalOpener(), "h1", "echo x", 5)
    with pytest.raises(ValueError):
        s.ask("abc; rm -rf /")
    with pytest.raises(ValueError):
        one_shot("echo x", "$(reboot)")
    s.close()
    # The loop itself ends at a line that is not hex, running nothing.
    out = subprocess.run(
        ["/bin/sh", "-c", loop_script("echo ran", 5)],
        input="x;echo pwned\n",
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 2 and "ran" not in out.stdout and "pwned" not in out.stdout


def test_a_slow_read_times_out_is_killed_there_and_the_stream_closes():
    opener = LocalOpener()
    s = StreamReader(opener, "h1", "sleep 30", 1)
    t0 = time.monotonic()
    res = s.ask(NONCE)
    took = time.monotonic() - t0
    assert res is not None and res.failure is not None
    assert res.failure.kind == "command-timeout", res.failure
    assert took < 5, took
    assert not s.open
    assert opener.reap() != [None]  # the loop went with its channel
    s.close()


def test_too_much_output_gives_up_and_closes():
    s = StreamReader(LocalOpener(), "h1", "yes xxxxxxxx | head -c 200000", 5, max_bytes=50_000)
    res = s.ask(NONCE)
    assert res is not None and res.failure is not None
    assert res.failure.kind == "output-too-large"
    assert not s.open
    s.close()


def test_without_timeout_on_the_host_there_is_no_stream():
    # No coreutils `timeout` on PATH: the loop ends at once; the caller reads per command.
    opener = LocalOpener(path="/nonexistent")
    s = StreamReader(opener, "h1", "echo x", 5)
    assert s.ask(NONCE) is None
    assert opener.reap() == [3]
    # Not reopened at once: the next ask goes per command too, without a new channel.
    assert s.ask(NONCE) is None and len(opener.procs) == 1
    s.close()


def test_a_broken_stream_is_reopened_a_bounded_number_of_times(monkeypatch):
    monkeypatch.setattr(stream, "REOPEN_AFTER_S", 0.0)
    opener = LocalOpener(path="/nonexistent")
    s = StreamReader(opener, "h1", "echo x", 5)
    for _ in range(stream.MAX_OPENS + 3):
        assert s.ask(NONCE) is None
    assert len(opener.procs) == stream.MAX_OPENS
    s.close()


def test_a_refused_channel_falls_back_and_an_unreachable_host_fails():
    s = StreamReader(LocalOpener(refuse=True), "h1", "echo x", 5)
    assert s.ask(NONCE) is None
    down = StreamReader(LocalOpener(down=True), "h1", "echo x", 5)
    res = down.ask(NONCE)
    assert res is not None and res.failure is not None and "refused" in res.error


def test_a_busy_stream_declines_instead_of_queueing():
    s = StreamReader(LocalOpener(), "h1", "echo x", 5)
    try:
        assert s._lock.acquire()
        assert s.ask(NONCE) is None and s.declined == 1
        s._lock.release()
        assert s.ask(NONCE) is not None
    finally:
        s.close()


def test_one_shot_runs_the_same_body_for_the_same_nonce():
    body = 'echo "read $n"'
    out = subprocess.run(["/bin/sh", "-c", one_shot(body, NONCE)], capture_output=True, text=True)
    assert out.stdout == f"read {NONCE}\n"


def test_a_plain_command_runs_without_a_shell_of_its_own_and_the_same_output():
    plain = loop_script("echo plain words", 5)
    assert "sh -c" not in plain and "timeout -k 2 5 echo plain words" in plain
    assert 'sh -c "n=$n; $b"' in loop_script("echo $n", 5)
    s = StreamReader(LocalOpener(), "h1", "echo plain words", 5)
    try:
        res = s.ask(NONCE)
        assert res is not None and res.output.text == "plain words\n"
    finally:
        s.close()
