"""The lab's emulated network tools on every host: ``ping`` (iputils) and ``nc`` (OpenBSD netcat).

They answer for the lab's guests the way a readiness probe sees a real guest: nothing while
its domain boots (``boot_s``), refused connections and unanswered pings after that until it
is ready (``ready_s`` more seconds, lab.up --ready-s; more for a ``slow-boot`` guest, never for
a ``never-ready`` one), and answers once ready. A name that is neither a lab guest nor a lab host
gets the real tools' resolver error and exit code. Only the forms a probe uses are emulated, as
strictly as the real tools parse them. Standard library only; never imports xenfab.
"""

# The tools are C programs: their printf formats are reproduced with "%" on purpose.
# ruff: noqa: UP031
from __future__ import annotations

import json
import sqlite3
import time
import zlib

try:  # imported as part of xenfab.lab
    from .emulator import Ctx, _getopt, meta
except ImportError:  # run by path, next to emulator.py
    from emulator import Ctx, _getopt, meta  # type: ignore[no-redef]

READY_FAULTS = "ready_faults"  # meta: {guest: {"never": bool, "extra_s": float}}
NOT_READY, BOOTING, READY, NO_SUCH = "not-ready", "booting", "ready", "unknown"
# Seconds a tool's own wait is cut to in the lab, at most (a probe's -W/-w is short anyway).
MAX_WAIT_S = 5.0


def _faults(db: sqlite3.Connection) -> dict:
    try:
        found = json.loads(meta(db, READY_FAULTS, "{}") or "{}")
    except ValueError:
        found = {}
    return found if isinstance(found, dict) else {}


def _set_fault(db: sqlite3.Connection, guest: str, **change: object) -> None:
    faults = _faults(db)
    faults.setdefault(guest, {}).update(change)
    db.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (READY_FAULTS, json.dumps(faults))
    )


def _address(name: str) -> str:
    """A stable made-up address for a guest (the lab resolves names itself)."""
    h = zlib.crc32(name.encode())
    return "10.%d.%d.%d" % (16 + (h >> 16) % 16, (h >> 8) % 256, 1 + h % 253)


def readiness(db: sqlite3.Connection, name: str, now: float) -> tuple[str, str]:
    """(state, address) of ``name`` as the network sees it: ready, booting, not-ready, unknown.

    A host answers while it is up; a guest once its domain (on a host that is not powered off)
    has booted and ``ready_s`` (plus its slow-boot seconds) more have passed.
    """
    host = db.execute("SELECT address, up, off FROM hosts WHERE name = ?", (name,)).fetchone()
    if host is not None:
        return (READY if host["up"] and not host["off"] else NOT_READY), host["address"]
    if db.execute("SELECT 1 FROM guests WHERE name = ?", (name,)).fetchone() is None:
        return NO_SUCH, ""
    address = _address(name)
    row = db.execute(
        "SELECT MIN(d.created) FROM domains d JOIN hosts h ON h.name = d.host "
        "WHERE d.name = ? AND h.off = 0",
        (name,),
    ).fetchone()
    created = row[0] if row is not None else None
    if created is None:
        return NOT_READY, address
    fault = _faults(db).get(name, {})
    booted = created + float(meta(db, "boot_s", "2") or 0)
    if now < booted:
        return BOOTING, address
    if fault.get("never"):
        return NOT_READY, address
    ready_at = booted + float(meta(db, "ready_s", "0") or 0) + float(fault.get("extra_s", 0))
    return (READY if now >= ready_at else NOT_READY), address


def _seconds(value: str) -> float | None:
    try:
        f = float(value)
    except ValueError:
        return None
    return f if 0 <= f < 1e6 else None


PING_USAGE = (
    "\nUsage\n  ping [options] <destination>\n\nOptions:\n"
    "  <destination>      dns name or ip address\n"
    "  -c <count>         stop after <count> replies\n"
    "  -W <timeout>       time to wait for response\n"
)


