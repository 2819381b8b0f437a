"""The lab's emulated Xen tools (xl, xm, xentop), and the state every tool family shares.

It runs as one long-lived server per lab (``emulator.py --serve LAB_DIR FD``, see ``serve``) that
the per-host tool wrappers ``labsh`` puts first on PATH ask, up to hundreds of commands at a
time; without the server a wrapper runs it as a command (``python3 -S -E emulator.py LAB_DIR HOST
TOOL ARGS...``), with the same output. Either way it is executed by path, uses the standard
library only and never imports the xenfab package (xenfab's parsers are tested against this
output; sharing code would let them agree with themselves). ``xenfab.lab.control`` imports it
for the schema and the state helpers.

Output follows the printf formats of xl/xm/xentop (Xen), as described in the project's FORMATS
reference. A cluster manager's tools are a family of their own (``rgmanager_tools.py``:
clustat, clusvcadm), found through ``FAMILIES``; a lab with no cluster manager has none.
"""

# The tools are C programs: their printf formats are reproduced with "%" on purpose.
# ruff: noqa: UP031
from __future__ import annotations

import contextlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosts(
    name TEXT PRIMARY KEY, nodeid INTEGER NOT NULL, address TEXT NOT NULL,
    total_mib INTEGER NOT NULL, dom0_mib INTEGER NOT NULL, cpus INTEGER NOT NULL,
    cpu_mhz INTEGER NOT NULL, toolstack TEXT NOT NULL, xen_version TEXT NOT NULL,
    up INTEGER NOT NULL DEFAULT 1, slow_ms INTEGER NOT NULL DEFAULT 0,
    fails INTEGER NOT NULL DEFAULT 0, next_domid INTEGER NOT NULL DEFAULT 1,
    booted REAL NOT NULL);
