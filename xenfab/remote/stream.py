"""A long-lived reader per host: one SSH channel that runs the same read again on each request.

A start run reads every host's domain list (and the master's cluster state) once per start. As
a fresh command each read costs a new SSH session on the host (sshd's session process, a login
shell, the time bound) before the tool itself runs. A stream opens one channel per host and
reader, running a small POSIX sh loop; a request is one line (a fresh nonce) written to it, and
the answer is the read's output followed by a marker line carrying that nonce and the read's
exit code::

    while IFS= read -r n; do          # n: the request's nonce, hex only (else the loop ends)
        timeout -k 2 T sh -c "n=$n; BODY" </dev/null 2>&1     # a plain BODY: without sh -c
        printf '\\n@@xenfab:%s stream-end %s\\n' "$n" "$?"
    done

The body is fixed when the channel opens (no name from the run reaches it later); the nonce is
new per request, so no output of the read can forge its end. Every read is killed on the host
(with its process group) at its time bound, as a per-read command is (channel.bounded); a host
without coreutils ``timeout`` gets no stream (the loop ends at once) and is read by per-read
commands, which bound themselves another way. An answer is bounded in size (MAX_OUTPUT_BYTES)
and time: past either the channel is closed, and the read fails as a per-read command would.

``ask`` never waits for another request: a stream busy with one, broken, or not (yet) reopened
answers None, and the caller runs the read as a per-read command (``one_shot``) instead; a
broken stream is reopened at most ``MAX_OPENS`` times in all, ``REOPEN_AFTER_S`` apart. When
the channel closes (the run ends, or the client dies) the loop reads end-of-file and exits.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Callable
from typing import Protocol

import paramiko

from ..cluster import Output
from ..config import Environment
from ..errors import RemoteError
from .channel import MAX_OUTPUT_BYTES, CommandTimeout, NotSent, OutputTooLarge
from .errors import classify
from .group import RunResult

# A stream that broke is opened again at most this often, and this many times in all (the first
# opening included): a host whose channels keep breaking is read by per-read commands.
REOPEN_AFTER_S = 5.0
MAX_OPENS = 3
# How long one recv waits before the deadline is looked at again.
_POLL_S = 0.5
_NONCE = re.compile(r"[0-9a-f]{8,64}")
# A body of plain words (letters, digits, ._/- and single spaces) needs no shell of its own.
_PLAIN = re.compile(r"[A-Za-z0-9._/-]+( [A-Za-z0-9._/-]+)*")


class Opener(Protocol):
    """What a stream opens its channel through (SessionPool)."""

    env: Environment

    def open_channel(self, host: str, command: str) -> tuple[object, str, Callable[[], None]]:
        """A channel running ``command`` on ``host``, its address, and its release."""
        ...


def loop_script(body: str, timeout_s: float) -> str:
    """The remote loop: ``body`` (which reads the request's nonce as ``$n``) once per line read."""
    t = max(1, int(timeout_s + 0.999))
    # A plain command (`xl list`) runs under `timeout` itself: one process less per read than
    # a shell for it, on every host, for every start.
    run = body if _PLAIN.fullmatch(body) else 'sh -c "n=$n; $b"'
    return (
        f"b={shlex.quote(body)}\n"
        # No time bound on the host, no stream: per-read commands bound themselves otherwise.
        "command -v timeout >/dev/null 2>&1 || exit 3\n"
        "while IFS= read -r n; do\n"
        "case $n in ''|*[!0-9a-f]*) exit 2;; esac\n"
        f"timeout -k 2 {t} {run} </dev/null 2>&1\n"
        'printf \'\\n@@xenfab:%s stream-end %s\\n\' "$n" "$?"\n'
        "done\n"
    )


def one_shot(body: str, nonce: str) -> str:
    """``body`` as one per-read command, for the same ``nonce`` (the fallback)."""
    _check_nonce(nonce)
    return f"n={nonce}\n{body}"


def _check_nonce(nonce: str) -> None:
    if not _NONCE.fullmatch(nonce):
        raise ValueError(f"stream nonce must be 8-64 hex digits, not {nonce!r}")


class StreamReader:
    """One long-lived channel on ``host`` that runs ``body`` once per ``ask``."""

    def __init__(
        self,
        opener: Opener,
        host: str,
        body: str,
        timeout: float,
        *,
        max_bytes: int = MAX_OUTPUT_BYTES,
    ) -> None:
        """Prepare (not open) a stream on ``host``; each read runs at most ``timeout`` s there."""
        self.opener = opener
        self.host = host
        self.body = body
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.script = loop_script(body, timeout)
        self.opens = 0
        # Answers read from the stream, and the reads it left to a per-read command.
        self.answered = 0
        self.declined = 0
        self._lock = threading.Lock()
        self._chan: object | None = None
        self._release: Callable[[], None] | None = None
        self._address = host
        self._broken_at: float | None = None
        self._closed = False

    @property
    def open(self) -> bool:
        """True while the channel is open (a request would be written to it)."""
        return self._chan is not None

    def ask(self, nonce: str, timeout: float | None = None) -> RunResult | None:
        """Run the body once for ``nonce``; None: run it as a per-read command instead.

        A failure of the host itself (unreachable, the read timed out or printed too much)
        comes back as a RunResult with its typed failure, as a per-read command's would.
        """
        _check_nonce(nonce)
        if not self._lock.acquire(blocking=False):
            self.declined += 1
            return None
        try:
            res = self._ask(nonce, timeout or self.timeout)
        finally:
            self._lock.release()
        if res is None:
            self.declined += 1
        else:
            self.answered += 1
        return res

    def close(self) -> None:
        """Close the channel: the remote loop reads end-of-file and exits."""
        self._closed = True
        self._drop()

    # -- internals ---------------------------------------------------------------------------

    def _ask(self, nonce: str, limit: float) -> RunResult | None:
        t0 = time.monotonic()
        if self._chan is None:
            opened = self._open(t0)
            if opened is not True:
                return opened
        chan = self._chan
        if chan is None:  # closed meanwhile
            return None
        end = f"\n@@xenfab:{nonce} stream-end ".encode()
        try:
            chan.sendall(f"{nonce}\n".encode())  # type: ignore[attr-defined]
        except (OSError, EOFError, paramiko.SSHException):
            self._broke()
            return None
        buf = bytearray()
        deadline = t0 + limit
        while True:
            at = buf.find(end)
            if at >= 0:
                nl = buf.find(b"\n", at + len(end))
                if nl >= 0:
                    code = bytes(buf[at + len(end) : nl])
                    if nl + 1 != len(buf) or not code.isdigit():
                        # Nothing may follow the end marker: the stream is not what it seems.
                        self._broke()
                        return None
                    text = bytes(buf[:at]).decode("utf-8", errors="replace")
                    out = Output(text, int(code))
                    return RunResult(self.host, out, None, time.monotonic() - t0, self._address)
            if len(buf) > self.max_bytes:
                return self._give_up(OutputTooLarge(self.max_bytes), t0)
            left = deadline - time.monotonic()
            if left <= 0:
                return self._give_up(CommandTimeout(limit), t0)
            try:
                chan.settimeout(min(left, _POLL_S))  # type: ignore[attr-defined]
                data = chan.recv(65536)  # type: ignore[attr-defined]
            except TimeoutError:
                continue
            except (OSError, EOFError, paramiko.SSHException):
                self._broke()
                return None
            if not data:
                # The loop ended (no `timeout` there, a bad line, the host closed it).
                self._broke()
                return None
            buf += data

    def _open(self, t0: float) -> bool | RunResult | None:
        """True: the channel is open; None: use a per-read command; else the host's failure."""
        if self._closed or self.opens >= MAX_OPENS:
            return None
        now = time.monotonic()
        if self._broken_at is not None and now - self._broken_at < REOPEN_AFTER_S:
            return None
        try:
            chan, address, release = self.opener.open_channel(self.host, self.script)
        except RemoteError as exc:
            # The host itself cannot be reached: that is the read's answer.
            return RunResult(self.host, None, seconds=time.monotonic() - t0, failure=exc)
        except NotSent:
            self.opens += 1
            self._broken_at = now
            return None
        self.opens += 1
        self._chan, self._address, self._release = chan, address, release
        if self._closed:  # closed while it opened
            self._drop()
            return None
        return True

    def _give_up(self, exc: Exception, t0: float) -> RunResult:
        """The read failed on the host (too slow, too large): closed, and said as a failure."""
        address = self._address
        self._broke()
        failure = classify(exc, self.host, address, self.opener.env)
        return RunResult(self.host, None, seconds=time.monotonic() - t0, failure=failure)

    def _broke(self) -> None:
        self._broken_at = time.monotonic()
        self._drop()

    def _drop(self) -> None:
        release, self._release, self._chan = self._release, None, None
        if release is not None:
            release()
