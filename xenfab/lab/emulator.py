"""The lab's emulated tools' dispatcher, and the state every tool family shares.

It runs as one long-lived server per lab (``emulator.py --serve LAB_DIR FD``, see ``serve``) that
the per-host tool wrappers ``labsh`` puts first on PATH ask, up to hundreds of commands at a
time; without the server a wrapper runs it as a command (``python3 -S -E emulator.py LAB_DIR HOST
TOOL ARGS...``), with the same output. Either way it is executed by path, uses the standard
library only and never imports the xenfab package (xenfab's parsers are tested against this
output; sharing code would let them agree with themselves). ``xenfab.lab.control`` imports it
for the schema and the state helpers.

The tools themselves are families, each a ``NAME_tools.py`` module next to this file, found
(``FAMILIES``), not listed: the Xen toolstack (``xen_tools.py``: xl, xm, xentop) and each
cluster manager's (rgmanager's is ``rgmanager_tools.py``). A family declares the backend it
emulates (``BACKEND``), its ``TOOLS`` and their ``FAIL_MESSAGES``, the armed faults it fires
(``ARMED``) and the ``HOOKS`` it answers: this file names no tool of any family.

The shared state is the hosts, their domains and the lab's record of its guests (``guests``:
config file, the host a guest runs on or ran on last, how and when it went down, its faults), in
no cluster manager's words: ``guest_record``/``guest_records`` read it, ``guest_up`` and
``guest_down`` keep it. A cluster manager's family keeps its own state beside it (rgmanager's
services), derived from the guests when the lab is set up and kept in step through the hooks:
how one family tells the others about a change without naming them. ``domain-built`` (a domain
built by hand, e.g. ``xl create``: its guest now runs there), ``guest-name`` (a family's own name
for a guest, e.g. a service name, to the guest's), ``services`` (a family's view of the guests
for lab.status).
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
    booted REAL NOT NULL, left_at REAL NOT NULL DEFAULT 0, fenced_at REAL NOT NULL DEFAULT 0,
    fenced_by INTEGER NOT NULL DEFAULT 0, off INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS domains(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, mem_mib INTEGER NOT NULL,
    maxmem_mib INTEGER NOT NULL, vcpus INTEGER NOT NULL, domid INTEGER NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS guests(
    name TEXT PRIMARY KEY, cfg TEXT NOT NULL, host TEXT, down_how TEXT,
    since REAL NOT NULL DEFAULT 0, start_fails INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS starts(
    id INTEGER PRIMARY KEY, guest TEXT NOT NULL, host TEXT NOT NULL, began REAL NOT NULL,
    ended REAL NOT NULL, ok INTEGER NOT NULL);
"""
# A host that is not ``up`` is cut off (a partition: it runs on, its domains too) unless ``off``
# (powered off by a fence: no domains). ``left_at``: when it last left the cluster;
# ``fenced_at``/``fenced_by``: when it was last fenced, by which member's node id (0: never).
# The guests table, in no cluster manager's words: ``host`` is where the guest runs now or ran
# last (NULL: it never ran); ``down_how`` is NULL while it runs, else DOWN_CLEAN (stopped by
# hand) or DOWN_CRASHED (its host failed, or its start did); ``since`` is when it started or
# went down (0: never); ``start_fails`` is the lab's fault (every start of it fails).
DOWN_CLEAN, DOWN_CRASHED = "clean", "crashed"


# --------------------------------------------------------------------------- state


def connect(lab_dir: str, timeout: float = 60.0, shared: bool = False) -> sqlite3.Connection:
    """Open the lab's state database (autocommit; callers use BEGIN IMMEDIATE to write).

    ``shared``: usable from another thread than the one that opened it (the server's pool).
    """
    db = sqlite3.connect(
        os.path.join(lab_dir, "state.db"),
        timeout=timeout,
        isolation_level=None,
        check_same_thread=not shared,
    )
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
    # A lab directory made before the fence columns existed gets them on its next reseed.
    have = {r[1] for r in db.execute("PRAGMA table_info(hosts)")}
    for column in ("left_at", "fenced_at", "fenced_by", "off"):
        if column not in have:
            kind = "INTEGER" if column in ("fenced_by", "off") else "REAL"
            db.execute(f"ALTER TABLE hosts ADD COLUMN {column} {kind} NOT NULL DEFAULT 0")


