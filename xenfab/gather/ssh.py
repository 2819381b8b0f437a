"""The SSH edge: open a Fabric connection that checks host keys, run one command, map errors.

Fabric accepts any host key (AutoAddPolicy); a root session to every hypervisor must not, so
connections here reject unknown and changed keys unless the environment opts out explicitly.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from ..cluster import Output
from ..config import Environment


@dataclass
class RunResult:
    """Outcome of one remote command: output, or an error message saying what failed where."""

    host: str
    output: Output | None
    error: str | None = None
    seconds: float = 0.0
    address: str | None = None


def fabric_config(env: Environment, base: object | None = None) -> Config:
    """A Fabric config for ``env``: its ssh_config, with -i/-t/passphrase taken from ``base``."""
    ssh_path = env.ssh.config or getattr(base, "_runtime_ssh_path", None)
    cfg = Config(runtime_ssh_path=ssh_path) if ssh_path else Config()
    if isinstance(base, Config):
        # What the user gave `fab` on its command line (-i, -t, --prompt-for-passphrase) wins.
        kwargs = dict(base.connect_kwargs or {})
        # `fab -t N` arrives as connect_kwargs["timeout"]; Connection refuses it there when it
        # also has a connect timeout, so it becomes the connect timeout instead.
        timeout = kwargs.pop("timeout", None) or base.timeouts.connect
        cfg.connect_kwargs.update(kwargs)
        if timeout:
            cfg.timeouts.connect = int(timeout)
    if env.ssh.key_filename:
        cfg.connect_kwargs["key_filename"] = [env.ssh.key_filename]
    cfg.load_ssh_config()
    return cfg


def connect(host: str, env: Environment, cfg: Config) -> Connection:
    """A not-yet-opened Connection to ``host`` with host key checking per the environment."""
    conn = Connection(
        host,
        user=env.ssh.user,
        port=env.ssh.port,
        config=cfg,
        connect_timeout=None if cfg.timeouts.connect else int(env.ssh.connect_timeout),
    )
    if env.ssh.host_key_check == "strict":
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        for path in known_hosts_files(conn, env):
            try:
                conn.client.load_host_keys(path)
            except (OSError, paramiko.SSHException):
                continue
    return conn


def known_hosts_files(conn: Connection, env: Environment) -> list[str]:
    """Where host keys for this connection are trusted from, in order."""
    files = []
    if env.ssh.known_hosts:
        files.append(env.ssh.known_hosts)
    for item in (conn.ssh_config.get("userknownhostsfile") or "").split():
        files.append(os.path.expanduser(item))
    files.append(os.path.expanduser("~/.ssh/known_hosts"))
    return [f for f in dict.fromkeys(files) if os.path.isfile(f)]


def run(host: str, command: str, env: Environment, cfg: Config, timeout: float | None = None):
    """Connect to ``host`` and run ``command``; never raises, errors come back as text."""
    start = time.monotonic()
    conn = connect(host, env, cfg)
    address = f"{conn.host}:{conn.port}"
    try:
        conn.open()
        res = conn.run(
            command,
            hide=True,
            warn=True,
            in_stream=False,
            timeout=timeout or env.ssh.command_timeout,
        )
        out = Output(res.stdout, res.exited if res.exited is not None else 255)
        return RunResult(host, out, None, time.monotonic() - start, address)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line host error
        return RunResult(host, None, describe(exc, host, address, env), time.monotonic() - start)
    finally:
        conn.close()


def describe(exc: BaseException, host: str, address: str, env: Environment) -> str:
    """A one-line message for an SSH failure, naming the host and what to do."""
    where = f"{host} ({address})"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        # paramiko tried every address of the host; the first refusal or error says enough.
        exc = next(iter(exc.errors.values()))
    if isinstance(exc, paramiko.BadHostKeyException):
        return (
            f"{where}: host key CHANGED (got {exc.key.get_name()} "
            f"{exc.key.get_fingerprint().hex()}); refusing to connect. If the host was "
            f"reinstalled, remove the old key and run: fab trust-host {host}"
        )
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return (
            f"{where}: unknown host key; refusing to connect. Check it, then run "
            f"`fab trust-host {host}` (or add it with ssh-keyscan to known_hosts)"
        )
    if isinstance(exc, paramiko.SSHException) and "No authentication methods" in str(exc):
        return (
            f"{where}: authentication failed: no key to offer "
            "(give fab -i KEY, or IdentityFile in the ssh_config)"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return f"{where}: authentication failed ({exc})"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"{where}: no answer within {env.ssh.connect_timeout:g} s"
    if isinstance(exc, CommandTimedOut):
        return f"{where}: command still running after {exc.timeout} s; gave up"
    if isinstance(exc, socket.gaierror):
        return f"{where}: cannot resolve host name ({exc.strerror})"
    if isinstance(exc, OSError):
        return f"{where}: {exc.strerror or exc}"
    text = str(exc).strip().splitlines()
    return f"{where}: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
