"""What went wrong reaching a host, as typed values: one class per kind, one classifier.

Code branches on ``kind`` (or the class), never on the message: the message is the one line a
person reads (it names the host and what to do) and may be reworded; the kinds are stable and
are written into snapshots (``Host.error_kind``) and ``fab check --format json``.
"""

from __future__ import annotations

import base64
import hashlib
import socket

import paramiko
from invoke.exceptions import CommandTimedOut

from ..config import Environment
from ..errors import RemoteError
from ..textsafe import printable
from .channel import CommandLost, CommandTimeout, NotSent, OutputTooLarge


class RevokedHostKey(paramiko.SSHException):
    """The host offered a key that a known_hosts file marks @revoked (paramiko-level signal)."""


class HostKeyError(RemoteError):
    """The host's key is not one known_hosts trusts: xenfab refused to log in."""


class HostKeyChanged(HostKeyError):
    """The host offered a key other than the one known_hosts has for it."""

    kind = "host-key-changed"

    def __init__(self, message: str, *, fingerprint: str = "", **where: str | None) -> None:
        super().__init__(message, **where)
        self.fingerprint = fingerprint


class HostKeyUnknown(HostKeyError):
    """known_hosts has no key for the host."""

    kind = "host-key-unknown"


class HostKeyRevoked(HostKeyError):
    """The host offered a key that known_hosts marks @revoked."""

    kind = "host-key-revoked"


class ConnectError(RemoteError):
    """No session could be opened: the host did not answer, refused, or refused the login."""


class AuthFailed(ConnectError):
    """The host answered but did not accept our key (or we had none to offer)."""

    kind = "auth-failed"


class Refused(ConnectError):
    """Nothing listens on the host's SSH port."""

    kind = "refused"


class ConnectTimeout(ConnectError):
    """The host did not answer within the connect timeout."""

    kind = "timeout"


class Unresolvable(ConnectError):
    """The host name does not resolve."""

    kind = "unresolvable"


class Unreachable(ConnectError):
    """The network said no (no route to the host, network down, reset before login)."""

    kind = "unreachable"


class CommandError(RemoteError):
    """The session was open but the command gave no usable answer."""


class CommandTimeoutError(CommandError):
    """The command was still running when its time was up (it is killed on the host)."""

    kind = "command-timeout"


class OutputTooLargeError(CommandError):
    """The command printed more than the remote layer reads."""

    kind = "output-too-large"


class Lost(CommandError):
    """The connection broke after the command was sent: it may or may not have run."""

    kind = "lost"


# Every kind, for validation and documentation; "other" is RemoteError itself.
KINDS: tuple[str, ...] = (
    "host-key-changed",
    "host-key-unknown",
    "host-key-revoked",
    "auth-failed",
    "refused",
    "timeout",
    "unresolvable",
    "unreachable",
    "command-timeout",
    "output-too-large",
    "lost",
    "other",
)
HOST_KEY_KINDS = frozenset(k for k in KINDS if k.startswith("host-key-"))


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of ``key``, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def reworded(err: RemoteError, message: str) -> RemoteError:
    """``err`` (same kind, host and address) saying ``message`` instead."""
    err.message = message
    err.args = (message,)
    return err


def classify(exc: BaseException, host: str, address: str, env: Environment) -> RemoteError:
    """The typed error for a failure reaching ``host``, with its one-line message.

    ``exc`` is what paramiko, the socket layer or the channel reader raised; a RemoteError is
    returned as it is.
    """
    if isinstance(exc, RemoteError):
        return exc
    where = f"{host} ({address})"
    at = {"host": host, "address": address}
    if isinstance(exc, NotSent):
        # The command never left: what broke is the connection, said as such.
        exc = exc.cause
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        # paramiko tried every address of the host; the first refusal or error says enough.
        exc = next(iter(exc.errors.values()))
    if isinstance(exc, RevokedHostKey):
        return HostKeyRevoked(
            f"{where}: host key REVOKED ({exc}); refusing to connect. Find out why it was "
            "revoked before you trust any key for this host",
            **at,
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        got = fingerprint(exc.key)
        return HostKeyChanged(
            f"{where}: host key CHANGED (got {exc.key.get_name()} {got}); refusing to "
            f"connect. If the host was reinstalled, check that fingerprint on its console, then "
            f"run: fab trust-host {host} --replace",
            fingerprint=got,
            **at,
        )
    # paramiko says these two in words only (RejectPolicy's and SSHClient's own texts; our
    # _RejectPolicy raises the first): the one place a message is read, at the source.
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return HostKeyUnknown(
            f"{where}: unknown host key; refusing to connect. Check it, then run "
            f"`fab trust-host {host}` (or add it with ssh-keyscan to known_hosts)",
            **at,
        )
    if isinstance(exc, paramiko.SSHException) and "No authentication methods" in str(exc):
        return AuthFailed(
            f"{where}: authentication failed: no key to offer "
            "(give fab -i KEY, or IdentityFile in the ssh_config)",
            **at,
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return AuthFailed(f"{where}: authentication failed ({exc})", **at)
    if isinstance(exc, ConnectionRefusedError):
        return Refused(f"{where}: connection refused", **at)
    if isinstance(exc, (CommandTimeout, CommandTimedOut)):
        return CommandTimeoutError(
            f"{where}: command still running after {exc.timeout:g} s; gave up (killed there)",
            **at,
        )
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ConnectTimeout(f"{where}: no answer within {env.ssh.connect_timeout:g} s", **at)
    if isinstance(exc, OutputTooLarge):
        return OutputTooLargeError(f"{where}: the command {exc}; gave up", **at)
    if isinstance(exc, CommandLost):
        return Lost(f"{where}: {exc}", **at)
    if isinstance(exc, socket.gaierror):
        return Unresolvable(f"{where}: cannot resolve host name ({exc.strerror})", **at)
    if isinstance(exc, OSError):
        return Unreachable(f"{where}: {exc.strerror or exc}", **at)
    text = str(exc).strip().splitlines()
    first = printable(text[0][:300]) if text else ""
    return RemoteError(f"{where}: {type(exc).__name__}: {first}".rstrip(": "), **at)