def meta(db: sqlite3.Connection, key: str, default: str = "") -> str:
    """One value of the meta table."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def host_free_mib(db: sqlite3.Connection, host: str) -> int:
    """Free RAM of a host: total - dom0 - every domain it runs."""
    row = db.execute("SELECT total_mib, dom0_mib FROM hosts WHERE name = ?", (host,)).fetchone()
    used = db.execute(
        "SELECT COALESCE(SUM(mem_mib), 0) FROM domains WHERE host = ?", (host,)
    ).fetchone()[0]
    return int(row["total_mib"] - row["dom0_mib"] - used)


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

    def __init__(
        self,
        lab_dir: str,
        host: str,
        stream: Stream | None = None,
        db: sqlite3.Connection | None = None,
    ) -> None:
        self.lab_dir = lab_dir
        self.stream = stream or StdStream()
        self.db = db if db is not None else connect(lab_dir)
        self.host = host
        self.now = time.time()
        row = self.db.execute("SELECT * FROM hosts WHERE name = ?", (host,)).fetchone()
        if row is None:
            if db is None:
                self.db.close()
            raise UnknownHost(host)
        self.h = row

    def out(self, text: str) -> None:
        self.stream.write(1, text)

    def err(self, text: str) -> None:
        self.stream.write(2, text)

    def flush(self) -> None:
        """Let the caller see what was written so far (the "trying to..." before an answer)."""
        self.stream.flush()

    def domains(self) -> list:
        return self.db.execute(
            "SELECT * FROM domains WHERE host = ? ORDER BY domid", (self.host,)
        ).fetchall()

    def free_mib(self) -> int:
        return host_free_mib(self.db, self.host)


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


def record_start(
    db: sqlite3.Connection, guest: str, host: str, began: float, ended: float, ok: bool
) -> None:
    """One start attempt in the lab's log (lab.status ``starts``), whichever tool made it."""
    db.execute(
        "INSERT INTO starts(guest, host, began, ended, ok) VALUES (?, ?, ?, ?, ?)",
        (guest, host, began, ended, 1 if ok else 0),
    )


# --------------------------------------------------------------------------- families


# The tool families are found, not listed: every ``NAME_tools.py`` next to this file is one, so a
# new backend's lab brings its module and edits nothing here (see the module docstring).
FAMILY_SUFFIX = "_tools.py"
FAMILIES = tuple(
    sorted(
        f[: -len(".py")]
        for f in os.listdir(os.path.dirname(os.path.abspath(__file__)))
        if f.endswith(FAMILY_SUFFIX) and not f.startswith(("_", "."))
    )
)
_LOADED: list = []


def families() -> list:
    """Every family's module, imported once: the toolstack's (``TOOLSTACK = True``) first."""
    if not _LOADED:
        if __package__:
            import importlib

            found = [importlib.import_module("." + n, __package__) for n in FAMILIES]
        else:
            # Run by path (the wrappers, the server): the family files are siblings on sys.path[0].
            found = [__import__(n) for n in FAMILIES]
        # The toolstack answers hooks first, as every host has it whatever the manager.
        _LOADED.extend(sorted(found, key=lambda f: not getattr(f, "TOOLSTACK", False)))
    return _LOADED


def _family(tool: str):
    """The module emulating ``tool``, or None for a tool no family has."""
    return next((f for f in families() if tool in f.TOOLS), None)


def notify(event: str, *args: object) -> list:
    """Call every family's hook for ``event``; the answers, in family order (None dropped)."""
    answers = []
    for f in families():
        hook = getattr(f, "HOOKS", {}).get(event)
        if hook is not None:
            answer = hook(*args)
            if answer is not None:
                answers.append(answer)
    return answers


def _record_of(row: sqlite3.Row) -> dict:
    running = row["down_how"] is None
    return {
        "guest": row["name"],
        "cfg": row["cfg"],
        "host": row["host"],
        "down_how": row["down_how"],
        "since": row["since"],
        "start_fails": row["start_fails"],
        "running": running,
        "runs_on": row["host"] if running else None,
        "ran_on": row["host"],
    }