CREATE TABLE IF NOT EXISTS domains(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, mem_mib INTEGER NOT NULL,
    maxmem_mib INTEGER NOT NULL, vcpus INTEGER NOT NULL, domid INTEGER NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS services(
    name TEXT PRIMARY KEY, state TEXT NOT NULL, owner TEXT, last_owner TEXT,
    transition REAL NOT NULL DEFAULT 0, restarts INTEGER NOT NULL DEFAULT 0,
    cfg TEXT NOT NULL, start_fails INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS starts(
    id INTEGER PRIMARY KEY, guest TEXT NOT NULL, host TEXT NOT NULL, began REAL NOT NULL,
    ended REAL NOT NULL, ok INTEGER NOT NULL);
"""

RUNNING_STATES = ("starting", "started", "stopping", "checking", "migrating", "recovering")


# --------------------------------------------------------------------------- state


def connect(lab_dir: str, timeout: float = 60.0) -> sqlite3.Connection:
    """Open the lab's state database (autocommit; callers use BEGIN IMMEDIATE to write)."""
    db = sqlite3.connect(os.path.join(lab_dir, "state.db"), timeout=timeout, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = %d" % int(timeout * 1000))
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One BEGIN IMMEDIATE .. COMMIT, rolled back on any exception (a tool's change is atomic)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def init_db(db: sqlite3.Connection) -> None:
    """Create the schema in WAL mode, so readers never wait for a start in progress."""
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(SCHEMA)


def meta(db: sqlite3.Connection, key: str, default: str = "") -> str:
    """One value of the meta table."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def effective_state(state: str, transition: float, boot_s: float, now: float) -> str:
    """A ``starting`` service reads ``started`` once boot_s seconds have passed (no daemon)."""
    if state == "starting" and now >= transition + boot_s:
        return "started"
    return state


def host_free_mib(db: sqlite3.Connection, host: str) -> int:
    """Free RAM of a host: total - dom0 - every domain it runs."""
    row = db.execute("SELECT total_mib, dom0_mib FROM hosts WHERE name = ?", (host,)).fetchone()
    used = db.execute(
        "SELECT COALESCE(SUM(mem_mib), 0) FROM domains WHERE host = ?", (host,)
    ).fetchone()[0]
    return int(row["total_mib"] - row["dom0_mib"] - used)


def services(db: sqlite3.Connection, now: float | None = None) -> list[dict]:
    """All services, sorted by name, with the lazily computed state."""
    now = time.time() if now is None else now
    boot_s = float(meta(db, "boot_s", "2"))
    out = []
    for r in db.execute("SELECT * FROM services ORDER BY name"):
        d = dict(r)
        d["state"] = effective_state(r["state"], r["transition"], boot_s, now)
        if r["state"] == "starting" and d["state"] == "started":
            d["transition"] = r["transition"] + boot_s
        out.append(d)
    return out


# --------------------------------------------------------------------------- guest configs


def _statements(text: str) -> list[str]:
    """Split an xl config into statements: newline or ';' ends one, but not inside [] or quotes."""
    stmts, cur, depth, quote, i = [], [], 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch == "[":
            depth += 1
            cur.append(ch)
        elif ch == "]":
            depth -= 1
            cur.append(ch)
        elif ch in ";\n" and depth <= 0:
            stmts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    stmts.append("".join(cur).strip())
    return [s for s in stmts if s]


def _number(value: str) -> int:
    """xl reads numbers with strtol(..., 0): quoted or not, 0x is hex, a leading 0 is octal."""
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        v = v[1:-1].strip()
    if v.lower().startswith("0x"):
        return int(v, 16)
    if len(v) > 1 and v.startswith("0"):
        return int(v, 8)
    return int(v)


def read_cfg(path: str) -> dict:
    """name/memory/maxmem/vcpus of an xl-syntax guest config; ValueError if xl would reject it."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    values = {}
    for stmt in _statements(text):
        key, sep, value = stmt.partition("=")
        key = key.strip().rstrip("+").strip()
        if not sep or not key or not (key[0].isalpha() and key.replace("_", "").isalnum()):
            raise ValueError("syntax error near %r" % stmt[:40])
        values[key] = value.strip()
    if "name" not in values:
        raise ValueError("Domain name must be specified.")
    name = values["name"]
    if not (len(name) >= 2 and name[0] == name[-1] and name[0] in "'\""):
        raise ValueError("name is not a string")
    memory = _number(values["memory"]) if "memory" in values else None
    maxmem = _number(values["maxmem"]) if "maxmem" in values else None
    if memory is None and maxmem is None:
        memory = maxmem = 32
    memory = memory if memory is not None else maxmem
    maxmem = maxmem if maxmem is not None else memory
    vcpus = _number(values["vcpus"]) if "vcpus" in values else 1
    return {"name": name[1:-1], "memory": memory, "maxmem": maxmem, "vcpus": vcpus}


# --------------------------------------------------------------------------- tools


class UnknownHost(Exception):
    """The tool was asked to run as a host the lab does not have."""


class Stream:
    """Where a tool's stdout (1) and stderr (2) go."""

    def write(self, fd: int, text: str) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass


class StdStream(Stream):
    """This process's own stdout and stderr (the emulator run as a command)."""

    def write(self, fd: int, text: str) -> None:
        (sys.stdout if fd == 1 else sys.stderr).write(text)

    def flush(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()


class FrameStream(Stream):
    """Frames for the lab's tool wrappers: ``<fd> <bytes>\\n<data>`` ..., then ``x <rc>\\n``.

    Consecutive writes to one fd become one frame, sent at flush() or at the end, so the
    wrapper replays stdout and stderr in the order the tool wrote them.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending: list[tuple[int, list[str]]] = []

    def write(self, fd: int, text: str) -> None:
        if not text:
            return
        if self.pending and self.pending[-1][0] == fd:
            self.pending[-1][1].append(text)
        else:
            self.pending.append((fd, [text]))

    def flush(self) -> None:
        frames = []
        for fd, parts in self.pending:
            data = "".join(parts).encode("utf-8", "replace")
            frames.append(b"%d %d\n" % (fd, len(data)) + data)
        self.pending = []
        if frames:
            self.sock.sendall(b"".join(frames))

    def close(self, rc: int) -> None:
        self.flush()
        self.sock.sendall(b"x %d\n" % (rc % 256))


class Ctx:
    """What a tool invocation knows: the database, the host it runs on, the clock."""

    def __init__(self, lab_dir: str, host: str, stream: Stream | None = None) -> None:
        self.lab_dir = lab_dir
        self.stream = stream or StdStream()
        self.db = connect(lab_dir)
        self.host = host
        self.now = time.time()
        row = self.db.execute("SELECT * FROM hosts WHERE name = ?", (host,)).fetchone()
        if row is None:
            self.db.close()
            raise UnknownHost(host)
        self.h = row

    def out(self, text: str) -> None:
        self.stream.write(1, text)

    def err(self, text: str) -> None:
        self.stream.write(2, text)

    def flush(self) -> None:
        """Let the caller see what was written so far (clusvcadm's "trying to enable...")."""
        self.stream.flush()

    def domains(self) -> list:
        return self.db.execute(
            "SELECT * FROM domains WHERE host = ? ORDER BY domid", (self.host,)
        ).fetchall()

    def free_mib(self) -> int:
        return host_free_mib(self.db, self.host)


def _version_parts(version: str) -> tuple[str, str, str]:
    major, minor, rest = version.split(".", 2)
    return major, minor, "." + rest


def _mhz(ctx: Ctx, decimals: bool) -> str:
    mhz = ctx.h["cpu_mhz"]
    if decimals:
        # Xen >= 4.11 prints "%d.%03d"
        return "%d.%03d" % (mhz, (mhz * 37) % 1000)
    return str(mhz)


def _topology(ctx: Ctx) -> tuple[int, int, int]:
    cpus = ctx.h["cpus"]
    nodes = 2 if cpus >= 24 else 1
    threads = 2 if cpus % 2 == 0 else 1
    cores = max(1, cpus // (nodes * threads))
    return nodes, cores, threads


def _info_lines(ctx: Ctx, xm: bool) -> list[tuple[str, str]]:
    h = ctx.h
    version = h["xen_version"]
    major, minor, extra = _version_parts(version)
    nodes, cores, threads = _topology(ctx)
    free = ctx.free_mib()
    old = int(major) < 4 or (int(major) == 4 and int(minor) < 11)
    if xm:
        release, kversion = "2.6.32-5-xen-amd64", "#1 SMP Sun May 6 08:57:29 UTC 2012"
        compiler = "gcc version 4.4.5 (Debian 4.4.5-8) "
    else:
        release, kversion = "4.19.0-27-amd64", "#1 SMP Debian 4.19.316-1 (2024-06-25)"
        compiler = "gcc (Debian 8.3.0-6) 8.3.0"
    per_node_cpus = h["cpus"] // nodes
    node_cpu = " ".join(
        "node%d:%d-%d" % (n, n * per_node_cpus, (n + 1) * per_node_cpus - 1) for n in range(nodes)
    )
    node_mem = " ".join("node%d:%d" % (n, free // nodes) for n in range(nodes))
    lines = [
        ("host", h["name"]),
        ("release", release),
        ("version", kversion),
        ("machine", "x86_64"),
        ("nr_cpus", str(h["cpus"])),
    ]
    if not xm:
        lines.append(("max_cpu_id", str(max(h["cpus"] * 2, 63) - 1)))
    lines += [
        ("nr_nodes", str(nodes)),
        ("cores_per_socket", str(cores)),
        ("threads_per_core", str(threads)),
        ("cpu_mhz", _mhz(ctx, decimals=not old)),
        ("hw_caps", "bfebfbff:77fef3ff:2c100800:00000121:0000000f:009c6fbb:00000000:00000100"),
        ("virt_caps", "" if xm else "hvm hvm_directio"),
        ("total_memory", str(h["total_mib"])),
        ("free_memory", str(free)),
    ]
    if xm:
        lines += [
            ("node_to_cpu", node_cpu),
            ("node_to_memory", node_mem),
            (
                "node_to_dma32_mem",
                " ".join("node%d:%d" % (n, 2985 * (n == 0)) for n in range(nodes)),
            ),
            ("max_node_id", str(nodes - 1)),
        ]
    else:
        lines += [
            ("sharing_freed_memory", "0"),
            ("sharing_used_memory", "0"),
            ("outstanding_claims", "0"),
            ("free_cpus", "0"),
        ]
    lines += [("xen_major", major), ("xen_minor", minor), ("xen_extra", extra)]
    if not xm:
        lines.append(("xen_version", version))
    lines += [
        (
            "xen_caps",
            "xen-3.0-x86_64 xen-3.0-x86_32p hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 ",
        ),  # noqa: E501
        ("xen_scheduler", "credit"),
        ("xen_pagesize", "4096"),
        ("platform_params", "virt_start=0xffff800000000000"),
        ("xen_changeset", "unavailable" if xm else ""),
        (
            "xen_commandline",
            "placeholder dom0_mem=%dM,max:%dM dom0_max_vcpus=4 dom0_vcpus_pin"
            % (h["dom0_mib"], h["dom0_mib"]),
        ),
        ("cc_compiler", compiler),
        ("cc_compile_by", "pkg-xen-devel" if not xm else "waldi"),
        ("cc_compile_domain", "lists.alioth.debian.org" if not xm else "debian.org"),
        (
            "cc_compile_date",
            "Thu Jun 21 06:44:56 UTC 2012" if xm else "Fri Jun 14 11:08:45 UTC 2024",
        ),
    ]
    if not xm:
        lines.append(("build_id", "8f6fbd5bc2bb1c4df27bbb8a3fd70f1d3b5cc5e1"))
    lines.append(("xend_config_format", "4"))
    return lines


def _print_info(ctx: Ctx, xm: bool, key: str | None = None) -> int:
    lines = _info_lines(ctx, xm)
    if key is not None:
        for k, v in lines:
            if k == key:
                ctx.out(v + "\n")
                return 0
        ctx.err("xl: info: unknown key '%s'\n" % key)
        return 1
    ctx.out("".join("%-23s: %s\n" % kv for kv in lines))
    return 0


def _cpu_seconds(ctx: Ctx, since: float, vcpus: int, dom0: bool = False) -> float:
    """CPU time used since a domain started: dom0 works harder than the idle-ish guests."""
    return max(0.1, (ctx.now - since) * (0.09 if dom0 else 0.02) * vcpus)


def _list_rows(ctx: Ctx) -> list[tuple[str, int, int, int, str, float]]:
    h = ctx.h
    rows = [
        (
            "Domain-0",
            0,
            h["dom0_mib"],
            min(4, h["cpus"]),
            "r-----",
            _cpu_seconds(ctx, h["booted"], min(4, h["cpus"]), dom0=True),
        )
    ]
    for d in ctx.domains():
        rows.append(
            (
                d["name"],
                d["domid"],
                d["mem_mib"],
                d["vcpus"],
                "-b----",
                _cpu_seconds(ctx, d["created"], d["vcpus"]),
            )
        )
    return rows


def _print_list(ctx: Ctx, tool: str, names: list[str]) -> int:
    rows = _list_rows(ctx)
    if names:
        wanted = []
        for n in names:
            match = [r for r in rows if r[0] == n or (n.isdigit() and r[1] == int(n))]
            if not match:
                if tool == "xl":
                    ctx.err("%s is an invalid domain identifier (rc=-6)\n" % n)
                else:
                    ctx.err("Error: Domain '%s' does not exist.\n" % n)
                return 1
            wanted += match
        rows = wanted
    if tool == "xl":
        # xl's header has real TABs before State and Time(s)
        ctx.out("Name                                        ID   Mem VCPUs\tState\tTime(s)\n")
        for name, domid, mem, vcpus, state, t in rows:
            ctx.out("%-40s %5d %5d %5d     %s  %8.1f\n" % (name, domid, mem, vcpus, state, t))
    else:
        ctx.out("Name                                        ID   Mem VCPUs      State   Time(s)\n")
        for name, domid, mem, vcpus, state, t in rows:
            ctx.out("%-40s %5d %5d %5d %10s %8.1f\n" % (name, domid, mem, vcpus, state, t))
    return 0


XL_USAGE = """Usage xl [-vfNtT] <subcommand> [args]

xl full list of subcommands:

 create              Create a domain from config file <filename>
 destroy             Terminate a domain immediately
 list                List information about all/some domains
 info                Get information about Xen host
 top                 Monitor a host and the domains in real time
"""

XM_USAGE = """Usage: xm <subcommand> [args]

Control, list, and manipulate Xen guest instances.

Common 'xm' commands:

 create                        Create a domain based on <ConfigFile>.
 destroy                       Terminate a domain immediately.
 info                          Get information about Xen host.
 list                          List information about all/some domains.
 top                           Monitor a host and the domains in real time.

<Domain> can either be the Domain Name or Id.
For more help on 'xm' see the xm(1) man page.
For more help on 'xm create' see the xmdomain.cfg(5)  man page.
"""


def _destroy(ctx: Ctx, tool: str, args: list[str]) -> int:
    if len(args) != 1:
        ctx.err("'%s destroy' requires 1 argument.\n" % tool)
        return 1
    name = args[0]
    db = ctx.db
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(
            "SELECT id FROM domains WHERE host = ? AND (name = ? OR CAST(domid AS TEXT) = ?)",
            (ctx.host, name, name),
        ).fetchone()
        if row is None:
            db.execute("ROLLBACK")
            if tool == "xl":
                ctx.err("%s is an invalid domain identifier (rc=-6)\n" % name)
            else:
                ctx.err("Error: Domain '%s' does not exist.\n" % name)
            return 1
        db.execute("DELETE FROM domains WHERE id = ?", (row["id"],))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return 0


def _create(ctx: Ctx, tool: str, args: list[str]) -> int:
    """``xl create [-q] CONFIG``: build the domain on this host (no cluster manager involved)."""
    files = [a for a in args if not a.startswith("-")]
    if [a for a in args if a.startswith("-") and a != "-q"] or len(files) != 1:
        ctx.err("Usage: %s create <ConfigFile> [options] [vars]\n" % tool)
        return 1
    path = files[0]
    ctx.err("Parsing config from %s\n" % path)
    try:
        cfg = read_cfg(path)
    except OSError as exc:
        ctx.err("Failed to read config file: %s: %s\n" % (path, exc.strerror))
        return 1
    except (ValueError, KeyError) as exc:
        ctx.err("%s:1: config parsing error near `%s': syntax error\n" % (path, exc))
        return 1
    with write_transaction(ctx.db):
        return _create_locked(ctx, cfg)


def _create_locked(ctx: Ctx, cfg: dict) -> int:
    db, name, now = ctx.db, cfg["name"], time.time()
    fire_armed(ctx, "vm:" + name)
    if db.execute("SELECT 1 FROM domains WHERE host = ? AND name = ?", (ctx.host, name)).fetchone():
        ctx.err(
            "libxl: error: libxl_create.c:1:do_domain_create: Domain '%s' already exists\n" % name
        )
        return 1
    row = db.execute("SELECT * FROM services WHERE name = ?", ("vm:" + name,)).fetchone()
    if (row is not None and row["start_fails"]) or cfg["memory"] > host_free_mib(db, ctx.host):
        ctx.err(
            "libxl: error: libxl_create.c:1:domcreate_launch_dm: Domain %s:"
            "device model did not start: -3\n" % name
        )
        _record_start(ctx, name, ctx.host, now, now, False)
        return 1
    domid = db.execute("SELECT next_domid FROM hosts WHERE name = ?", (ctx.host,)).fetchone()[0]
    db.execute("UPDATE hosts SET next_domid = next_domid + 1 WHERE name = ?", (ctx.host,))
    db.execute(
        "INSERT INTO domains(name, host, mem_mib, maxmem_mib, vcpus, domid, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (name, ctx.host, cfg["memory"], cfg["maxmem"], cfg["vcpus"], domid, now),
    )
    if row is not None:
        # The lab's own bookkeeping (lab.status), not a cluster manager: no tool reads it in xl.
        db.execute(
            "UPDATE services SET state = 'started', owner = ?, last_owner = ?, transition = ? "
            "WHERE name = ?",
            (ctx.host, ctx.host, now, "vm:" + name),
        )
    _record_start(ctx, name, ctx.host, now, now, True)
    return 0


def tool_xen(ctx: Ctx, tool: str, args: list[str]) -> int:
    """xl / xm: info, list, uptime, destroy, create."""
    if not args or args[0] in ("help", "-h", "--help"):
        ctx.err(XL_USAGE if tool == "xl" else XM_USAGE)
        return 1 if not args else 0
    sub, rest = args[0], args[1:]
    if sub == "info":
        opts = [a for a in rest if a.startswith("-")]
        keys = [a for a in rest if not a.startswith("-")]
        if [o for o in opts if o not in ("-n", "--numa")] or (tool == "xm" and keys):
            ctx.err("Usage: %s info [-n]\n\nGet information about Xen host.\n" % tool)
            return 1
        return _print_info(ctx, tool == "xm", keys[0] if keys else None)
    if sub == "list":
        opts = [a for a in rest if a.startswith("-")]
        if opts:
            ctx.err(
                "%s: unrecognized option '%s'\nUsage: %s list [options] [Domain]\n\n"
                "List information about all/some domains.\n" % (tool, opts[0], tool)
            )
            return 1
        return _print_list(ctx, tool, rest)
    if sub == "destroy":
        return _destroy(ctx, tool, rest)
    if sub == "create":
        return _create(ctx, tool, rest)
    if tool == "xl":
        ctx.err("command not implemented\n" + XL_USAGE)
    else:
        ctx.err("Error: Subcommand %s not found!\n\n%s" % (sub, XM_USAGE))
    return 1


XENTOP_FIELDS = [
    ("NAME", 10),
    ("STATE", 6),
    ("CPU(sec)", 10),
    ("CPU(%)", 6),
    ("MEM(k)", 10),
    ("MEM(%)", 6),
    ("MAXMEM(k)", 10),
    ("MAXMEM(%)", 9),
    ("VCPUS", 5),
    ("NETS", 4),
    ("NETTX(k)", 8),
    ("NETRX(k)", 8),
    ("VBDS", 4),
    ("VBD_OO", 8),
    ("VBD_RD", 8),
    ("VBD_WR", 8),
    ("VBD_RSECT", 10),
    ("VBD_WSECT", 10),
    ("SSID", 4),
]

XENTOP_USAGE = """Usage: xentop [OPTION]
Displays ongoing information about xen vm resources

-h, --help           display this help and exit
-V, --version        output version information and exit
-d, --delay=SECONDS  seconds between updates (default 3)
-n, --networks       output vif network data
-x, --vbds           output vbd block device data
-r, --repeat-header  repeat table header before each domain
-v, --vcpus          output vcpu data
-b, --batch	     output in batch mode, no user input accepted
-i, --iterations     number of iterations before exiting
-f, --full-name      output the full domain name (not truncated)

Report bugs to <xen-devel@lists.xen.org>.
"""


def tool_xentop(ctx: Ctx, args: list[str]) -> int:
    """xentop: batch mode only (interactive needs a terminal, as over a plain ssh command)."""
    batch, full, repeat, iterations, delay = False, False, False, 0, 3.0
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-b", "--batch"):
            batch = True
        elif a in ("-f", "--full-name"):
            full = True
        elif a in ("-r", "--repeat-header"):
            repeat = True
        elif a in ("-n", "--networks", "-x", "--vbds", "-v", "--vcpus"):
            pass
        elif a in ("-h", "--help"):
            ctx.out(XENTOP_USAGE)
            return 0
        elif a in ("-i", "--iterations", "-d", "--delay") or a.startswith(
            ("-i", "-d", "--it", "--de")
        ):
            if "=" in a:
                opt, val = a.split("=", 1)
            elif a in ("-i", "--iterations", "-d", "--delay"):
                if i + 1 >= len(args):
                    ctx.err("xentop: option requires an argument -- '%s'\n" % a.lstrip("-")[0])
                    ctx.out(XENTOP_USAGE)
                    return 1
                opt, val = a, args[i + 1]
                i += 1
            else:
                opt, val = a[:2], a[2:]
            try:
                num = int(val)
            except ValueError:
                num = 0
            if opt.startswith(("-i", "--it")):
                iterations = num
            else:
                delay = float(num)
        else:
            ctx.err("xentop: invalid option -- '%s'\n" % a.lstrip("-")[:1])
            ctx.out(XENTOP_USAGE)
            return 1
        i += 1
    if not batch:
        ctx.err("Error opening terminal: unknown.\n")
        return 1
    total_kb = ctx.h["total_mib"] * 1024
    count = iterations if iterations > 0 else 1
    for it in range(count):
        if it:
            ctx.flush()
            time.sleep(max(0.0, delay))
            ctx.now = time.time()
        rows = _xentop_rows(ctx, total_kb, first=(it == 0))
        name_w = 10
        if full:
            name_w = max([10] + [len(r[0]) for r in rows])
        header = " ".join("%*s" % (name_w if n == "NAME" else w, n) for n, w in XENTOP_FIELDS)
        for j, r in enumerate(rows):
            if j == 0 or repeat:
                ctx.out(header + "\n")
            name = ("%*s" % (name_w, r[0])) if full else ("%10.10s" % r[0])
            ctx.out(name + " " + r[1] + "\n")
    return 0


def _xentop_rows(ctx: Ctx, total_kb: int, first: bool) -> list[tuple[str, str]]:
    h = ctx.h
    out = []
    doms = [("Domain-0", 0, h["dom0_mib"], None, min(4, h["cpus"]), h["booted"])]
    for d in ctx.domains():
        doms.append(
            (d["name"], d["domid"], d["mem_mib"], d["maxmem_mib"], d["vcpus"], d["created"])
        )
    for name, domid, mem, maxmem, vcpus, since in doms:
        cpu_s = int(_cpu_seconds(ctx, since, vcpus, dom0=(domid == 0)))
        # CPU(%) needs a previous sample: 0.0 on the first iteration, as in xentop
        pct = 0.0 if first else (9.0 if domid == 0 else 2.0) * vcpus
        mem_kb = mem * 1024
        if maxmem is None:
            maxmem_s, maxpct_s = "%10s" % "no limit", "%9s" % "n/a"
        else:
            # libxl adds LIBXL_MAXMEM_CONSTANT (1 MiB) of slack to the hypervisor limit
            max_kb = maxmem * 1024 + 1024
            maxmem_s, maxpct_s = "%10d" % max_kb, "%9.1f" % (max_kb * 100.0 / total_kb)
        age = max(1, int(ctx.now - since))
        nets, vbds = (0, 0) if domid == 0 else (1, 2 if mem >= 4096 else 1)
        tx = age * 3 * nets
        rx = age * 5 * nets
        rd, wr = age * 2 * vbds, age * vbds
        fields = [
            "-----r" if domid == 0 else "--b---",
            "%10d" % cpu_s,
            "%6.1f" % pct,
            "%10d" % mem_kb,
            "%6.1f" % (mem_kb * 100.0 / total_kb),
            maxmem_s,
            maxpct_s,
            "%5d" % vcpus,
            "%4d" % nets,
            "%8d" % tx,
            "%8d" % rx,
            "%4d" % vbds,
            "%8d" % 0,
            "%8d" % rd,
            "%8d" % wr,
            "%10d" % (rd * 8),
            "%10d" % (wr * 8),
            "%4d" % 0,
        ]
        out.append((name, " ".join(fields)))
    return out


# --------------------------------------------------------------------------- rgmanager


def _getopt(args: list[str], spec: str) -> tuple[list[tuple[str, str]], list[str], str]:
    """POSIX getopt: returns (options, operands, error message or '')."""
    opts, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return opts, args[i + 1 :], ""
        if not a.startswith("-") or a == "-":
            return opts, args[i:], ""
        j = 1
        while j < len(a):
            c = a[j]
            pos = spec.find(c)
            if pos < 0 or c == ":":
                return opts, [], "invalid option -- '%s'" % c
            if pos + 1 < len(spec) and spec[pos + 1] == ":":
                if j + 1 < len(a):
                    opts.append((c, a[j + 1 :]))
                elif i + 1 < len(args):
                    i += 1
                    opts.append((c, args[i]))
                else:
                    return opts, [], "option requires an argument -- '%s'" % c
                break
            opts.append((c, ""))
            j += 1
        i += 1
    return opts, [], ""


def _record_start(ctx: Ctx, guest: str, host: str, began: float, ended: float, ok: bool) -> None:
    ctx.db.execute(
        "INSERT INTO starts(guest, host, began, ended, ok) VALUES (?, ?, ?, ?, ?)",
        (guest, host, began, ended, 1 if ok else 0),
    )


def start_behind(db: sqlite3.Connection, lab_dir: str, svc: str, host: str, cluster: bool) -> None:
    """Someone else started ``svc`` on ``host`` just now: through the cluster, or by ``xl create``.

    ``cluster=False`` is a hand ``xl create``: the domain runs on the host and the cluster's
    state is left as it was (rgmanager does not know about it).
    """
    now = time.time()
    row = db.execute("SELECT * FROM services WHERE name = ?", (svc,)).fetchone()
    if row is None:
        return
    guest = svc.split(":", 1)[1]
    try:
        cfg = read_cfg(os.path.join(lab_dir, "xenconfig", row["cfg"]))
    except (OSError, ValueError, KeyError):
        cfg = {"name": guest, "memory": 1024, "maxmem": 1024, "vcpus": 1}
    if not db.execute(
        "SELECT 1 FROM domains WHERE host = ? AND name = ?", (host, cfg["name"])
    ).fetchone():
        domid = db.execute("SELECT next_domid FROM hosts WHERE name = ?", (host,)).fetchone()[0]
        db.execute("UPDATE hosts SET next_domid = next_domid + 1 WHERE name = ?", (host,))
        db.execute(
            "INSERT INTO domains(name, host, mem_mib, maxmem_mib, vcpus, domid, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cfg["name"], host, cfg["memory"], cfg["maxmem"], cfg["vcpus"], domid, now),
        )
    if not cluster:
        return
    last = row["owner"] if row["state"] in RUNNING_STATES else row["last_owner"]
    db.execute(
        "UPDATE services SET state = 'starting', owner = ?, last_owner = ?, transition = ? "
        "WHERE name = ?",
        (host, last, now, svc),
    )


# Faults armed to fire at the next `clusvcadm` that acts on another service (a JSON list of
# [kind, svc, host] in meta): a guest started behind xenfab's back at the very moment its run
# is sending starts, which a test cannot time from outside.
ARMED_KEY = "armed"


def fire_armed(ctx: Ctx, acting_on: str) -> None:
    """Fire every armed fault that waits on a clusvcadm acting on a service other than its own."""
    db = ctx.db
    try:
        armed = json.loads(meta(db, ARMED_KEY, "[]"))
    except ValueError:
        armed = []
    keep = []
    for kind, svc, host in armed:
        if svc == acting_on:
            keep.append([kind, svc, host])
            continue
        start_behind(db, ctx.lab_dir, svc, host, cluster=kind == "start-behind-on-start")
    if armed != keep:
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (ARMED_KEY, json.dumps(keep))
        )


# --------------------------------------------------------------------------- faults


FAIL_MESSAGES = {
    "xl": (
        "xencall: error: Could not obtain handle on privileged command interface: "
        "No such file or directory\n"
        "libxl: error: libxl.c:102:libxl_ctx_alloc: cannot open libxc handle: "
        "No such file or directory\n"
        "cannot init xl context\n",
        "",
        1,
    ),
    "xm": (
        "Error: Unable to connect to xend: No such file or directory. Is xend running?\n",
        "",
        1,
    ),
    "xentop": ("Failed to initialize xenstat library\n", "", 1),
}


# The cluster managers' tools, by family: each in a module of its own, next to this file, that
# the lab's backends bring (the Xen toolstack, xl/xm/xentop, is this file's own).
FAMILIES = {"clustat": "rgmanager_tools", "clusvcadm": "rgmanager_tools"}


def _family(tool: str):
    """The module emulating ``tool``'s family, or None for the Xen tools (and unknown ones)."""
    name = FAMILIES.get(tool)
    if name is None:
        return None
    if __package__:
        import importlib

        return importlib.import_module("." + name, __package__)
    # Run by path (the wrappers, the server): the family file is a sibling on sys.path[0].
    return __import__(name)


def run(lab_dir: str, host: str, tool: str, args: list[str], stream: Stream) -> int:
    """Run one tool as ``host`` of the lab in ``lab_dir``; its output goes to ``stream``."""
    try:
        ctx = Ctx(lab_dir, host, stream)
    except UnknownHost:
        stream.write(2, "lab: unknown host %s\n" % host)
        return 1
    try:
        delay_ms = int(meta(ctx.db, "latency_ms", "0") or 0) + int(ctx.h["slow_ms"] or 0)
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
            ctx.now = time.time()
        if ctx.h["fails"]:
            family = _family(tool)
            messages = family.FAIL_MESSAGES if family is not None else FAIL_MESSAGES
            err, out, rc = messages.get(tool, ("%s: internal error\n" % tool, "", 1))
            ctx.err(err)
            ctx.out(out)
            return rc
        if tool in ("xl", "xm"):
            return tool_xen(ctx, tool, args)
        if tool == "xentop":
            return tool_xentop(ctx, args)
        family = _family(tool)
        if family is not None:
            return family.TOOLS[tool](ctx, args)
        ctx.err("%s: command not found\n" % tool)
        return 127
    finally:
        ctx.db.close()


# --------------------------------------------------------------------------- server

# A command on a simulated host used to start this file in a fresh Python (~25 ms of CPU, most
# of a login's cost in the lab). The server answers the hosts' tool wrappers from one long-lived
# process instead, a thread per command; the tools behave exactly as when run as a command.
MAX_REQUEST = 1 << 20


def _read_request(sock: socket.socket) -> list[str] | None:
    """``TOKEN\\0 ARGC\\0 HOST\\0 TOOL\\0 ARG\\0...`` from a wrapper; None if malformed."""
    data = b""
    while True:
        fields = data.split(b"\0")
        if len(fields) > 2:
            try:
                argc = int(fields[1])
            except ValueError:
                return None
            if len(fields) - 1 >= argc + 4:
                return [f.decode("utf-8", "surrogateescape") for f in fields[: argc + 4]]
        chunk = sock.recv(65536)
        if not chunk or len(data) > MAX_REQUEST:
            return None
        data += chunk


def _serve_one(sock: socket.socket, lab_dir: str, token: str) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = _read_request(sock)
        if request is None or not hmac.compare_digest(
            request[0].encode("utf-8", "surrogateescape"), token.encode()
        ):
            return
        host, tool, args = request[2], request[3], request[4:]
        stream = FrameStream(sock)
        try:
            rc = run(lab_dir, host, tool, args, stream)
        except Exception as exc:  # noqa: BLE001 - one broken command must not stop the server
            sys.stderr.write("emulator: %s %s %r: %r\n" % (host, tool, args, exc))
            stream.pending = []
            stream.write(2, "%s: lab emulator error: %s\n" % (tool, exc))
            rc = 1
        stream.close(rc)
    except OSError:
        pass  # the wrapper went away (its ssh session was closed): nobody to answer
    finally:
        sock.close()


def serve(lab_dir: str, listener: socket.socket, token: str) -> None:
    """Answer tool requests on ``listener`` until SIGTERM, one thread per request."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            # Out of file descriptors under a burst, say: wait for some to close, keep serving.
            time.sleep(0.05)
            continue
        threading.Thread(target=_serve_one, args=(sock, lab_dir, token), daemon=True).start()


def main(argv: list[str]) -> int:
    """Run ``emulator.py LAB_DIR HOST TOOL ARGS...``, or ``--serve LAB_DIR FD`` (token on stdin)."""
    if len(argv) == 4 and argv[1] == "--serve":
        token = sys.stdin.readline().strip()
        listener = socket.socket(fileno=int(argv[3]))
        serve(argv[2], listener, token)
        return 0
    if len(argv) < 4:
        sys.stderr.write("usage: emulator.py LAB_DIR HOST TOOL [ARGS...]\n")
        return 2
    return run(argv[1], argv[2], argv[3], argv[4:], StdStream())


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:
        sys.exit(141)
