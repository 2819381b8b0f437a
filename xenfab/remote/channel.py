"""The one channel reader: run a command on an open transport, within a time and a byte limit.

Gather (one script per host) and the session pool (many short commands on kept-open transports)
both read their output here. The command runs on a bare paramiko channel, not through Invoke's
Runner, whose three threads per command poll every 10 ms.

Limits on what a host may send (docs/start.md, "Limits on remote data"): a command may print
MAX_OUTPUT_BYTES, then xenfab stops reading and gives up on it; and every command runs under
``bounded``: it is killed with its whole process group when its time is up, on the host itself,
so nothing xenfab started keeps running there after it gave up.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import paramiko

from ..cluster import Output

if TYPE_CHECKING:
    from fabric import Connection

# What one remote command may print before xenfab stops reading and gives up on it: 5,000
# guests' configs and clustat come to a few MiB; a hostile or broken host must not fill memory.
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
# How often a read waiting on stdout looks at stderr: only matters if a command writes more
# stderr than the channel window holds while printing no stdout.
_STDERR_POLL = 0.5


class OutputTooLarge(Exception):
    """The command printed more than MAX_OUTPUT_BYTES; the rest was not read."""

    def __init__(self, limit: int = MAX_OUTPUT_BYTES):
        super().__init__(f"printed more than {limit} bytes (MAX_OUTPUT_BYTES)")
        self.limit = limit


class CommandTimeout(Exception):
    """The command was still running when its time was up."""

    def __init__(self, timeout: float):
        super().__init__(f"command still running after {timeout:g} s")
        self.timeout = timeout


class CommandLost(Exception):
    """The channel broke after the command was sent: it may or may not have run."""


class NotSent(Exception):
    """The command never reached the host (no channel, or exec refused): safe to send again."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def bounded(command: str, timeout_s: float) -> str:
    """``command`` run so that the host kills it, with its whole process group, at the deadline.

    With coreutils ``timeout`` (RHEL 6 and later) that is ``timeout -k 2``: it runs the command in
    a process group of its own and signals the whole group (TERM, KILL two seconds later). Without
    it (RHEL 5) the command runs in a session of its own (``setsid``) next to a watchdog in
    another, which does the same; when the command ends first the watchdog is killed. An SSH
    client that gave up (or died) cannot do this: closing a channel does not stop a command that
    is not writing (an awk reading a huge file). With neither tool the command runs as it is.
    """
    t = max(1, int(timeout_s + 0.999))
    return (
        f"c={shlex.quote(command)}; if command -v timeout >/dev/null 2>&1; then "
        f'timeout -k 2 {t} sh -c "$c" </dev/null; '
        "elif command -v setsid >/dev/null 2>&1; then "
        'setsid sh -c "$c" </dev/null & p=$!; '
        f"setsid sh -c 'sleep {t}; kill -TERM -$0 2>/dev/null; sleep 2; "
        'kill -KILL -$0 2>/dev/null\' "$p" </dev/null >/dev/null 2>&1 & w=$!; '
        'wait "$p"; r=$?; kill -KILL -"$w" "$w" 2>/dev/null; exit "$r"; '
        'else sh -c "$c" </dev/null; fi'
    )


def read_command(
    transport: paramiko.Transport | None,
    command: str,
    timeout: float,
    open_timeout: float = 10,
    *,
    combine_stderr: bool = False,
    on_sent: Callable[[], None] | None = None,
) -> Output:
    """Run ``command`` on ``transport``; its stdout (and stderr if combined) and exit code.

    Raises NotSent when the command never left (safe to retry), CommandLost when the channel
    broke after it left, CommandTimeout and OutputTooLarge at the limits; stderr not combined
    is read and dropped. ``on_sent`` is called once the host has accepted the command (its exec
    request answered), before its output is read.
    """
    if transport is None or not transport.is_active():
        raise NotSent(paramiko.SSHException("SSH transport closed"))
    try:
        chan = transport.open_session(timeout=open_timeout)
        if combine_stderr:
            chan.set_combine_stderr(True)
        # The host kills the command (its process group) at the deadline: closing the channel
        # alone leaves an awk reading a huge file running there.
        chan.exec_command(bounded(command, timeout))
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise NotSent(exc) from None
    if on_sent is not None:
        on_sent()
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        # No input: the remote side reads EOF at once instead of waiting for a terminal.
        chan.shutdown_write()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandTimeout(timeout)
            chan.settimeout(min(remaining, _STDERR_POLL))
            try:
                data = chan.recv(65536)
            except TimeoutError:
                data = None
            # Unread stderr holds the channel window shut; read and drop it.
            while chan.recv_stderr_ready():
                chan.recv_stderr(65536)
            if data is None:
                continue
            if not data:
                break
            chunks.append(data)
            size += len(data)
            if size > MAX_OUTPUT_BYTES:
                raise OutputTooLarge()
        if not chan.status_event.wait(max(0.1, deadline - time.monotonic())):
            raise CommandTimeout(timeout)
        code = chan.recv_exit_status()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise CommandLost(f"connection lost while the command ran ({exc})") from None
    finally:
        chan.close()
    # The host's own bound (timeout's 124, or 137 after its KILL) fired at about our deadline:
    # the same time-out, seen from the other end first (its clock started before ours).
    if code in (124, 137) and time.monotonic() >= deadline - 0.5:
        raise CommandTimeout(timeout)
    # -1: the server sent no exit status (the process was killed); the shell's 255 says so.
    return Output(b"".join(chunks).decode("utf-8", errors="replace"), code if code >= 0 else 255)


def execute(conn: Connection, command: str, timeout: float, open_timeout: float = 10) -> Output:
    """Run ``command`` on the opened Fabric Connection ``conn``; stdout and exit code."""
    return read_command(conn.client.get_transport(), command, timeout, open_timeout)
