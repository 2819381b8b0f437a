"""Per-host results as values (Fabric's GroupResult model), and the one channel reader's limits."""

from __future__ import annotations

import socket
import threading

import paramiko
import pytest

from xenfab.cluster import Output
from xenfab.config import Environment, HostEntry, SSHSettings
from xenfab.errors import RemoteError
from xenfab.remote import HostResults, RunResult, fabric_config, run_all
from xenfab.remote.channel import CommandLost, CommandTimeout, NotSent, read_command
from xenfab.remote.errors import Refused


def test_run_result_carries_the_failure_and_its_message():
    failure = Refused("xen02 (127.0.0.12:22): connection refused", host="xen02")
    failed = RunResult("xen02", None, failure=failure)
    assert failed.error == failure.message and failed.failure.kind == "refused" and not failed.ok
    # A runner that only has a message (a test's fake) still gives a typed failure.
    plain = RunResult("xen03", None, "xen03: connection refused")
    assert plain.failure is not None and plain.failure.kind == "other"
    assert plain.failure.message == "xen03: connection refused" and not plain.ok
    ok = RunResult("xen01", Output("hi\n", 3))
    assert ok.ok and ok.error is None and ok.failure is None


def test_host_results_split_into_succeeded_and_failed():
    results = HostResults(
        {
            "xen01": RunResult("xen01", Output("", 0)),
            "xen02": RunResult("xen02", None, failure=Refused("xen02: refused", host="xen02")),
            "xen03": RunResult("xen03", Output("x", 1)),
            "xen04": RunResult("xen04", None),  # no output and no word why
        }
    )
    assert isinstance(results, dict) and list(results) == ["xen01", "xen02", "xen03", "xen04"]
    assert list(results.succeeded) == ["xen01", "xen03"]
    assert all(isinstance(r, RunResult) for r in results.succeeded.values())
    failed = results.failed
    assert list(failed) == ["xen02", "xen04"]
    assert all(isinstance(e, RemoteError) for e in failed.values())
    assert failed["xen02"].kind == "refused" and failed["xen04"].kind == "other"
    # Views, not snapshots: a result added later is seen.
    results["xen05"] = RunResult("xen05", Output("", 0))
    assert "xen05" in results.succeeded


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_all_returns_every_host_typed_and_calls_each(tmp_path):
    """Real connections to closed ports: every host fails as refused, none stops the others."""
    ports = {name: _closed_port() for name in ("a", "b", "c")}
    (tmp_path / "ssh_config").write_text(
        "".join(f"Host {h}\n  HostName 127.0.0.1\n  Port {p}\n" for h, p in ports.items())
    )
    env = Environment(
        name="t",
        hosts=[HostEntry(h) for h in ports],
        master=None,
        guest_config_dir="/x",
        ssh=SSHSettings(config=str(tmp_path / "ssh_config"), host_key_check="off"),
    )
    seen: list[str] = []
    lock = threading.Lock()

    def each(result: RunResult) -> None:
        with lock:
            seen.append(result.host)

    asked: list[str] = []
    results = run_all(
        ["c", "a", "b"], lambda h: asked.append(h) or "true", env, fabric_config(env), each=each
    )
    assert list(results) == ["c", "a", "b"] and sorted(seen) == ["a", "b", "c"]
    assert sorted(asked) == ["a", "b", "c"] and not results.succeeded
    for host, err in results.failed.items():
        assert err.kind == "refused" and err.host == host
        assert err.message == f"{host} (127.0.0.1:{ports[host]}): connection refused"
        assert results[host].error == err.message


def test_gathers_in_one_pass_share_one_cap_on_hosts_asked_at_once(monkeypatch):
    """Two environments gathered together under shared_workers(3): never more than 3 hosts."""
    import time

    from xenfab.remote import group

    now = {"n": 0, "peak": 0}
    lock = threading.Lock()

    def fake_run(host, command, env, cfg, timeout=None):
        with lock:
            now["n"] += 1
            now["peak"] = max(now["peak"], now["n"])
        time.sleep(0.02)
        with lock:
            now["n"] -= 1
        return RunResult(host, Output("", 0), None, 0.02)

    monkeypatch.setattr(group, "run", fake_run)

    def env(name: str) -> Environment:
        hosts = [HostEntry(f"{name}{i}") for i in range(8)]
        return Environment(name=name, hosts=hosts, master=None, guest_config_dir="/x")

    def gather(e: Environment) -> None:
        run_all([h.name for h in e.hosts], lambda h: "true", e, fabric_config(e), workers=8)

    with group.shared_workers(3):
        threads = [threading.Thread(target=gather, args=(env(n),)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert now["peak"] == 3  # each alone would have asked 8 at once
    gather(env("c"))  # outside the block: the environment's own cap again
    assert now["peak"] == 8


class _Channel:
    """A paramiko channel's surface as the reader uses it, failing where told."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None, status: bool = True):
        self.chunks, self.fail_at, self.status = list(chunks), fail_at, status
        self.status_event = threading.Event()
        if status:
            self.status_event.set()
        self.closed = False
        self.reads = 0

    def set_combine_stderr(self, on: bool) -> None:
        self.combined = on

    def exec_command(self, command: str) -> None:
        self.command = command

    def shutdown_write(self) -> None:
        pass

    def settimeout(self, t: float) -> None:
        pass

    def recv(self, n: int) -> bytes:
        self.reads += 1
        if self.fail_at is not None and self.reads > self.fail_at:
            raise EOFError("peer went away")
        return self.chunks.pop(0) if self.chunks else b""

    def recv_stderr_ready(self) -> bool:
        return False

    def recv_exit_status(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class _Transport:
    def __init__(self, chan: _Channel | Exception):
        self.chan = chan

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout: float | None = None) -> _Channel:
        if isinstance(self.chan, Exception):
            raise self.chan
        return self.chan


def test_the_reader_tells_not_sent_from_lost():
    with pytest.raises(NotSent) as not_sent:
        read_command(None, "true", 5)
    assert isinstance(not_sent.value.cause, paramiko.SSHException)
    with pytest.raises(NotSent):
        read_command(_Transport(paramiko.ChannelException(1, "open failed")), "true", 5)
    chan = _Channel([b"part"], fail_at=1)
    with pytest.raises(CommandLost, match="connection lost while the command ran"):
        read_command(_Transport(chan), "true", 5)
    assert chan.closed


def test_the_reader_reads_output_and_gives_up_at_its_time():
    chan = _Channel([b"hello ", b"world\n"])
    out = read_command(_Transport(chan), "echo", 5, combine_stderr=True)
    assert out == Output("hello world\n", 0) and chan.combined and chan.closed
    assert "timeout" in chan.command  # bounded: the host kills it at the deadline
    slow = _Channel([], status=False)  # EOF but never an exit status
    with pytest.raises(CommandTimeout):
        read_command(_Transport(slow), "sleep 99", 0.2)
    assert slow.closed
