"""Start, stop, inspect and break the rehearsal lab: real sshd processes on loopback addresses.

Layout of a lab directory::

    lab.json                 port, sshd groups, the emulator server: PIDs ``down`` stops
    ssh_config known_hosts   for ``ssh -F`` / Fabric: xen01 -> 127.0.0.11:PORT ...
    id_ed25519[.pub]         client key (authorized_keys holds its public half)
    sshd/                    host key, one sshd_config/pid/log per group of <= 16 addresses
    bin/labsh                sshd's ForceCommand: picks the host from the dialled address
    bin/labtool.conf         the emulator server's port and token for the C tool client
    hosts/<name>/bin/        that host's tools: its toolstack's (xl or xm, xentop), its cluster
                             manager's (rgmanager: two more), hostname
    hosts/<name>/auto/       xl backend: that host's autostart directory (see xen_tools.HOST_PATHS)
    state.db                 the shared SQLite state (see emulator.SCHEMA)
    xenconfig/               guest configs, shared by all hosts like /xenconfig on a SAN
    emulator.log             the emulator server's errors

A host's tools ask the lab's emulator server (one long-lived process on a loopback port,
``emulator.serve``) to run the tool; without the server they run the emulator as a command, with
the same output. Each is a one-line script interpreted by the C client ``labtool.c`` (built once
per machine), or a small bash wrapper where no C compiler is: a round of reads runs one tool per
host on the machine's few cores, and bash's start-up was a third of each.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import pwd
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import LabError
from . import emulator, scenario

SSHD = "/usr/sbin/sshd"
GROUP_SIZE = 16  # sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS)
# The emulated tools by family (see emulator.FAMILIES): every host gets its toolstack's, and a lab
# the tools of its backend's family, which also declares the lab's status summary, its faults,
# its host-local paths and what it sets up on disk (``HOST_TOOLS``, ``summary``, ``FAULTS``,
# ``HOST_PATHS``, ``setup``).
# Found, not listed: each family module names the backend it emulates (``BACKEND``).
TOOLSTACK = next(f for f in emulator.families() if getattr(f, "TOOLSTACK", False))
BACKENDS = {f.BACKEND: f for f in emulator.families() if getattr(f, "BACKEND", None)}
# Families every host has besides its toolstack, whatever the backend (net_tools: ping, nc).
EVERY_HOST = tuple(f for f in emulator.families() if getattr(f, "EVERY_HOST", False))
EMULATOR = Path(emulator.__file__).resolve()
# The tools' client in C (see its header), built once per machine; bash wrappers where no C
# compiler is. A Linux shebang line holds at most 255 bytes.
LABTOOL_SOURCE = EMULATOR.with_name("labtool.c")
SHEBANG_MAX = 200


def default_backend() -> str:
    """The lab's backend when none is named: the family saying ``DEFAULT``, else the toolstack's."""
    return next(
        (name for name, f in BACKENDS.items() if getattr(f, "DEFAULT", False)), TOOLSTACK.BACKEND
    )


def default_lab_dir() -> Path:
    """The lab directory: $XENFAB_LAB_DIR, else ~/.cache/xenfab/lab."""
    env = os.environ.get("XENFAB_LAB_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "xenfab" / "lab"


def _dir(lab_dir: str | os.PathLike | None) -> Path:
    path = (Path(lab_dir).expanduser() if lab_dir else default_lab_dir()).resolve()
    # the path ends up unquoted in sshd_config, ssh_config and labsh: keep it plain
    if not re.fullmatch(r"[A-Za-z0-9_./+@,=-]+", str(path)):
        raise LabError(
            f"lab directory {str(path)!r}: use a path without spaces or shell characters"
        )
    return path


@contextlib.contextmanager
def _locked(lab: Path) -> Iterator[None]:
    # One control operation at a time per lab (two `inject`s must not rewrite configs together)
    lab.mkdir(parents=True, exist_ok=True)
    with open(lab / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_info(lab: Path) -> dict | None:
    try:
        return json.loads((lab / "lab.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{lab}/lab.json is unreadable: {exc}") from None


def _existing_lab(lab: Path) -> dict:
    """The lab's recorded info; a LabError when no lab was ever brought up in ``lab``."""
    info = _read_info(lab)
    if info is None or not (lab / "state.db").exists():
        raise LabError(f"no lab in {lab}: run `fab lab.up` first")
    db = emulator.connect(str(lab))
    try:
        current = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'guests'").fetchone()
    finally:
        db.close()
    if not current:
        # brought up by an older xenfab, whose state had no neutral guests table
        raise LabError(f"the lab in {lab} is from an older xenfab: run `fab lab.up` again")
    return info


def _write_info(lab: Path, info: dict) -> None:
    tmp = lab / "lab.json.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, lab / "lab.json")


def _is_our_sshd(pid: int, config: str) -> bool:
    """True if pid is alive and is the sshd started with this config (not a recycled PID)."""
    if not pid:
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # sshd rewrites its title ("sshd: /usr/sbin/sshd -f CONFIG ... [listener]"), NULs or not
    words = raw.replace(b"\0", b" ").decode(errors="replace").split()
    return config in words


def _alive_pids(info: dict | None) -> list[int]:
    if not info:
        return []
    return [g["pid"] for g in info.get("groups", []) if _is_our_sshd(g.get("pid", 0), g["config"])]


# --------------------------------------------------------------------------- files


