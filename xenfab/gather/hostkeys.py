"""Host keys: fetch a host's key, show its fingerprint, and trust it in a known_hosts file."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from dataclasses import dataclass

import paramiko
from fabric import Config, Connection

from ..config import Environment
from ..errors import RemoteError, XenfabError


@dataclass
class HostKey:
    """A host's public key as offered on connection, and the names known_hosts files it under."""

    host: str
    address: str
    names: list[str]
    key: paramiko.PKey

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
        digest = hashlib.sha256(self.key.asbytes()).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fetch(host: str, env: Environment, cfg: Config) -> HostKey:
    """Connect to ``host`` (as ssh_config resolves it) and read its host key, without logging in."""
    conn = Connection(host, user=env.ssh.user, port=env.ssh.port, config=cfg)
    address = f"{conn.host}:{conn.port}"
    try:
        sock = socket.create_connection((conn.host, conn.port), timeout=env.ssh.connect_timeout)
    except OSError as exc:
        raise RemoteError(f"{host} ({address}): {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=env.ssh.connect_timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError) as exc:
        raise RemoteError(f"{host} ({address}): no SSH host key offered: {exc}") from None
    finally:
        transport.close()
    canonical = conn.host if conn.port == 22 else f"[{conn.host}]:{conn.port}"
    names = [canonical] + ([host] if host != conn.host else [])
    return HostKey(host, address, names, key)


def known_hosts_path(host: str, env: Environment, cfg: Config) -> str:
    """The known_hosts file xenfab trusts keys from first for this host (and writes to)."""
    if env.ssh.known_hosts:
        return env.ssh.known_hosts
    conn = Connection(host, config=cfg)
    files = (conn.ssh_config.get("userknownhostsfile") or "").split()
    return os.path.expanduser(files[0] if files else "~/.ssh/known_hosts")


def trust(hk: HostKey, path: str, replace: bool = False) -> str:
    """Record ``hk`` in ``path``; a different key already there is kept unless ``replace``."""
    keys = paramiko.HostKeys()
    if os.path.isfile(path):
        keys.load(path)
    if all(keys.check(name, hk.key) for name in hk.names):
        return "already trusted"
    for name in hk.names:
        old = (keys.lookup(name) or {}).get(hk.key.get_name())
        if old is not None and old != hk.key and not replace:
            raise XenfabError(
                f"{hk.host}: {path} holds another {hk.key.get_name()} key for {name}; "
                "if the host was reinstalled, give --replace"
            )
    for name in hk.names:
        keys.add(name, hk.key.get_name(), hk.key)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    keys.save(path)
    return "trusted"
