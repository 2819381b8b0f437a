"""Host keys: which keys are trusted (known_hosts, read as OpenSSH reads it), the policy that
refuses the others, and `fab trust-host`: fetch a host's key, show it, record it.

Fabric accepts any host key (AutoAddPolicy); a root session to every hypervisor must not, so
connections reject unknown and changed keys unless the environment opts out explicitly.
known_hosts files are parsed once per process and file version, not once per connection
(paramiko's HostKeys.load is quadratic in the file's lines).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass

import paramiko
from fabric import Config, Connection

from ..config import Environment
from ..errors import XenfabError
from ..textsafe import printable
from .errors import RevokedHostKey, classify, fingerprint, reworded


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
        return fingerprint(self.key)


def fetch(host: str, env: Environment, cfg: Config) -> HostKey:
    """Connect to ``host`` (as ssh_config resolves it) and read its host key, without logging in."""
    conn = Connection(host, user=env.ssh.user, port=env.ssh.port, config=cfg)
    address = f"{conn.host}:{conn.port}"
    try:
        sock = socket.create_connection((conn.host, conn.port), timeout=env.ssh.connect_timeout)
    except OSError as exc:
        err = classify(exc, host, address, env)
        raise reworded(err, f"{host} ({address}): {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=env.ssh.connect_timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError) as exc:
        err = classify(exc, host, address, env)
        raise reworded(err, f"{host} ({address}): no SSH host key offered: {exc}") from None
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


class RejectPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko's RejectPolicy, naming a @revoked key as such."""

    def __init__(self, revoked: list[paramiko.PKey]):
        self.revoked = revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        """Refuse the key; say so when it is a revoked one."""
        if key in self.revoked:
            raise RevokedHostKey(f"host key for {hostname} is marked @revoked in known_hosts")
        raise paramiko.SSHException(f"Server {hostname!r} not found in known_hosts")


_KEYS_LOCK = threading.Lock()
_KEYS_CACHE: dict[tuple, list[KnownHosts]] = {}
_NOTED: set[str] = set()


def trusted_keys(paths: tuple[str, ...]) -> list[KnownHosts]:
    """The known_hosts files ``paths`` as read, in order; each read once per file version."""
    # Keyed by each file's identity and version, so `fab trust-host` (which rewrites the file)
    # is seen by the next connection of the same process.
    stamp = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        stamp.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
    key = tuple(stamp)
    with _KEYS_LOCK:
        files = _KEYS_CACHE.get(key)
        if files is None:
            files = [read_known_hosts(path) for path, *_ in stamp]
            if len(_KEYS_CACHE) > 8:
                _KEYS_CACHE.clear()
            _KEYS_CACHE[key] = files
        fresh = [n for one in files for n in one.notes if n not in _NOTED]
        _NOTED.update(fresh)
    for note in fresh:
        # Once per process and line: a note, not an error (the line is skipped).
        print(f"note: {printable(note)}", file=sys.stderr)
    return files


def known_hosts_files(conn: Connection, env: Environment) -> list[str]:
    """Where host keys for this connection are trusted from, in order.

    ``ssh.known_hosts`` in the configuration, when set, is the only one: what the admin named
    for this environment is not widened by ~/.ssh/known_hosts or the ssh_config's files.
    """
    if env.ssh.known_hosts:
        path = os.path.expanduser(env.ssh.known_hosts)
        return [path] if os.path.isfile(path) else []
    files = []
    for item in (conn.ssh_config.get("userknownhostsfile") or "").split():
        files.append(os.path.expanduser(item))
    files.append(os.path.expanduser("~/.ssh/known_hosts"))
    return [f for f in dict.fromkeys(files) if os.path.isfile(f)]


def check_host_keys(conn: Connection, env: Environment) -> None:
    """Make ``conn`` refuse any host key but the ones known_hosts trusts for it (strict mode)."""
    # paramiko checks the key filed under this name only (SSHClient.connect), so the client
    # needs just those entries of the (cached) known_hosts files.
    name = conn.host if int(conn.port) == 22 else f"[{conn.host}]:{conn.port}"
    files = trusted_keys(tuple(known_hosts_files(conn, env)))
    revoked = [key for one in files for key in (one.revoked.lookup(name) or {}).values()]
    conn.client.set_missing_host_key_policy(RejectPolicy(revoked))
    trusted: dict[str, paramiko.PKey] = {}
    for one in files:
        for keytype, key in (one.keys.lookup(name) or {}).items():
            # First file first, as paramiko's lookup takes the first entry for a name.
            trusted.setdefault(keytype, key)
    client_keys = conn.client.get_host_keys()
    for keytype, key in trusted.items():
        # A key both trusted and @revoked is revoked (OpenSSH refuses it).
        if key not in revoked:
            client_keys.add(name, keytype, key)