def guest_record(db: sqlite3.Connection, guest: str) -> dict | None:
    """The lab's record of ``guest`` (by its name, or a family's name for it), or None.

    A record: ``guest``, ``cfg``, ``host``, ``down_how``, ``since``, ``start_fails``, and
    ``running``, ``runs_on`` (its host while it runs) and ``ran_on`` (its host, running or not).
    """
    for name in (guest, *notify("guest-name", guest)):
        row = db.execute("SELECT * FROM guests WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return _record_of(row)
    return None


def guest_records(db: sqlite3.Connection) -> list[dict]:
    """Every guest's record (see ``guest_record``), sorted by name."""
    return [_record_of(r) for r in db.execute("SELECT * FROM guests ORDER BY name")]


def guest_up(db: sqlite3.Connection, guest: str, host: str, now: float) -> None:
    """Record that ``guest`` runs on ``host`` since ``now`` (a family's tool started it)."""
    db.execute(
        "UPDATE guests SET host = ?, down_how = NULL, since = ? WHERE name = ?", (host, now, guest)
    )


def guest_down(db: sqlite3.Connection, guest: str, how: str, host: str | None, now: float) -> None:
    """Record that ``guest`` went down (``how``: DOWN_CLEAN or DOWN_CRASHED) on ``host``."""
    db.execute(
        "UPDATE guests SET host = COALESCE(?, host), down_how = ?, since = ? WHERE name = ?",
        (host, how, now, guest),
    )


# --------------------------------------------------------------------------- hosts


def host_leaves(db: sqlite3.Connection, host: str, now: float) -> None:
    """``host`` drops out of the cluster (a partition): it and its domains run on, unreachable."""
    db.execute("UPDATE hosts SET left_at = ? WHERE name = ? AND up = 1", (now, host))
    db.execute("UPDATE hosts SET up = 0 WHERE name = ?", (host,))


def fence_host(db: sqlite3.Connection, host: str, now: float) -> None:
    """A successful fence of ``host``: powered off (its domains gone), recorded by the master.

    The fence master is the lowest node id still up, as fenced's is in practice; the families
    hear of it (``host-fenced``: rgmanager recovers the member's services).
    """
    host_leaves(db, host, now)
    master = db.execute("SELECT MIN(nodeid) FROM hosts WHERE up = 1").fetchone()[0] or 0
    db.execute(
        "UPDATE hosts SET off = 1, fenced_at = ?, fenced_by = ? WHERE name = ?",
        (now, master, host),
    )
    db.execute("DELETE FROM domains WHERE host = ?", (host,))
    for (guest,) in db.execute(
        "SELECT name FROM guests WHERE host = ? AND down_how IS NULL", (host,)
    ).fetchall():
        guest_down(db, guest, DOWN_CRASHED, host, now)
    notify("host-fenced", db, host, now)


def host_returns(db: sqlite3.Connection, lab_dir: str, host: str, now: float) -> None:
    """``host`` is back: a partition heals; a powered-off host boots (``host-booted``)."""
    row = db.execute("SELECT up, off FROM hosts WHERE name = ?", (host,)).fetchone()
    db.execute("UPDATE hosts SET up = 1 WHERE name = ?", (host,))
    if row is not None and row["off"]:
        db.execute(
            "UPDATE hosts SET off = 0, booted = ?, next_domid = 1 WHERE name = ?", (now, host)
        )
        notify("host-booted", db, lab_dir, host, now)


# --------------------------------------------------------------------------- faults

# Faults armed to fire at the next start (by any family's tool) that acts on another guest (a
# JSON list of [kind, guest, host] in meta): a guest started behind xenfab's back at the very
# moment its run is sending starts, which a test cannot time from outside.
ARMED_KEY = "armed"


def arm(db: sqlite3.Connection, kind: str, guest: str, host: str) -> None:
    """Arm fault ``kind`` (a family's ``ARMED`` entry) for ``guest`` on ``host``."""
    try:
        armed = json.loads(meta(db, ARMED_KEY, "[]") or "[]")
    except ValueError:
        armed = []
    armed.append([kind, guest, host])
    db.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (ARMED_KEY, json.dumps(armed))
    )


