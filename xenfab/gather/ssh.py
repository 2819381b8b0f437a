"""The SSH edge: open a Fabric connection that checks host keys, run one command, map errors.

Fabric accepts any host key (AutoAddPolicy); a root session to every hypervisor must not, so
connections here reject unknown and changed keys unless the environment opts out explicitly.

Speed (a gather opens one connection per host, 100 at a time): known_hosts files are parsed once
per process and file version, not once per connection (paramiko's HostKeys.load is quadratic in
the file's lines); each Connection keeps its connect_kwargs and inline_ssh_env to itself, because
Fabric otherwise writes them into the config all threads share (the key list grew by one key per
connection, and every write re-merged the whole config under the other threads' feet); and the
command runs on a bare paramiko channel, not through Invoke's Runner, whose three threads per
command poll every 10 ms; and each host's ssh_config lookup walks only the stanzas that can apply
to it (IndexedSSHConfig), not every stanza of a config with one per host.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from ..cluster import Output
from ..config import Environment
from ..textsafe import printable
from .batch import MAX_OUTPUT_BYTES, bounded
from .hostkeys import KnownHosts, read_known_hosts


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
    # No second cfg.load_ssh_config(): Config() has loaded the files already, and loading them
    # again doubled every stanza (each Connection's lookup walks them all, twice).
    index_ssh_config(cfg)
    return cfg


def index_ssh_config(cfg: Config) -> Config:
    """Give ``cfg`` an indexed copy of its parsed ssh_config (same rules, same lookups)."""
    base = cfg.base_ssh_config
    if not isinstance(base, IndexedSSHConfig):
        cfg._set(base_ssh_config=IndexedSSHConfig(base._config))
    # Fabric's clone() (each ProxyJump hop clones the config) otherwise parses the ssh_config
    # files again into this shared config: every stanza once more per gatewayed connection,
    # while other threads look hosts up in it. The files are loaded already; the clone still
    # gets a deep copy of the rules.
    cfg._set(_given_explicit_object=True)
    return cfg


_WILDCARDS = frozenset("*?[")


class IndexedSSHConfig(paramiko.SSHConfig):
    """A paramiko SSHConfig whose lookup skips the Host stanzas that cannot match the host.

    paramiko's lookup walks every stanza twice per host (and calls getpass.getuser() for each
    one that does not match): with one stanza per host, a gather's lookups were quadratic, a
    third of xenfab's CPU on 100 hosts. A Host stanza whose positive patterns are all literal
    can only apply to a host equal to one of them, so it is indexed under those names; every
    other stanza (wildcards, Match) is walked for every host. paramiko's own _lookup then runs
    on that sub-list in file order, so values, precedence, negation, Match, tokens and
    canonicalization are paramiko's: a stanza left out is one that paramiko would skip.
    """

    def __init__(self, rules: list[dict] | None = None) -> None:
        super().__init__()
        if rules is not None:
            # Shared, not copied: rules parsed into either object later are seen by both.
            self._config = rules
        self._index: tuple | None = None

    def _lookup(
        self,
        hostname: str,
        options: paramiko.SSHConfigDict | None = None,
        canonical: bool = False,
        final: bool = False,
    ) -> paramiko.SSHConfigDict:
        # Per call, not per object: the rules are shared by every thread of a gather.
        view = paramiko.SSHConfig()
        view._config = self._candidates(hostname)
        return paramiko.SSHConfig._lookup(view, hostname, options, canonical, final)

    def _candidates(self, hostname: str) -> list[dict]:
        rules = self._config
        index = self._index
        # parse() only appends; a new list or a longer one means the index is stale.
        if index is None or index[0] is not rules or index[1] != len(rules):
            index = self._index = _build_index(rules)
        _, _, literal, always = index
        named = literal.get(os.path.normcase(hostname))
        if not named:
            return [rules[i] for i in always]
        return [rules[i] for i in heapq.merge(named, always)]


def _build_index(rules: list[dict]) -> tuple:
    # fnmatch compares normcase'd names, and a pattern without * ? [ matches only itself.
    literal: dict[str, list[int]] = {}
    always: list[int] = []
    for i, rule in enumerate(rules):
        patterns = rule.get("host")
        positive = [p for p in patterns if not p.startswith("!")] if _is_list(patterns) else None
        if "matches" in rule or not positive or any(ch in _WILDCARDS for p in positive for ch in p):
            always.append(i)
            continue
        for name in dict.fromkeys(os.path.normcase(p) for p in positive):
            literal.setdefault(name, []).append(i)
    return rules, len(rules), literal, always


def _is_list(patterns: object) -> bool:
    return isinstance(patterns, (list, tuple)) and all(isinstance(p, str) for p in patterns)


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
        # paramiko checks the key filed under this name only (SSHClient.connect), so the
        # client needs just those entries of the (cached) known_hosts files.
        name = conn.host if int(conn.port) == 22 else f"[{conn.host}]:{conn.port}"
        known = _trusted_keys(tuple(known_hosts_files(conn, env)))
        revoked = list((known.revoked.lookup(name) or {}).values())
        conn.client.set_missing_host_key_policy(_RejectPolicy(revoked))
        found = known.keys.lookup(name)
        client_keys = conn.client.get_host_keys()
        for keytype, key in (found or {}).items():
            # A key both trusted and @revoked is revoked (OpenSSH refuses it).
            if key not in revoked:
                client_keys.add(name, keytype, key)
    return conn


class RevokedHostKey(paramiko.SSHException):
    """The host offered a key that a known_hosts file marks @revoked."""


class _RejectPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko's RejectPolicy, naming a @revoked key as such."""

    def __init__(self, revoked: list[paramiko.PKey]):
        self.revoked = revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        """Refuse the key; say so when it is a revoked one."""
        if key in self.revoked:
            raise RevokedHostKey(f"host key for {hostname} is marked @revoked in known_hosts")
        raise paramiko.SSHException(f"Server {hostname!r} not found in known_hosts")


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