def _keygen(path: Path, comment: str) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    for p in (path, path.with_suffix(".pub")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    try:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise LabError("ssh-keygen not found: install openssh-client") from None
    except subprocess.CalledProcessError as exc:
        raise LabError(f"ssh-keygen failed: {exc.stderr.strip() or exc}") from None


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _host_rows(lab: Path) -> list[dict]:
    db = emulator.connect(str(lab))
    try:
        return [dict(r) for r in db.execute("SELECT * FROM hosts ORDER BY nodeid")]
    finally:
        db.close()


def _write_tools(
    lab: Path, hosts: list[dict], server: dict | None, backend: str | None = None
) -> None:
    """labsh and one bin/ per host with wrappers for the tools of its toolstack."""
    backend = backend or default_backend()
    (lab / "bin").mkdir(exist_ok=True)
    cases = "\n".join(f"{h['address']}) XENFAB_LAB_HOST={h['name']} ;;" for h in hosts)
    paths = "".join(_host_path(lab, shared, own) for shared, own in _host_paths().items())
    labsh = f"""#!/bin/sh
# xenfab lab: sshd's ForceCommand for every simulated host. The address the client dialled
# (3rd field of SSH_CONNECTION) says which host this is; its tools come first on PATH.
set -f
set -- $SSH_CONNECTION
set +f
case "$3" in
{cases}
*) echo "labsh: no lab host listens on ${{3:-?}}" >&2; exit 255 ;;
esac
XENFAB_LAB_DIR={shlex.quote(str(lab))}
PATH="$XENFAB_LAB_DIR/hosts/$XENFAB_LAB_HOST/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTNAME=$XENFAB_LAB_HOST
export XENFAB_LAB_HOST XENFAB_LAB_DIR PATH HOSTNAME
{paths}if [ -z "$SSH_ORIGINAL_COMMAND" ]; then
    exec /bin/sh
fi
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""
    _write_exec(lab / "bin" / "labsh", labsh)
    client = labtool() if server else None
    if server and client is not None:
        # Owner only, like the wrappers that held the token before.
        conf = f"{int(server['port'])}\n{server['token']}\n{sys.executable}\n{EMULATOR}\n"
        _write_exec(lab / "bin" / "labtool.conf", conf)
    hosts_dir = lab / "hosts"
    names = {h["name"] for h in hosts}
    if hosts_dir.exists():
        for old in hosts_dir.iterdir():
            if old.name not in names:
                shutil.rmtree(old)
    for h in hosts:
        bin_dir = hosts_dir / h["name"] / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        stacks = TOOLSTACK.TOOLSTACKS
        tools = stacks.get(h["toolstack"], stacks["xl"]) + BACKENDS[backend].HOST_TOOLS
        tools += tuple(t for f in EVERY_HOST for t in f.HOST_TOOLS)
        families = (*stacks.values(), *(b.HOST_TOOLS for b in BACKENDS.values()))
        every = {t for family in families for t in family}
        for stale in every - set(tools):
            with contextlib.suppress(FileNotFoundError):
                (bin_dir / stale).unlink()
        for tool in tools:
            _write_exec(bin_dir / tool, _tool_file(lab, h["name"], tool, server, client))
        _write_exec(bin_dir / "hostname", f"#!/bin/sh\necho {shlex.quote(h['name'])}\n")


def _host_paths() -> dict[str, str]:
    """Every family's host-local paths: LAB/shared -> LAB/hosts/HOST/own in a host's commands."""
    return {k: v for f in (TOOLSTACK, *BACKENDS.values()) for k, v in f.HOST_PATHS.items()}


def _host_path(lab: Path, shared: str, own: str) -> str:
    """labsh lines mapping ``LAB/shared`` to ``LAB/hosts/$XENFAB_LAB_HOST/own`` in the command.

    The lab's hosts share one filesystem; a directory each real host has of its own at one path
    (xendomains' /etc/xen/auto) is one path in the config, and this host's own in its commands.
    """
    q = shlex.quote
    return f"""# {shared}: a path of this host's own (see the lab's control.py, _host_path)
from={q(str(lab / shared))}
to="$XENFAB_LAB_DIR/hosts/$XENFAB_LAB_HOST/{own}"
case $SSH_ORIGINAL_COMMAND in
*"$from"*)
    rest=$SSH_ORIGINAL_COMMAND cmd=
    while :; do
        case $rest in
        *"$from"*) cmd=$cmd${{rest%%"$from"*}}$to rest=${{rest#*"$from"}} ;;
        *) break ;;
        esac
    done
    SSH_ORIGINAL_COMMAND=$cmd$rest
    ;;
esac
"""


def labtool() -> Path | None:
    """The compiled tool client (cached under ~/.cache/xenfab by its source's hash), or None.

    None where no C compiler is, or the build fails: the tools are then bash wrappers, with
    the same output at about twice a tool's start-up cost.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not LABTOOL_SOURCE.exists():
        return None
    source = LABTOOL_SOURCE.read_bytes()
    digest = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    path = Path.home() / ".cache" / "xenfab" / "labtool" / digest / "labtool"
    if path.exists():
        return path
    tmp = path.with_name(f"labtool.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [cc, "-O2", "-o", str(tmp), str(LABTOOL_SOURCE)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            return None
        os.replace(tmp, path)  # atomic: two labs building at once both end with one binary
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return path


def _tool_file(lab: Path, host: str, tool: str, server: dict | None, client: Path | None) -> str:
    """A host's tool: a one-line script the C client interprets, else a bash wrapper."""
    if server and client is not None and len(str(client)) <= SHEBANG_MAX:
        return (
            f"#!{client}\n# xenfab lab: `{tool}` on {host}, answered by the lab's emulator "
            "server (labtool.c; bin/labtool.conf)\n"
        )
    return _wrapper(lab, host, tool, server)


def _wrapper(lab: Path, host: str, tool: str, server: dict | None) -> str:
    """A host's tool: asks the lab's emulator server, else runs the emulator as a command."""
    command = " ".join(
        shlex.quote(str(w)) for w in (sys.executable, "-S", "-E", EMULATOR, lab, host, tool)
    )
    bash = shutil.which("bash")
    if not server or not bash:
        return f'#!/bin/sh\nexec {command} "$@"\n'
    q = shlex.quote
    # bash alone can speak TCP (/dev/tcp) and read exact byte counts (read -N, in the C locale).
    return f"""#!{bash}
# xenfab lab: `{tool}` on {host}, answered by the lab's emulator server; if it does not run,
# by the emulator started as a command (the same output, a Python start-up slower).
LC_ALL=C
if ! {{ exec 3<>/dev/tcp/127.0.0.1/{int(server["port"])}; }} 2>/dev/null; then
    exec {command} "$@"
fi
printf '%s\\0' {q(server["token"])} "$#" {q(host)} {q(tool)} "$@" >&3
while IFS=' ' read -r fd n <&3; do
    case $fd in
    1 | 2) IFS= read -r -N "$n" data <&3 && printf '%s' "$data" >&"$fd" ;;
    x) exit "$n" ;;
    esac
done
echo "{tool}: the lab's emulator server went away" >&2
exit 255
"""


def _write_exec(path: Path, text: str) -> None:
    # Owner only from the start: the wrappers hold the emulator server's token.
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- emulator server


_SERVERS: list[subprocess.Popen] = []


def _is_our_server(pid: int, lab: Path) -> bool:
    """True if pid is alive and is this lab's emulator server (not a recycled PID)."""
    if not pid:
        return False
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"--serve" in words and str(lab).encode() in words


def _start_server(lab: Path) -> dict:
    """Start the emulator server on a free loopback port; its pid, port and token."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        port = listener.getsockname()[1]
        token = secrets.token_hex(16)
        with open(lab / "emulator.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-E", str(EMULATOR), "--serve", str(lab)]
                + [str(listener.fileno())],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(listener.fileno(),),
                start_new_session=True,
                cwd=lab,
            )
        # The token goes through a pipe, not argv: /proc/PID/cmdline is world-readable.
        assert proc.stdin is not None
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.close()
        _SERVERS.append(proc)  # reaped by _stop_server; no "still running" warning meanwhile
    finally:
        listener.close()
    return {"pid": proc.pid, "port": port, "token": token}


def _live_server(lab: Path, info: dict | None) -> dict | None:
    """The lab's recorded emulator server if it is running, else None."""
    server = (info or {}).get("server") or {}
    return server if _is_our_server(server.get("pid", 0), lab) else None


def _stop_server(lab: Path, info: dict | None) -> int | None:
    server = _live_server(lab, info)
    if server is None:
        return None
    pid = server["pid"]
    _terminate(pid, lambda: _is_our_server(pid, lab))
    for proc in [proc for proc in _SERVERS if proc.pid == pid]:
        proc.poll()  # already reaped above: Popen just records it
        _SERVERS.remove(proc)
    return pid


def _write_client_files(lab: Path, hosts: list[dict], port: int) -> None:
    user = _user()
    host_pub = (lab / "sshd" / "ssh_host_ed25519_key.pub").read_text().split()
    key = f"{host_pub[0]} {host_pub[1]}"
    blocks, known = [], []
    for h in hosts:
        blocks.append(
            f"Host {h['name']}\n"
            f"    HostName {h['address']}\n"
            f"    Port {port}\n"
            f"    User {user}\n"
            f"    IdentityFile {lab / 'id_ed25519'}\n"
            f"    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {lab / 'known_hosts'}\n"
            f"    StrictHostKeyChecking yes\n"
            f"    BatchMode yes\n"
            f"    ConnectTimeout 10\n"
        )
        known.append(f"{h['name']},[{h['name']}]:{port},[{h['address']}]:{port} {key}")
    header = f"# xenfab rehearsal lab in {lab} (generated; `fab lab.up` rewrites it)\n\n"
    (lab / "ssh_config").write_text(header + "\n".join(blocks))
    (lab / "known_hosts").write_text("\n".join(known) + "\n")
    pub = (lab / "id_ed25519.pub").read_text().strip()
    (lab / "authorized_keys").write_text(pub + "\n")


def _sshd_config(lab: Path, index: int, addresses: list[str], port: int) -> str:
    sd = lab / "sshd"
    listen = "".join(f"ListenAddress {a}\n" for a in addresses)
    return (
        f"# xenfab lab sshd group {index} (generated)\n"
        f"Port {port}\n"
        f"{listen}"
        "AddressFamily inet\n"
        f"HostKey {sd / 'ssh_host_ed25519_key'}\n"
        f"PidFile {sd / f'sshd-{index}.pid'}\n"
        f"AuthorizedKeysFile {lab / 'authorized_keys'}\n"
        f"AllowUsers {_user()}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "UseDNS no\n"
        "MaxStartups 500\n"
        "MaxSessions 100\n"
        "MaxAuthTries 6\n"
        "LoginGraceTime 30\n"
        "X11Forwarding no\n"
        # A jump host (ProxyJump) is how many admins reach their hypervisors: allow forwarding,
        # but only to the lab's own loopback addresses.
        "AllowTcpForwarding local\n"
        f"PermitOpen {' '.join(f'127.0.0.{11 + i}:{port}' for i in range(scenario.MAX_HOSTS))}\n"
        "AllowAgentForwarding no\n"
        "PermitTTY yes\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        "LogLevel ERROR\n"
        "AcceptEnv LANG LC_*\n"
        # bash sources ~/.bashrc for an ssh command only below shell level 2: skipping it keeps
        # this machine's login customisations (pyenv init, ~0.15 s each) out of every emulated
        # dom0 command, as on a real hypervisor.
        "SetEnv SHLVL=1\n"
        f"ForceCommand {lab / 'bin' / 'labsh'}\n"
    )


# --------------------------------------------------------------------------- sshd


def _port_free(port: int, addresses: list[str]) -> bool:
    for a in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((a, port))
            except OSError:
                return False
    return True


def _pick_port(addresses: list[str], avoid: set[int]) -> int:
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(20000, 59999)
        if port not in avoid and _port_free(port, addresses):
            return port
    raise LabError("no free TCP port found on the lab's loopback addresses")


def _banner(address: str, port: int, timeout: float = 2.0) -> bool:
    """True once an SSH server answers on address:port (its banner has been read)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            ok = s.recv(64).startswith(b"SSH-")
            # say hello back, or sshd logs every probe as a kex_exchange_identification error
            s.sendall(b"SSH-2.0-xenfab-lab-probe\r\n")
            return ok
    except OSError:
        return False


def _refused(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError as exc:
        return exc.errno == errno.ECONNREFUSED


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not pred():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def _log_errors(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "; ".join(line.strip() for line in lines if line.strip())[-300:]


def _start_group(lab: Path, group: dict, port: int) -> int:
    """Start one sshd for the group's addresses; returns its PID once it listens."""
    config = Path(group["config"])
    pidfile = lab / "sshd" / f"sshd-{group['index']}.pid"
    log = lab / "sshd" / f"sshd-{group['index']}.log"
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    log.write_text("")
    try:
        res = subprocess.run(
            [SSHD, "-f", str(config), "-E", str(log)], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        raise LabError(f"{SSHD} not found: install openssh-server") from None
    if res.returncode != 0:
        detail = (res.stderr.strip() or _log_errors(log)).replace("\n", "; ")
        raise LabError(f"sshd for {', '.join(group['up'])} did not start: {detail}")
    try:
        _wait(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 10, "sshd pid")
    except LabError:
        raise LabError(f"sshd group {group['index']} did not start: {_log_errors(log)}") from None
    pid = int(pidfile.read_text().strip())
    if "Bind to port" in _log_errors(log) or "Cannot bind" in _log_errors(log):
        _kill(pid, str(config))
        raise _PortBusy(_log_errors(log))
    return pid


class _PortBusy(LabError):
    """Another process took the port between our check and sshd's bind."""


def _kill(pid: int, config: str, timeout: float = 5.0) -> bool:
    return _terminate(pid, lambda: _is_our_sshd(pid, config), timeout)


def _terminate(pid: int, alive: Callable[[], bool], timeout: float = 5.0) -> bool:
    """SIGTERM ``pid`` while ``alive()`` says it is still the lab's process; SIGKILL if it stays."""
    if not alive():
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaps it when it is our child
        time.sleep(0.01)
    if alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return True


def _group_up_addresses(group: dict, hosts: list[dict]) -> list[str]:
    up = {h["address"] for h in hosts if h["up"]}
    return [a for a in group["addresses"] if a in up]


def _apply_group(lab: Path, info: dict, group: dict, hosts: list[dict]) -> None:
    """Make a group's sshd listen on exactly the addresses of its hosts that are up."""
    port = info["port"]
    wanted = _group_up_addresses(group, hosts)
    running = _is_our_sshd(group.get("pid", 0), group["config"])
    if wanted == group.get("up") and (running or not wanted):
        return
    gone = [a for a in group.get("up", []) if a not in wanted]
    group["up"] = wanted
    if not wanted:
        # an sshd_config without ListenAddress would listen on every address: stop it instead
        if running:
            _kill(group["pid"], group["config"])
        group["pid"] = 0
    else:
        Path(group["config"]).write_text(_sshd_config(lab, group["index"], wanted, port))
        if running:
            # SIGHUP: sshd re-executes itself and binds the new address list, same PID
            os.kill(group["pid"], signal.SIGHUP)
        else:
            group["pid"] = _start_group(lab, group, port)
    _write_info(lab, info)
    for a in gone:
        _wait(lambda a=a: _refused(a, port), 10, f"{a}:{port} to refuse connections")
    for a in wanted:
        _wait(lambda a=a: _banner(a, port), 10, f"sshd on {a}:{port}")


# --------------------------------------------------------------------------- public API


def up(
    lab_dir: str | os.PathLike | None = None,
    hosts: int = 6,
    guests: int = 30,
    seed: int = 1,
    latency_ms: int = 0,
    boot_s: float = 2,
    backend: str | None = None,
    clusters: int | None = None,
    cluster: int = 0,
    ready_s: float = 0,
) -> dict:
    """Start a lab (restarting it if it runs) and return its status once every host answers.

    ``clusters``: N clusters of ``hosts`` hosts each (up_clusters). ``cluster``: this lab is
    cluster number ``cluster`` of such a lab (its host names and addresses).

    ``backend``: one of ``BACKENDS``, by default ``default_backend()`` (a cluster manager's
    family adds its tools to every host); ``xl`` is no cluster manager: the Xen tools only, and
    an autostart directory linking every guest's config. ``ready_s``: seconds after its domain
    booted that a guest starts answering ``ping`` and ``nc`` (net_tools).
    """
    if clusters is not None:
        return up_clusters(
            lab_dir, clusters, hosts, guests, seed, latency_ms, boot_s, backend, ready_s
        )
    _check_int("hosts", hosts, 1, scenario.MAX_HOSTS)
    _check_int("guests", guests, 0, 5000)
    _check_int("latency_ms", latency_ms, 0, 600_000)
    if not isinstance(seed, int):
        raise LabError(f"seed must be an integer, not {seed!r}")
    if not isinstance(boot_s, (int, float)) or boot_s < 0:
        raise LabError(f"boot_s must be a number >= 0, not {boot_s!r}")
    _check_seconds("ready_s", ready_s)
    backend = backend or default_backend()
    if backend not in BACKENDS:
        raise LabError(f"backend must be one of {', '.join(sorted(BACKENDS))}, not {backend!r}")
    if not os.path.exists(SSHD):
        raise LabError(f"{SSHD} not found: install openssh-server")
    lab = _dir(lab_dir)
    t0 = time.monotonic()
    if not cluster:
        _down_clusters(lab)  # a single lab where a multi-cluster one ran
    with _locked(lab):
        old = _read_info(lab)
        restarted = bool(_alive_pids(old))
        _stop_all(lab, old)
        _stop_server(lab, old)
        _prepare_privsep()
        (lab / "sshd").mkdir(parents=True, exist_ok=True)
        for f in ("state.db", "state.db-wal", "state.db-shm"):
            with contextlib.suppress(FileNotFoundError):
                (lab / f).unlink()
        scenario.write_state(
            lab, hosts, guests, seed, boot_s, latency_ms, cluster=cluster, ready_s=ready_s
        )
        _write_backend(lab, backend)
        _keygen(lab / "sshd" / "ssh_host_ed25519_key", "xenfab-lab-host")
        _keygen(lab / "id_ed25519", "xenfab-lab-client")
        host_rows = _host_rows(lab)
        server = _start_server(lab)
        try:
            _write_tools(lab, host_rows, server, backend)
            info, port = _start_sshd(lab, host_rows, server)
        except BaseException:
            _stop_server(lab, {"server": server})
            raise
        addresses = [h["address"] for h in host_rows]
        for a in addresses:
            _wait(lambda a=a: _banner(a, port), 20, f"sshd on {a}:{port}")
        info["up_since"] = time.time()
        info["cluster"] = cluster
        _write_info(lab, info)
    result = status(lab)
    result["restarted"] = restarted
    result["up_seconds"] = round(time.monotonic() - t0, 3)
    return result


def _write_backend(lab: Path, backend: str) -> None:
    """Record the lab's backend; its family sets up what it needs on disk (xl: autostart dirs)."""
    db = emulator.connect(str(lab))
    try:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('backend', ?)", (backend,))
        guests = emulator.guest_records(db)
        for name, family in BACKENDS.items():
            if name != backend:
                family.setup(str(lab), db, guests, False)  # what another backend left
        BACKENDS[backend].setup(str(lab), db, guests, True)
    finally:
        db.close()


def _start_sshd(lab: Path, host_rows: list[dict], server: dict) -> tuple[dict, int]:
    """Start every sshd group on a free port (retried if taken meanwhile); info and port."""
    addresses = [h["address"] for h in host_rows]
    tried: set[int] = set()
    for attempt in range(5):
        port = _pick_port(addresses, tried)
        tried.add(port)
        info = _new_info(lab, host_rows, port)
        info["server"] = server
        _write_client_files(lab, host_rows, port)
        try:
            for group in info["groups"]:
                Path(group["config"]).write_text(
                    _sshd_config(lab, group["index"], group["up"], port)
                )
                group["pid"] = _start_group(lab, group, port)
                _write_info(lab, info)
            return info, port
        except _PortBusy:
            _stop_all(lab, info)
            if attempt == 4:
                raise LabError("could not bind a free port for sshd after 5 tries") from None
    raise AssertionError("unreachable")


def _check_seconds(name: str, value: object) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0 <= value <= 86_400:  # type: ignore[operator]
        raise LabError(f"{name} must be a number of seconds from 0 to 86400, not {value!r}")


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise LabError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")


def _prepare_privsep() -> None:
    # Debian's sshd wants its privilege-separation directory; /run is a tmpfs
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)


def _new_info(lab: Path, host_rows: list[dict], port: int) -> dict:
    addresses = [h["address"] for h in host_rows]
    groups = []
    for i in range(0, len(addresses), GROUP_SIZE):
        chunk = addresses[i : i + GROUP_SIZE]
        index = i // GROUP_SIZE
        groups.append(
            {
                "index": index,
                "addresses": chunk,
                "up": list(chunk),
                "config": str(lab / "sshd" / f"sshd_config.{index}"),
                "pid": 0,
            }
        )
    return {"lab_dir": str(lab), "port": port, "hosts": len(host_rows), "groups": groups}


def _stop_all(lab: Path, info: dict | None) -> list[int]:
    stopped = []
    if info:
        for g in info.get("groups", []):
            if _kill(g.get("pid", 0), g["config"]):
                stopped.append(g["pid"])
            g["pid"] = 0
    # PIDs from pid files too, in case lab.json was lost mid-way
    for pidfile in (lab / "sshd").glob("sshd-*.pid") if (lab / "sshd").is_dir() else []:
        index = pidfile.stem.split("-", 1)[1]
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if _kill(pid, str(lab / "sshd" / f"sshd_config.{index}")):
                stopped.append(pid)
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
    return stopped


def down(lab_dir: str | os.PathLike | None = None) -> dict:
    """Stop the lab's sshd processes (by their recorded PIDs); safe to call twice."""
    lab = _dir(lab_dir)
    if not lab.exists():
        return {"lab_dir": str(lab), "stopped": []}
    if _cluster_dirs(lab):
        return {"lab_dir": str(lab), "stopped": _down_clusters(lab)}
    with _locked(lab):
        info = _read_info(lab)
        stopped = _stop_all(lab, info)
        server = _stop_server(lab, info)
        if server:
            stopped.append(server)
        if info:
            info.pop("up_since", None)
            info.pop("server", None)
            _write_info(lab, info)
    return {"lab_dir": str(lab), "stopped": stopped}


def status(lab_dir: str | os.PathLike | None = None) -> dict:
    """Hosts, services, quorum, recorded starts and the sshd processes of a lab."""
    lab = _dir(lab_dir)
    if _cluster_dirs(lab) and not (lab / "lab.json").exists():
        return status_clusters(lab)
    info = _existing_lab(lab)
    pids = _alive_pids(info)
    server = _live_server(lab, info)
    db = emulator.connect(str(lab))
    try:
        now = time.time()
        hosts = [
            {
                "name": h["name"],
                "address": h["address"],
                "up": bool(h["up"]),
                "total_mib": h["total_mib"],
                "free_mib": emulator.host_free_mib(db, h["name"]),
                "cpus": h["cpus"],
                "toolstack": h["toolstack"],
                "powered_off": bool(h["off"]),
            }
            for h in db.execute("SELECT * FROM hosts ORDER BY nodeid")
        ]
        records = emulator.guest_records(db)
        quorate = emulator.meta(db, "quorate", "1") == "1"
        backend = emulator.meta(db, "backend", default_backend())
        family = BACKENDS.get(backend) or BACKENDS[default_backend()]
        services = [
            {
                "name": s["name"],
                "state": s["state"],
                "owner": s["owner"],
                "last_owner": s["last_owner"],
            }
            for s in _services(db, family, records, now)
        ]
        # The lab's guests as its backend's tools see them: {running, down, quorate}
        summary = family.summary(db, records, now)
        # Every domain with its host (a partitioned host's too): tests count the copies.
        domains = [
            {"name": r["name"], "host": r["host"]}
            for r in db.execute("SELECT name, host FROM domains ORDER BY host, domid")
        ]
        starts = [
            {
                "guest": r["guest"],
                "host": r["host"],
                "began": r["began"],
                "ended": r["ended"],
                "ok": bool(r["ok"]),
            }
            for r in db.execute("SELECT * FROM starts ORDER BY id")
        ]
    finally:
        db.close()
    return {
        "hosts": hosts,
        "services": services,
        "summary": summary,
        "quorate": quorate,
        "backend": backend,
        "starts": starts,
        "domains": domains,
        "running": bool(pids),
        "server_pid": server["pid"] if server else None,
        "port": info["port"],
        "pids": pids,
        "lab_dir": str(lab),
    }


def _services(db, family, records: list[dict], now: float) -> list[dict]:
    """The guests as lab.status lists them: the backend family's services, else any family's.

    A family keeping services of its own answers the ``services`` hook (rgmanager's keeps them
    in every lab that has it); with none, the guests' neutral records, as running or down.
    """
    own = getattr(family, "HOOKS", {}).get("services")
    found = [own(db, now)] if own else emulator.notify("services", db, now)
    found = [f for f in found if f is not None]
    if found:
        return found[0]
    return [
        {
            "name": g["guest"],
            "state": "running" if g["running"] else "down",
            "owner": g["runs_on"],
            "last_owner": None if g["running"] else g["host"],
        }
        for g in records
    ]


# Faults of the shared state; each family adds its own (FAULTS: arguments and handler).
HOST_FAULTS = {
    "host-down": ("HOST",),
    "host-up": ("HOST",),
    "fence": ("HOST",),
    "slow": ("HOST", "MS"),
    "command-fails": ("HOST",),
    "command-ok": ("HOST",),
}
GUEST_FAULTS = {"start-fails": ("GUEST",), "start-ok": ("GUEST",)}
_FAMILY_FAULTS = {
    k: v
    for f in (TOOLSTACK, *BACKENDS.values(), *EVERY_HOST)
    for k, v in getattr(f, "FAULTS", {}).items()
}
INJECT_KINDS = {
    **HOST_FAULTS,
    **{k: spec for k, (spec, _handler) in _FAMILY_FAULTS.items()},
    **GUEST_FAULTS,
}


def inject(lab_dir: str | os.PathLike | None, kind: str, *args: str) -> dict:
    """Inject a fault (host-down HOST, slow HOST MS, inquorate, start-behind GUEST HOST, ...)."""
    if kind not in INJECT_KINDS:
        raise LabError(f"unknown fault {kind!r}; one of: {', '.join(INJECT_KINDS)}")
    spec = INJECT_KINDS[kind]
    args = tuple(str(a) for a in args)
    lab = _dir(lab_dir)
    if _cluster_dirs(lab) and not (lab / "lab.json").exists() and len(args) in (1, len(spec)):
        return inject_cluster(lab, kind, args, spec)
    if len(args) != len(spec):
        usage = " ".join([kind, *spec])
        raise LabError(f"{kind} takes {len(spec)} argument(s): {usage}")
    info = _existing_lab(lab)
    with _locked(lab):
        db = emulator.connect(str(lab))
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                values = _resolve_args(db, kind, spec, args)
                _inject_db(lab, db, kind, values)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            host_rows = [dict(r) for r in db.execute("SELECT * FROM hosts ORDER BY nodeid")]
        finally:
            db.close()
        # a stopped lab stays stopped: its next `up` starts from a fresh scenario anyway
        if kind in ("host-down", "host-up", "fence") and _alive_pids(info):
            for group in info["groups"]:
                _apply_group(lab, info, group, host_rows)
    return {"kind": kind, "args": list(args), "lab_dir": str(lab)}


def _resolve_args(db, kind: str, spec: tuple[str, ...], args: tuple[str, ...]) -> dict:
    values: dict = {}
    for name, arg in zip(spec, args, strict=True):
        if name == "HOST":
            if not db.execute("SELECT 1 FROM hosts WHERE name = ?", (arg,)).fetchone():
                raise LabError(f"{kind}: no host {arg!r} in the lab")
            values["host"] = arg
        elif name == "GUEST":
            record = emulator.guest_record(db, arg)
            if record is None:
                raise LabError(f"{kind}: no guest {arg!r} in the lab")
            values["guest"] = record["guest"]
        elif name == "S":
            try:
                seconds = float(arg)
            except ValueError:
                seconds = -1.0
            if not 0 <= seconds <= 86_400:
                raise LabError(
                    f"{kind}: S must be a number of seconds from 0 to 86400, not {arg!r}"
                )
            values["s"] = seconds
        elif name == "MS":
            if not arg.isdigit() or int(arg) > 600_000:
                raise LabError(f"{kind}: MS must be a whole number of milliseconds, not {arg!r}")
            values["ms"] = int(arg)
    return values


def _inject_db(lab: Path, db, kind: str, v: dict) -> None:
    if kind == "host-down":
        # A partition: the host and its domains run on, cut off (clustat: Offline; ssh: refused).
        emulator.host_leaves(db, v["host"], time.time())
    elif kind == "fence":
        # fence_node, or its power switch: off, domains gone, the cluster's fence record written.
        emulator.fence_host(db, v["host"], time.time())
    elif kind == "host-up":
        emulator.host_returns(db, str(lab), v["host"], time.time())
    elif kind == "slow":
        db.execute("UPDATE hosts SET slow_ms = ? WHERE name = ?", (v["ms"], v["host"]))
    elif kind in ("command-fails", "command-ok"):
        db.execute(
            "UPDATE hosts SET fails = ? WHERE name = ?", (kind == "command-fails", v["host"])
        )
    elif kind in ("start-fails", "start-ok"):
        db.execute(
            "UPDATE guests SET start_fails = ? WHERE name = ?",
            (kind == "start-fails", v["guest"]),
        )
    else:
        _spec, handler = _FAMILY_FAULTS[kind]
        if handler == "armed":
            emulator.arm(db, kind, v["guest"], v["host"])
        else:
            handler(db, str(lab), v)


def reseed(
    lab_dir: str | os.PathLike | None = None,
    guests: int | None = None,
    seed: int | None = None,
    boot_s: float | None = None,
    latency_ms: int | None = None,
    backend: str | None = None,
    ready_s: float | None = None,
) -> dict:
    """A fresh scenario (state and configs) while sshd keeps running; every host reachable again.

    ``backend`` switches the lab's backend (one of ``BACKENDS``); None keeps the current one,
    as for the other settings (``ready_s``: see ``up``).
    """
    if backend is not None and backend not in BACKENDS:
        raise LabError(f"backend must be one of {', '.join(sorted(BACKENDS))}, not {backend!r}")
    lab = _dir(lab_dir)
    info = _existing_lab(lab)
    with _locked(lab):
        db = emulator.connect(str(lab))
        try:
            old = {r["key"]: r["value"] for r in db.execute("SELECT key, value FROM meta")}
            n_guests = db.execute("SELECT COUNT(*) FROM guests").fetchone()[0]
        finally:
            db.close()
        guests = n_guests if guests is None else guests
        seed = int(old.get("seed", 1)) if seed is None else seed
        boot_s = float(old.get("boot_s", 2)) if boot_s is None else boot_s
        latency_ms = int(old.get("latency_ms", 0)) if latency_ms is None else latency_ms
        ready_s = float(old.get("ready_s", 0)) if ready_s is None else ready_s
        _check_seconds("ready_s", ready_s)
        _check_int("guests", guests, 0, 5000)
        _check_int("latency_ms", latency_ms, 0, 600_000)
        if not isinstance(seed, int):
            raise LabError(f"seed must be an integer, not {seed!r}")
        if not isinstance(boot_s, (int, float)) or boot_s < 0:
            raise LabError(f"boot_s must be a number >= 0, not {boot_s!r}")
        scenario.write_state(
            lab,
            info["hosts"],
            guests,
            seed,
            boot_s,
            latency_ms,
            cluster=info.get("cluster", 0),
            ready_s=ready_s,
        )
        backend = backend or old.get("backend", default_backend())
        _write_backend(lab, backend)
        host_rows = _host_rows(lab)
        _write_tools(lab, host_rows, _live_server(lab, info), backend)
        if _alive_pids(info):
            for group in info["groups"]:
                _apply_group(lab, info, group, host_rows)
    return status(lab)


# --------------------------------------------------------------------------- several clusters
#
# `up(clusters=N)`: cluster n is a whole lab of its own in LAB/c<n> (its state.db = its cluster
# manager's state, its emulator server, its sshd groups on 127.0.n.11..), so nothing of one
# cluster can leak into another. LAB/clusters.json lists them; the shipped config's `lab-c<n>`
# environments point into LAB/c<n>.

CLUSTERS_FILE = "clusters.json"


def cluster_env(number: int) -> str:
    """The environment name of cluster ``number`` in the shipped config."""
    return f"lab-c{number}"


def has_clusters(lab_dir: str | os.PathLike | None = None) -> bool:
    """Whether the lab in ``lab_dir`` is a lab of several clusters (up(clusters=N))."""
    lab = _dir(lab_dir)
    return bool(_cluster_dirs(lab)) and not (lab / "lab.json").exists()


def _cluster_dirs(lab: Path) -> list[tuple[int, Path]]:
    """The clusters of a multi-cluster lab (number, directory); [] for a single lab."""
    try:
        data = json.loads((lab / CLUSTERS_FILE).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise LabError(f"{lab}/{CLUSTERS_FILE} is unreadable: {exc}") from None
    return [(n, lab / f"c{n}") for n in range(1, int(data.get("clusters", 0)) + 1)]


def _down_clusters(lab: Path) -> list[int]:
    stopped: list[int] = []
    for _number, sub in _cluster_dirs(lab):
        if sub.exists():
            stopped += down(sub)["stopped"]
    with contextlib.suppress(FileNotFoundError):
        (lab / CLUSTERS_FILE).unlink()
    return stopped


def up_clusters(
    lab_dir: str | os.PathLike | None,
    clusters: int,
    hosts: int | list[int] = 6,
    guests: int | list[int] = 30,
    seed: int = 1,
    latency_ms: int = 0,
    boot_s: float = 2,
    backend: str | None = None,
    ready_s: float = 0,
) -> dict:
    """Start ``clusters`` clusters of ``hosts`` hosts and ``guests`` guests each (a list: per
    cluster), environments lab-c1 ... lab-cN; their combined status."""
    _check_int("clusters", clusters, 1, scenario.MAX_CLUSTERS)
    # The shipped config's lab-c<n> environments are of the default backend's clusters.
    if (backend or default_backend()) != default_backend():
        raise LabError(f"clusters: a lab of clusters is of {default_backend()} clusters only")
    counts = hosts if isinstance(hosts, list) else [hosts] * clusters
    sizes = guests if isinstance(guests, list) else [guests] * clusters
    if len(counts) != clusters or len(sizes) != clusters:
        raise LabError(f"clusters: {clusters} clusters, {len(counts)} host and guest counts")
    lab = _dir(lab_dir)
    t0 = time.monotonic()
    _down_clusters(lab)
    if (lab / "lab.json").exists():
        down(lab)  # the single lab that ran here: its addresses and ports are freed
        (lab / "lab.json").unlink()
    lab.mkdir(parents=True, exist_ok=True)
    (lab / CLUSTERS_FILE).write_text(json.dumps({"clusters": clusters}) + "\n")
    try:
        for n in range(1, clusters + 1):
            # Another seed per cluster: other sizes, often the same guest names (web01...).
            up(lab / f"c{n}", counts[n - 1], sizes[n - 1], seed + n - 1, latency_ms, boot_s,
               default_backend(), cluster=n, ready_s=ready_s)  # fmt: skip
    except BaseException:
        _down_clusters(lab)
        raise
    result = status_clusters(lab)
    result["up_seconds"] = round(time.monotonic() - t0, 3)
    result["restarted"] = False
    return result


def status_clusters(lab: Path) -> dict:
    """A multi-cluster lab's status: each cluster's, and every host and guest with its cluster."""
    parts = [(cluster_env(n), status(sub)) for n, sub in _cluster_dirs(lab)]
    combined: dict = {
        "clusters": [],
        "hosts": [],
        "services": [],
        "starts": [],
        "domains": [],
        "lab_dir": str(lab),
        "backend": default_backend(),
        "port": None,
        "pids": [],
    }
    for env, st in parts:
        for key in ("hosts", "services", "starts", "domains"):
            combined[key] += [{**row, "cluster": env} for row in st[key]]
        combined["pids"] += st["pids"]
        combined["clusters"].append(
            {
                "cluster": env,
                "lab_dir": st["lab_dir"],
                "port": st["port"],
                "quorate": st["quorate"],
                "summary": st["summary"],
                "running": st["running"],
                "hosts": len(st["hosts"]),
                "guests": len(st["services"]),
            }
        )
    sums = [st["summary"] for _env, st in parts]
    combined["summary"] = {
        "running": sum(s.get("running", 0) for s in sums),
        "quorate": all(s.get("quorate") for s in sums) if sums else None,
    }
    combined["quorate"] = combined["summary"]["quorate"]
    combined["running"] = bool(parts) and all(st["running"] for _env, st in parts)
    combined["server_pid"] = parts[0][1]["server_pid"] if parts else None
    return combined


def inject_cluster(lab: Path, kind: str, args: tuple[str, ...], spec: tuple[str, ...]) -> dict:
    """A fault in a multi-cluster lab: in the cluster of its HOST (cN-...), or of ``cN/GUEST``.

    A cluster-wide fault (inquorate) takes the host as its one argument: that host's cluster.
    """
    dirs = dict(_cluster_dirs(lab))
    where: int | None = None
    wanted = list(args)
    if "GUEST" in spec:
        i = spec.index("GUEST")
        number, _, guest = args[i].rpartition("/")
        if number:
            if not number.startswith("c") or not number[1:].isdigit():
                raise LabError(f"{kind}: name the guest as cN/GUEST (c1/web01), not {args[i]!r}")
            where, wanted[i] = int(number[1:]), guest
    if "HOST" in spec:
        host_at = _host_cluster(args[spec.index("HOST")], dirs)
        if where is not None and where != host_at:
            raise LabError(f"{kind}: the guest is in cluster c{where}, the host in c{host_at}")
        where = host_at
    elif "GUEST" in spec:
        if where is None:
            raise LabError(f"{kind}: in a lab of clusters, name the guest as cN/GUEST (c1/web01)")
    elif len(args) == 1:
        where, wanted = _host_cluster(args[0], dirs), []
    else:
        raise LabError(f"{kind}: in a lab of clusters, give --host HOST (its cluster)")
    if where not in dirs:
        raise LabError(f"{kind}: no cluster c{where} in the lab ({len(dirs)} clusters)")
    done = inject(dirs[where], kind, *wanted)
    return {**done, "cluster": cluster_env(where)}


def _host_cluster(host: str, dirs: dict[int, Path]) -> int:
    match = re.fullmatch(r"c(\d+)-.+", host)
    if match is None or int(match[1]) not in dirs:
        raise LabError(f"no host {host!r} in the lab's clusters (c1-xen01 ... c{len(dirs)}-...)")
    return int(match[1])
