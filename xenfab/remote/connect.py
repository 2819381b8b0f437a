"""Open a Fabric connection that checks host keys, cheaply enough for 100 hosts at once.

Speed (a gather opens one connection per host, 100 at a time): each Connection keeps its
connect_kwargs and inline_ssh_env to itself, because Fabric otherwise writes them into the config
all threads share (the key list grew by one key per connection, and every write re-merged the
whole config under the other threads' feet); and the socket acknowledges at once (transport).
"""

from __future__ import annotations

import contextlib
import socket

import paramiko
from fabric import Config, Connection

from ..config import Environment
from .hostkeys import check_host_keys


class _Connection(Connection):
    # Fabric's Connection keeps inline_ssh_env in the (shared) config, being no class attribute:
    # every Connection() re-merged the whole config, and a thread reading it meanwhile saw it
    # empty ("No attribute or config key found for 'user'"). A class attribute keeps it local.
    inline_ssh_env = None


def connect(host: str, env: Environment, cfg: Config) -> Connection:
    """A not-yet-opened Connection to ``host`` with host key checking per the environment."""
    # A non-empty dict of our own: Fabric merges the config's and ssh_config's keys into it
    # instead of into cfg, which every thread of a gather shares.
    kwargs = {key: cfg.connect_kwargs[key] for key in cfg.connect_kwargs}
    kwargs["key_filename"] = []
    kwargs.setdefault("transport_factory", transport)
    conn = _Connection(
        host,
        user=env.ssh.user,
        port=env.ssh.port,
        config=cfg,
        connect_timeout=None if cfg.timeouts.connect else int(env.ssh.connect_timeout),
        connect_kwargs=kwargs,
    )
    if env.ssh.host_key_check == "strict":
        check_host_keys(conn, env)
    return conn


def transport(sock: object, **kwargs: object) -> paramiko.Transport:
    """The paramiko Transport for a connected socket (SSHClient.connect's transport_factory)."""
    # sshd leaves Nagle on for sessions without a terminal, and Linux delays ACKs: each small
    # message that follows another unacknowledged one (userauth after the key exchange, the
    # channel confirmation after sshd's host key notice) waited 40 ms for our delayed ACK.
    # No Nagle on our side, and what we read is acknowledged at once: a login that ran `true`
    # took 0.11 s, now 0.025 s. A gateway's channel or a ProxyCommand is left as it is.
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_QUICKACK"):
            sock = _AckingSocket(sock)
    return paramiko.Transport(sock, **kwargs)


class _AckingSocket:
    """A TCP socket that acknowledges what it has read at once (Linux TCP_QUICKACK)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, size: int) -> bytes:
        """Read, then send the ACK the kernel would have delayed (QUICKACK is not sticky)."""
        data = self._sock.recv(size)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)