def tool_ping(ctx: Ctx, args: list[str]) -> int:
    """iputils ping: ``ping -c COUNT -W SECONDS NAME`` (and -q, -n)."""
    opts, operands, error = _getopt(args, "c:W:w:i:qn46")
    if error:
        ctx.err("ping: %s\n%s" % (error, PING_USAGE))
        return 2
    count, wait = 1 << 30, 10.0
    for flag, value in opts:
        if flag == "c":
            if not value.isdigit() or not 1 <= int(value) <= 2**31 - 1:
                ctx.err(
                    "ping: invalid argument: '%s': out of range: 1 <= value <= 2147483647\n" % value
                )
                return 1
            count = int(value)
        elif flag in ("W", "w", "i"):
            if _seconds(value) is None:
                ctx.err(
                    "ping: bad linger time: %s\n" % value
                    if flag != "i"
                    else "ping: bad timing interval: %s\n" % value
                )
                return 1
            if flag == "W":
                wait = float(value)
    if not operands:
        ctx.err("ping: usage error: Destination address required\n")
        return 1
    name = operands[-1]
    state, address = readiness(ctx.db, name, ctx.now)
    if state == NO_SUCH:
        ctx.err("ping: %s: Name or service not known\n" % name)
        return 2
    sent = min(count, 3)  # a probe sends one; the lab never runs an endless ping
    ctx.out("PING %s (%s) 56(84) bytes of data.\n" % (name, address))
    if state == READY:
        for seq in range(1, sent + 1):
            ctx.out(
                "64 bytes from %s (%s): icmp_seq=%d ttl=64 time=0.412 ms\n" % (name, address, seq)
            )
        ctx.out(
            "\n--- %s ping statistics ---\n%d packets transmitted, %d received, 0%% packet loss, "
            "time 0ms\nrtt min/avg/max/mdev = 0.412/0.412/0.412/0.000 ms\n" % (name, sent, sent)
        )
        return 0
    ctx.flush()
    time.sleep(min(wait * sent, MAX_WAIT_S))
    ctx.out(
        "\n--- %s ping statistics ---\n%d packets transmitted, 0 received, 100%% packet loss, "
        "time %dms\n\n" % (name, sent, int(wait * 1000 * sent))
    )
    return 1


NC_USAGE = (
    "usage: nc [-46CDdFhklNnrStUuvZz] [-I length] [-i interval] [-M ttl]\n"
    "\t  [-m minttl] [-O length] [-P proxy_username] [-p source_port]\n"
    "\t  [-q seconds] [-s sourceaddr] [-T keyword] [-V rtable] [-W recvlimit]\n"
    "\t  [-w timeout] [-X proxy_protocol] [-x proxy_address[:port]]\n"
    "\t  [destination] [port]\n"
)


def tool_nc(ctx: Ctx, args: list[str]) -> int:
    """OpenBSD netcat, the port check only: ``nc -z [-v] [-w SECONDS] NAME PORT``."""
    opts, operands, error = _getopt(args, "46nvzw:")
    if error:
        ctx.err("nc: %s\n%s" % (error, NC_USAGE))
        return 1
    flags = {f for f, _ in opts}
    wait = None
    for flag, value in opts:
        if flag == "w":
            if not value.isdigit():
                ctx.err("nc: timeout %s: invalid\n" % value)
                return 1
            wait = float(value)
    if len(operands) != 2:
        ctx.err(NC_USAGE)
        return 1
    name, port = operands
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        ctx.err("nc: port number invalid: %s\n" % port)
        return 1
    if "z" not in flags:
        ctx.err("nc: the lab emulates the port check (-z) only\n")
        return 1
    verbose = "v" in flags
    state, _address_ = readiness(ctx.db, name, ctx.now)
    if state == NO_SUCH:
        ctx.err('nc: getaddrinfo for host "%s" port %s: Name or service not known\n' % (name, port))
        return 1
    if state == READY:
        if verbose:
            ctx.err("Connection to %s %s port [tcp/*] succeeded!\n" % (name, port))
        return 0
    if state == NOT_READY and _booted(ctx, name):
        # The kernel is up, the service is not: refused at once.
        if verbose:
            ctx.err("nc: connect to %s port %s (tcp) failed: Connection refused\n" % (name, port))
        return 1
    # Nothing answers the address yet (booting, or no domain): the connect times out.
    time.sleep(min(wait if wait is not None else MAX_WAIT_S, MAX_WAIT_S))
    if verbose:
        ctx.err(
            "nc: connect to %s port %s (tcp) timed out: Operation now in progress\n" % (name, port)
        )
    return 1


def _booted(ctx: Ctx, name: str) -> bool:
    row = ctx.db.execute(
        "SELECT MIN(d.created) FROM domains d JOIN hosts h ON h.name = d.host "
        "WHERE d.name = ? AND h.off = 0",
        (name,),
    ).fetchone()
    return row is not None and row[0] is not None


def _never_ready(db: sqlite3.Connection, lab: str, v: dict) -> None:
    _set_fault(db, v["guest"], never=True)


def _slow_boot(db: sqlite3.Connection, lab: str, v: dict) -> None:
    _set_fault(db, v["guest"], extra_s=v["s"])


FAIL_MESSAGES = {
    "ping": ("ping: socket: Operation not permitted\n", "", 2),
    "nc": ("nc: socket: Operation not permitted\n", "", 1),
}
# Every host has these, whatever its toolstack and cluster manager (control._write_tools).
EVERY_HOST = True
TOOLS = {"ping": tool_ping, "nc": tool_nc}
HOST_TOOLS = ("ping", "nc")
HOST_PATHS: dict = {}
# [kind] -> (arguments, handler(db, lab_dir, values)): readiness faults of one guest.
FAULTS = {
    # its domain boots, but it never answers a probe
    "never-ready": (("GUEST",), _never_ready),
    # it answers S seconds later than the lab's --ready-s
    "slow-boot": (("GUEST", "S"), _slow_boot),
}