def fire_armed(ctx: Ctx, acting_on: str) -> None:
    """Fire every armed fault that waits on a start acting on a guest other than its own."""
    db = ctx.db
    try:
        armed = json.loads(meta(db, ARMED_KEY, "[]"))
    except ValueError:
        armed = []
    handlers = {k: h for f in families() for k, h in getattr(f, "ARMED", {}).items()}
    keep = []
    for kind, guest, host in armed:
        if guest == acting_on or kind not in handlers:
            keep.append([kind, guest, host])
            continue
        handlers[kind](db, ctx.lab_dir, guest, host)
    if armed != keep:
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (ARMED_KEY, json.dumps(keep))
        )


def run(
    lab_dir: str,
    host: str,
    tool: str,
    args: list[str],
    stream: Stream,
    pool: Connections | None = None,
) -> int:
    """Run one tool as ``host`` of the lab in ``lab_dir``; its output goes to ``stream``.

    ``pool``: the server's open connections (one is taken for the run and given back).
    """
    db = pool.take() if pool is not None else None
    try:
        ctx = Ctx(lab_dir, host, stream, db)
    except UnknownHost:
        if pool is not None and db is not None:
            pool.give(db)
        stream.write(2, "lab: unknown host %s\n" % host)
        return 1
    except BaseException:
        if db is not None:
            db.close()
        raise
    try:
        delay_ms = int(meta(ctx.db, "latency_ms", "0") or 0) + int(ctx.h["slow_ms"] or 0)
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
            ctx.now = time.time()
        family = _family(tool)
        if ctx.h["fails"]:
            messages = family.FAIL_MESSAGES if family is not None else {}
            err, out, rc = messages.get(tool, ("%s: internal error\n" % tool, "", 1))
            ctx.err(err)
            ctx.out(out)
            return rc
        if family is not None:
            return family.TOOLS[tool](ctx, args)
        ctx.err("%s: command not found\n" % tool)
        return 127
    finally:
        if pool is not None:
            pool.give(ctx.db)
        else:
            ctx.db.close()


# --------------------------------------------------------------------------- server

# A command on a simulated host used to start this file in a fresh Python (~25 ms of CPU, most
# of a login's cost in the lab). The server answers the hosts' tool wrappers from one long-lived
# process instead, a thread per command; the tools behave exactly as when run as a command.
MAX_REQUEST = 1 << 20


class Connections:
    """The server's database connections, reused across requests, each by one at a time.

    A new connection costs more than most tools' queries (sqlite reads the schema afresh), and
    a round of reads asks every host at once. One whose database file was replaced (lab.up) or
    that is left inside a transaction is closed instead of reused.
    """

    def __init__(self, lab_dir: str) -> None:
        self.lab_dir = lab_dir
        self.path = os.path.join(lab_dir, "state.db")
        self.free: list[tuple[sqlite3.Connection, int]] = []
        self.lock = threading.Lock()
        self.inodes: dict[int, int] = {}

    def _inode(self) -> int:
        try:
            return os.stat(self.path).st_ino
        except OSError:
            return -1

    def take(self) -> sqlite3.Connection:
        """An open connection to the current database file."""
        inode = self._inode()
        with self.lock:
            while self.free:
                db, was = self.free.pop()
                if was == inode:
                    return db
                db.close()
        db = connect(self.lab_dir, shared=True)
        with self.lock:
            self.inodes[id(db)] = inode
        return db

    def give(self, db: sqlite3.Connection) -> None:
        """Give ``db`` back after a request."""
        with self.lock:
            inode = self.inodes.pop(id(db), -1)
            if db.in_transaction or inode != self._inode() or len(self.free) >= 64:
                db.close()
                return
            self.inodes[id(db)] = inode
            self.free.append((db, inode))


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


def _serve_one(sock: socket.socket, lab_dir: str, token: str, pool: Connections) -> None:
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
            rc = run(lab_dir, host, tool, args, stream, pool)
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
    pool = Connections(lab_dir)
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            # Out of file descriptors under a burst, say: wait for some to close, keep serving.
            time.sleep(0.05)
            continue
        threading.Thread(target=_serve_one, args=(sock, lab_dir, token, pool), daemon=True).start()


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