_KEYS_LOCK = threading.Lock()
_KEYS_CACHE: dict[tuple, KnownHosts] = {}
_NOTED: set[str] = set()


def _trusted_keys(paths: tuple[str, ...]) -> KnownHosts:
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
        known = _KEYS_CACHE.get(key)
        if known is None:
            known = KnownHosts(paramiko.HostKeys(), paramiko.HostKeys(), [])
            for path, *_ in stamp:
                one = read_known_hosts(path)
                # First file first: paramiko's lookup takes the first entry for a name.
                for target, source in ((known.keys, one.keys), (known.revoked, one.revoked)):
                    for entry in source._entries:
                        target._entries.append(entry)
                known.notes += one.notes
            if len(_KEYS_CACHE) > 8:
                _KEYS_CACHE.clear()
            _KEYS_CACHE[key] = known
        fresh = [n for n in known.notes if n not in _NOTED]
        _NOTED.update(fresh)
    for note in fresh:
        # Once per process and line: a note, not an error (the line is skipped).
        print(f"note: {printable(note)}", file=sys.stderr)
    return known


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


def run(
    host: str, command: str, env: Environment, cfg: Config, timeout: float | None = None
) -> RunResult:
    """Connect to ``host`` and run ``command``; never raises, errors come back as text."""
    start = time.monotonic()
    conn = connect(host, env, cfg)
    address = f"{conn.host}:{conn.port}"
    try:
        conn.open()
        out = execute(conn, command, timeout or env.ssh.command_timeout, env.ssh.connect_timeout)
        return RunResult(host, out, None, time.monotonic() - start, address)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line host error
        return RunResult(host, None, describe(exc, host, address, env), time.monotonic() - start)
    finally:
        conn.close()


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


# How often a read waiting on stdout looks at stderr: only matters if a command writes more
# stderr than the channel window holds while printing no stdout.
_STDERR_POLL = 0.5


def execute(conn: Connection, command: str, timeout: float, open_timeout: float = 10) -> Output:
    """Run ``command`` on the opened ``conn``; its stdout and exit code (stderr is dropped)."""
    transport = conn.client.get_transport()
    if transport is None or not transport.is_active():
        raise paramiko.SSHException("SSH transport closed")
    deadline = time.monotonic() + timeout
    chan = transport.open_session(timeout=open_timeout)
    try:
        # The host kills the command (its process group) at the deadline: closing the channel
        # alone leaves an awk reading a huge file running there.
        chan.exec_command(bounded(command, timeout))
        # No input: the remote side reads EOF at once instead of waiting for a terminal.
        chan.shutdown_write()
        chunks: list[bytes] = []
        size = 0
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
        if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
            raise CommandTimeout(timeout)
        code = chan.recv_exit_status()
    finally:
        chan.close()
    # -1: the server sent no exit status (the process was killed); the shell's 255 says so.
    return Output(b"".join(chunks).decode("utf-8", errors="replace"), code if code >= 0 else 255)


def describe(exc: BaseException, host: str, address: str, env: Environment) -> str:
    """A one-line message for an SSH failure, naming the host and what to do."""
    where = f"{host} ({address})"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        # paramiko tried every address of the host; the first refusal or error says enough.
        exc = next(iter(exc.errors.values()))
    if isinstance(exc, RevokedHostKey):
        return (
            f"{where}: host key REVOKED ({exc}); refusing to connect. Find out why it was "
            "revoked before you trust any key for this host"
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        digest = hashlib.sha256(exc.key.asbytes()).digest()
        fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
        return (
            f"{where}: host key CHANGED (got {exc.key.get_name()} {fingerprint}); refusing to "
            f"connect. If the host was reinstalled, check that fingerprint on its console, then "
            f"run: fab trust-host {host} --replace"
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
    if isinstance(exc, (CommandTimeout, CommandTimedOut)):
        return f"{where}: command still running after {exc.timeout:g} s; gave up (killed there)"
    if isinstance(exc, OutputTooLarge):
        return f"{where}: the command {exc}; gave up"
    if isinstance(exc, socket.gaierror):
        return f"{where}: cannot resolve host name ({exc.strerror})"
    if isinstance(exc, OSError):
        return f"{where}: {exc.strerror or exc}"
    text = str(exc).strip().splitlines()
    first = printable(text[0][:300]) if text else ""
    return f"{where}: {type(exc).__name__}: {first}".rstrip(": ")
