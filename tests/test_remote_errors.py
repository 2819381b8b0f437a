"""The remote layer's classifier: each kind from a real paramiko or socket exception."""

from __future__ import annotations

import errno
import socket

import paramiko
import pytest

from xenfab.config import Environment, HostEntry, SSHSettings
from xenfab.errors import ExitCode, XenfabError
from xenfab.remote import errors as rerr
from xenfab.remote.channel import CommandLost, CommandTimeout, NotSent, OutputTooLarge
from xenfab.remote.hostkeys import RejectPolicy

WHERE = "xen01 (127.0.0.11:22)"


def _env(connect_timeout: float = 10) -> Environment:
    return Environment(
        name="t",
        hosts=[HostEntry("xen01")],
        master=None,
        guest_config_dir="/x",
        ssh=SSHSettings(connect_timeout=connect_timeout),
    )


def classify(exc: BaseException, connect_timeout: float = 10) -> rerr.RemoteError:
    return rerr.classify(exc, "xen01", "127.0.0.11:22", _env(connect_timeout))


def _raised(fn, *args) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the test wants the exception itself
        return exc
    raise AssertionError(f"{fn} raised nothing")


@pytest.fixture(scope="module")
def keys() -> tuple[paramiko.PKey, paramiko.PKey]:
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _refused() -> ConnectionRefusedError:
    port = _closed_port()
    exc = _raised(socket.create_connection, ("127.0.0.1", port), 2)
    assert isinstance(exc, ConnectionRefusedError)
    return exc


def test_changed_host_key(keys):
    got, expected = keys
    err = classify(paramiko.BadHostKeyException("xen01", got, expected))
    assert type(err) is rerr.HostKeyChanged and err.kind == "host-key-changed"
    assert isinstance(err, rerr.HostKeyError)
    fp = rerr.fingerprint(got)
    assert err.fingerprint == fp
    assert err.message == (
        f"{WHERE}: host key CHANGED (got {got.get_name()} {fp}); refusing to connect. If the host "
        "was reinstalled, check that fingerprint on its console, then run: "
        "fab trust-host xen01 --replace"
    )
    assert (err.host, err.address) == ("xen01", "127.0.0.11:22")


def test_unknown_and_revoked_host_keys_from_the_policy(keys):
    got, _ = keys
    client = paramiko.SSHClient()
    unknown = classify(_raised(RejectPolicy([]).missing_host_key, client, "[h]:22", got))
    assert type(unknown) is rerr.HostKeyUnknown and unknown.kind == "host-key-unknown"
    assert unknown.message.startswith(f"{WHERE}: unknown host key; refusing to connect.")
    revoked = classify(_raised(RejectPolicy([got]).missing_host_key, client, "[h]:22", got))
    assert type(revoked) is rerr.HostKeyRevoked and revoked.kind == "host-key-revoked"
    assert "host key REVOKED" in revoked.message


def test_auth_failures():
    err = classify(paramiko.AuthenticationException("Authentication failed."))
    assert type(err) is rerr.AuthFailed and err.kind == "auth-failed"
    assert err.message == f"{WHERE}: authentication failed (Authentication failed.)"
    none = classify(paramiko.SSHException("No authentication methods available"))
    assert none.kind == "auth-failed" and "no key to offer" in none.message


def test_refused_alone_and_as_paramiko_reports_it():
    exc = _refused()
    err = classify(exc)
    assert type(err) is rerr.Refused and err.kind == "refused"
    assert err.message == f"{WHERE}: connection refused"
    # SSHClient.connect tried every address and wraps each error.
    wrapped = paramiko.ssh_exception.NoValidConnectionsError({("127.0.0.1", 22): exc})
    assert classify(wrapped).kind == "refused"


def test_connect_timeout():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), 2) as sock:
            sock.settimeout(0.01)
            exc = _raised(sock.recv, 1)  # the server never says a word
    err = classify(exc, connect_timeout=7)
    assert type(err) is rerr.ConnectTimeout and err.kind == "timeout"
    assert err.message == f"{WHERE}: no answer within 7 s"


def test_unresolvable():
    exc = _raised(socket.getaddrinfo, "no-such-host.invalid", 22)
    assert isinstance(exc, socket.gaierror)
    err = classify(exc)
    assert type(err) is rerr.Unresolvable and err.kind == "unresolvable"
    assert err.message == f"{WHERE}: cannot resolve host name ({exc.strerror})"


def test_other_network_errors_are_unreachable():
    err = classify(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert type(err) is rerr.Unreachable and err.kind == "unreachable"
    assert err.message == f"{WHERE}: No route to host"


def test_command_limits_and_lost():
    timed = classify(CommandTimeout(3))
    assert type(timed) is rerr.CommandTimeoutError and timed.kind == "command-timeout"
    assert timed.message == f"{WHERE}: command still running after 3 s; gave up (killed there)"
    big = classify(OutputTooLarge(10))
    assert big.kind == "output-too-large"
    assert (
        big.message
        == f"{WHERE}: the command printed more than 10 bytes (MAX_OUTPUT_BYTES); gave up"
    )
    lost = classify(CommandLost("connection lost while the command ran (EOF)"))
    assert type(lost) is rerr.Lost and lost.kind == "lost"
    assert lost.message == f"{WHERE}: connection lost while the command ran (EOF)"
    assert all(isinstance(e, rerr.CommandError) for e in (timed, big, lost))


def test_not_sent_is_classified_by_its_cause():
    assert classify(NotSent(_refused())).kind == "refused"


def test_anything_else_is_other_on_one_line():
    err = classify(paramiko.SSHException("Error reading SSH protocol banner\nsecond line"))
    assert type(err) is rerr.RemoteError and err.kind == "other"
    assert err.message == f"{WHERE}: SSHException: Error reading SSH protocol banner"
    assert classify(EOFError()).message == f"{WHERE}: EOFError"


def test_a_typed_error_passes_through_and_every_kind_is_listed(keys):
    err = classify(_refused())
    assert classify(err) is err
    kinds = {
        cls.kind
        for cls in (
            rerr.HostKeyChanged,
            rerr.HostKeyUnknown,
            rerr.HostKeyRevoked,
            rerr.AuthFailed,
            rerr.Refused,
            rerr.ConnectTimeout,
            rerr.Unresolvable,
            rerr.Unreachable,
            rerr.CommandTimeoutError,
            rerr.OutputTooLargeError,
            rerr.Lost,
            rerr.RemoteError,
        )
    }
    assert kinds == set(rerr.KINDS) and len(rerr.KINDS) == len(kinds)
    assert {"host-key-changed", "host-key-unknown", "host-key-revoked"} == rerr.HOST_KEY_KINDS


def test_a_remote_error_is_a_one_line_user_error_with_exit_2():
    err = classify(_refused())
    assert isinstance(err, XenfabError) and err.exit_code == ExitCode.INCOMPLETE
    assert str(err) == err.message
    renamed = rerr.reworded(err, "xen01 (127.0.0.11:22): Connection refused")
    assert renamed is err and str(err) == err.message and err.kind == "refused"
