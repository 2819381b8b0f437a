"""One command per host, as values: a RunResult per host, and host -> result for many hosts.

Modelled on Fabric's GroupResult: a failure is a value (a typed RemoteError), never an exception
that stops the other hosts, and ``.succeeded`` / ``.failed`` split the hosts for the caller.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fabric import Config

from ..cluster import Output
from ..config import Environment
from ..errors import RemoteError
from .channel import execute
from .connect import connect
from .errors import classify


@dataclass
class RunResult:
    """Outcome of one remote command: output, or the typed failure and its one-line message.

    ``error`` is the message (``failure.message``) for callers that only show it; code that
    decides on a failure reads ``failure.kind``. A result built with a message alone (a test's
    fake runner) has kind "other".
    """

    host: str
    output: Output | None
    error: str | None = None
    seconds: float = 0.0
    address: str | None = None
    failure: RemoteError | None = None

    def __post_init__(self) -> None:
        if self.failure is not None and self.error is None:
            self.error = self.failure.message
        elif self.error is not None and self.failure is None:
            self.failure = RemoteError(self.error, host=self.host, address=self.address)

    @property
    def ok(self) -> bool:
        """True when the command ran and its output was read (whatever its exit code)."""
        return self.failure is None and self.output is not None


class HostResults(dict[str, RunResult]):
    """host -> RunResult of one command on many hosts (Fabric's GroupResult, by host name)."""

    @property
    def succeeded(self) -> dict[str, RunResult]:
        """The hosts whose command ran, with their results."""
        return {host: r for host, r in self.items() if r.ok}

    @property
    def failed(self) -> dict[str, RemoteError]:
        """The hosts that could not be asked, with their typed errors."""
        return {
            host: r.failure or RemoteError(f"{host}: no output", host=host)
            for host, r in self.items()
            if not r.ok
        }


def run(
    host: str, command: str, env: Environment, cfg: Config, timeout: float | None = None
) -> RunResult:
    """Connect to ``host`` and run ``command``; never raises, a failure comes back typed."""
    start = time.monotonic()
    conn = connect(host, env, cfg)
    address = f"{conn.host}:{conn.port}"
    try:
        conn.open()
        out = execute(conn, command, timeout or env.ssh.command_timeout, env.ssh.connect_timeout)
        return RunResult(host, out, None, time.monotonic() - start, address)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a typed host error
        failure = classify(exc, host, address, env)
        return RunResult(host, None, seconds=time.monotonic() - start, failure=failure)
    finally:
        conn.close()


# The hosts this process asks at once, across every gather running now (None: each gather's
# own ssh.parallel alone). Several clusters gathered in one pass share it (run.multi).
_shared: threading.BoundedSemaphore | None = None
_shared_lock = threading.Lock()


@contextlib.contextmanager
def shared_workers(cap: int) -> Iterator[None]:
    """Within the block, every ``run_all`` of this process asks at most ``cap`` hosts at once."""
    global _shared
    with _shared_lock:
        previous, _shared = _shared, threading.BoundedSemaphore(max(1, cap))
    try:
        yield
    finally:
        with _shared_lock:
            _shared = previous


def run_all(
    hosts: Iterable[str],
    command: Callable[[str], str],
    env: Environment,
    cfg: Config,
    workers: int | None = None,
    each: Callable[[RunResult], object] | None = None,
) -> HostResults:
    """Run ``command(host)`` on every host, ``workers`` at a time (env.ssh.parallel), in order.

    ``each`` is called with every result in the worker that got it, so what the caller does per
    host (splitting a gather's output) overlaps the other hosts' round trips.
    """
    order = list(hosts)
    cap = max(1, min(workers or env.ssh.parallel, len(order) or 1))
    slots = _shared  # the process-wide cap of several gathers at once, when one is set

    def ask(host: str) -> RunResult:
        # `run` is looked up per call: the gather benchmark times each host by replacing it.
        with slots if slots is not None else contextlib.nullcontext():
            result = run(host, command(host), env, cfg)
        if each is not None:
            each(result)
        return result

    with ThreadPoolExecutor(max_workers=cap, thread_name_prefix="gather") as pool:
        return HostResults((r.host, r) for r in pool.map(ask, order))
