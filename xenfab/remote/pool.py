"""Kept-open SSH transports: many short commands on a host without reconnecting for each one.

A start run sends hundreds of commands to the master (a cluster-state poll several times a
second, one start command per guest) from several threads at once. Each command gets its own SSH
channel on a transport opened once; paramiko transports are safe to share between threads,
Fabric's Connection.run is not documented to be. A transport carries at most
CHANNELS_PER_TRANSPORT commands at a time (sshd's MaxSessions defaults to 10), and transports are
opened one at a time per host (sshd's MaxStartups drops bursts of unauthenticated connections).
Commands are read by the one channel reader (channel.read_command); failures come back typed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko
from fabric import Config, Connection

from ..cluster import Output
from ..config import Environment
from ..errors import RemoteError
from .channel import CommandLost, CommandTimeout, NotSent, OutputTooLarge, read_command
from .connect import connect
from .errors import classify
from .group import RunResult

CHANNELS_PER_TRANSPORT = 8
MAX_TRANSPORTS_PER_HOST = 8
# Handshakes under way at once per host: well under sshd's MaxStartups (10 by default).
OPENING_PER_HOST = 3


@dataclass
class _Transport:
    conn: Connection
    address: str
    busy: int = 0
    dead: bool = False

    def usable(self) -> bool:
        transport = self.conn.client.get_transport()
        return not self.dead and transport is not None and transport.is_active()


@dataclass
class _HostPool:
    transports: list[_Transport] = field(default_factory=list)
    opening: int = 0
    error: RemoteError | None = None
    error_at: float = 0.0


class SessionPool:
    """SSH transports kept open per host; ``run`` executes one command on a fresh channel."""

    def __init__(self, env: Environment, cfg: Config, *, channels: int = CHANNELS_PER_TRANSPORT):
        """Prepare (but do not open) connections for ``env`` with Fabric config ``cfg``."""
        self.env = env
        self.cfg = cfg
        self.channels = max(1, channels)
        self._hosts: dict[str, _HostPool] = {}
        self._cond = threading.Condition()
        self._closed = False

    def run(
        self,
        host: str,
        command: str,
        timeout: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> RunResult:
        """Run ``command`` on ``host``; never raises, a failure comes back typed (.failure).

        ``on_sent``: called once the host accepted the command (see channel.read_command).
        """
        t0 = time.monotonic()
        limit = timeout or self.env.ssh.command_timeout
        for attempt in (1, 2):
            try:
                slot = self._acquire(host)
            except _OpenFailed as exc:
                return self._failed(host, t0, exc.error)
            try:
                output = self._exec(slot, command, limit, on_sent)
                return RunResult(host, output, None, time.monotonic() - t0, slot.address)
            except NotSent as exc:
                # The command never reached the host: safe to try once more on a new transport.
                slot.dead = True
                if attempt == 2:
                    failure = classify(exc, host, slot.address, self.env)
                    return self._failed(host, t0, failure)
            except (CommandLost, CommandTimeout, OutputTooLarge) as exc:
                if isinstance(exc, CommandLost):
                    slot.dead = True
                failure = classify(exc, host, slot.address, self.env)
                return self._failed(host, t0, failure)
            finally:
                self._release(host, slot)
        raise AssertionError("unreachable")  # pragma: no cover

    def open_channel(
        self, host: str, command: str
    ) -> tuple[paramiko.Channel, str, Callable[[], None]]:
        """A channel on a kept-open transport to ``host`` running ``command``, its stdin open.

        For a long-lived reader (xenfab.remote.stream): the channel (and the transport's address)
        holds one of the transport's slots until ``release`` is called (once; it closes the
        channel). Raises
        RemoteError when the host cannot be reached, NotSent when the channel was refused.
        """
        try:
            slot = self._acquire(host)
        except _OpenFailed as exc:
            raise exc.error from None
        try:
            transport = slot.conn.client.get_transport()
            if transport is None or not transport.is_active():
                raise NotSent(paramiko.SSHException("SSH transport closed"))
            chan = transport.open_session(timeout=self.env.ssh.connect_timeout)
            chan.set_combine_stderr(True)
            chan.exec_command(command)
        except NotSent:
            slot.dead = True
            self._release(host, slot)
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._release(host, slot)
            raise NotSent(exc) from None
        once = threading.Lock()

        def release() -> None:
            if not once.acquire(blocking=False):
                return
            with contextlib.suppress(Exception):
                chan.close()
            self._release(host, slot)

        return chan, slot.address, release

    @staticmethod
    def _failed(host: str, t0: float, failure: RemoteError) -> RunResult:
        return RunResult(host, None, seconds=time.monotonic() - t0, failure=failure)

    def warm(self, host: str, transports: int) -> None:
        """Open up to ``transports`` transports to ``host`` now, so the first burst finds them."""
        with self._cond:
            pool = self._hosts.setdefault(host, _HostPool())
            have = len(pool.transports) + pool.opening
        wanted = min(transports, MAX_TRANSPORTS_PER_HOST) - have
        if wanted <= 0:
            return
        # A few handshakes at once, each thread opening its share in turn.
        workers = min(wanted, OPENING_PER_HOST)
        shares = [wanted // workers + (1 if i < wanted % workers else 0) for i in range(workers)]
        threads = [threading.Thread(target=self._warm, args=(host, n), daemon=True) for n in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _warm(self, host: str, count: int) -> None:
        for _ in range(count):
            with self._cond:
                pool = self._hosts.setdefault(host, _HostPool())
                if self._closed or pool.opening >= OPENING_PER_HOST:
                    return
                pool.opening += 1
            try:
                opened = self._open(host)
            except _OpenFailed:
                with self._cond:
                    pool.opening -= 1
                    self._cond.notify_all()
                return
            with self._cond:
                pool.opening -= 1
                pool.transports.append(opened)
                self._cond.notify_all()

    def close(self) -> None:
        """Close every transport; commands still running lose their channel."""
        with self._cond:
            self._closed = True
            pools = list(self._hosts.values())
            self._cond.notify_all()
        for pool in pools:
            for t in pool.transports:
                _close(t.conn)

    def __enter__(self) -> SessionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _acquire(self, host: str) -> _Transport:
        with self._cond:
            pool = self._hosts.setdefault(host, _HostPool())
            while True:
                if self._closed:
                    raise _OpenFailed(RemoteError(f"{host}: connection pool closed", host=host))
                for t in pool.transports:
                    if not t.busy and not t.usable():
                        _close(t.conn)
                pool.transports = [t for t in pool.transports if t.busy or t.usable()]
                free = [t for t in pool.transports if t.usable() and t.busy < self.channels]
                if free:
                    best = min(free, key=lambda t: t.busy)
                    best.busy += 1
                    return best
                total = len(pool.transports) + pool.opening
                if pool.opening < OPENING_PER_HOST and total < MAX_TRANSPORTS_PER_HOST:
                    # A host that just refused us is not asked again for a moment: every
                    # thread waiting on it would otherwise pay a connect timeout in turn.
                    if pool.error and time.monotonic() - pool.error_at < 2.0:
                        raise _OpenFailed(pool.error)
                    pool.opening += 1
                    break
                self._cond.wait(timeout=1.0)
        try:
            opened = self._open(host)
        except _OpenFailed as exc:
            with self._cond:
                pool.opening -= 1
                pool.error, pool.error_at = exc.error, time.monotonic()
                self._cond.notify_all()
            raise
        with self._cond:
            pool.opening -= 1
            pool.error = None
            opened.busy = 1
            pool.transports.append(opened)
            self._cond.notify_all()
        return opened

    def _release(self, host: str, slot: _Transport) -> None:
        with self._cond:
            slot.busy -= 1
            if slot.dead and slot.busy == 0:
                _close(slot.conn)
            self._cond.notify_all()

    def _open(self, host: str) -> _Transport:
        conn = connect(host, self.env, self.cfg)
        address = f"{conn.host}:{conn.port}"
        try:
            conn.open()
            transport = conn.client.get_transport()
            if transport is None:
                raise paramiko.SSHException("no transport after connect")
            # Keepalives notice a dead master during a long boot wait instead of hanging on it.
            transport.set_keepalive(15)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed host error
            _close(conn)
            raise _OpenFailed(classify(exc, host, address, self.env)) from None
        return _Transport(conn, address)

    def _exec(
        self, slot: _Transport, command: str, limit: float, on_sent: Callable[[], None] | None
    ) -> Output:
        # Killed on the host (with its process group) at the deadline: see channel.bounded.
        return read_command(
            slot.conn.client.get_transport(),
            command,
            limit,
            self.env.ssh.connect_timeout,
            combine_stderr=True,
            on_sent=on_sent,
        )


class _OpenFailed(Exception):
    def __init__(self, error: RemoteError):
        super().__init__(error.message)
        self.error = error


def _close(conn: Connection) -> None:
    # Closing is best effort: the peer may be gone already.
    with contextlib.suppress(Exception):
        conn.close()
