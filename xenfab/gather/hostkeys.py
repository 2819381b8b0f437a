"""Host keys: fetch a host's key, show its fingerprint, and trust it in a known_hosts file."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import tempfile
from dataclasses import dataclass

import paramiko
from fabric import Config, Connection

from ..config import Environment
from ..errors import RemoteError, XenfabError
from ..textsafe import printable


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


@dataclass
class KnownHosts:
    """A known_hosts file read as OpenSSH reads it: trusted keys, revoked keys, notes."""

    keys: paramiko.HostKeys
    revoked: paramiko.HostKeys
    notes: list[str]


def parse_known_hosts(text: str, source: str = "known_hosts") -> KnownHosts:
    """Read known_hosts text: plain lines trusted, ``@revoked`` refused, ``@cert-authority`` noted.

    paramiko's own loader reads a marker as a host name and ends in a traceback on the next
    field; and it would trust a ``@revoked`` key. Lines it cannot use (unknown key types such as
    ``sk-ssh-ed25519@openssh.com``, bad base64) are skipped, as OpenSSH skips them.
    """
    keys, revoked, notes = paramiko.HostKeys(), paramiko.HostKeys(), []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        target = keys
        if line.startswith("@"):
            marker, _, rest = line.partition(" ")
            rest = rest.strip()
            if marker == "@revoked":
                target, line = revoked, rest
            elif marker == "@cert-authority":
                # Host certificates are not what xenfab checks (paramiko offers plain keys).
                notes.append(
                    f"{source} line {lineno}: @cert-authority line skipped "
                    "(xenfab checks host keys, not host certificates)"
                )
                continue
            else:
                notes.append(f"{source} line {lineno}: unknown marker {printable(marker)}: skipped")
                continue
        entry = _entry(line)
        if entry is None:
            continue
        for name in entry.hostnames:
            target.add(name, entry.key.get_name(), entry.key)
    return KnownHosts(keys, revoked, notes)


def _entry(line: str) -> paramiko.hostkeys.HostKeyEntry | None:
    try:
        return paramiko.hostkeys.HostKeyEntry.from_line(line)
    except Exception:  # noqa: BLE001 - a line paramiko cannot read is skipped, never a crash
        return None


def read_known_hosts(path: str) -> KnownHosts:
    """``parse_known_hosts`` of a file; a file that cannot be read is an empty one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        text = ""
    return parse_known_hosts(text, source=path)


def _names_of(field: str, names: list[str]) -> list[str]:
    """Which of ``names`` the host field of a known_hosts line lists (hashed entries too)."""
    found = []
    for item in field.split(","):
        if item.startswith("|1|"):
            parts = item.split("|")
            salt = parts[2] if len(parts) > 3 else ""
            found += [n for n in names if paramiko.HostKeys.hash_host(n, salt) == item]
        elif item in names:
            found.append(item)
    return found


def trust(hk: HostKey, path: str, replace: bool = False) -> str:
    """Record ``hk`` in ``path``; a different key already there is kept unless ``replace``.

    The file is edited, not rewritten: only the lines that hold a key of this type for these
    names are touched (replaced with ``replace``), the new line is appended, and every other
    byte (comments, markers, key types paramiko does not know) stays as it was.
    """
    keytype = hk.key.get_name()
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        data = b""
    lines = data.splitlines(keepends=True)
    ours: list[tuple[int, list[str], bool]] = []  # line index, our names on it, same key
    have = set()
    for i, raw in enumerate(lines):
        text = raw.decode("utf-8", errors="replace").strip()
        if not text or text.startswith(("#", "@")):
            continue
        fields = text.split()
        if len(fields) < 3 or fields[1] != keytype:
            continue
        names = _names_of(fields[0], hk.names)
        if not names:
            continue
        entry = _entry(text)
        same = entry is not None and entry.key == hk.key
        if same:
            have.update(names)
        ours.append((i, names, same))
    if have >= set(hk.names):
        return "already trusted"
    conflicts = [(i, names) for i, names, same in ours if not same]
    if conflicts and not replace:
        name = conflicts[0][1][0]
        raise XenfabError(
            f"{hk.host}: {path} holds another {keytype} key for {name}; "
            "if the host was reinstalled, give --replace"
        )
    drop = {i for i, _ in conflicts}
    out = []
    for i, raw in enumerate(lines):
        if i not in drop:
            out.append(raw)
            continue
        # A line that also names other hosts keeps them (with its old key); ours go.
        text = raw.decode("utf-8", errors="replace")
        head, sep, rest = text.lstrip().partition(" ")
        others = [n for n in head.split(",") if not _names_of(n, hk.names)]
        if others:
            out.append((",".join(others) + sep + rest).encode())
    if out and not out[-1].endswith(b"\n"):
        out[-1] += b"\n"
    out.append(f"{','.join(hk.names)} {keytype} {hk.key.get_base64()}\n".encode())
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".known_hosts.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(out))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return "trusted"
