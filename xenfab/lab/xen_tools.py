"""The lab's emulated Xen toolstack: xl, xm and xentop (Xen 3.4 to 4.17), a family of its own.

Every lab host has it, whatever the cluster manager (``rgmanager_tools.py`` brings rgmanager's
tools; a lab with ``backend: xl`` brings nothing more). It also is the xl backend's lab
family: no tools beyond these, and a per-host autostart directory (xendomains' /etc/xen/auto).
It reads and keeps the shared state's neutral guests only (``emulator.guest_record``,
``guest_up``), tells the other families about the domains it builds through ``emulator.notify``
and never reads a cluster manager's state. Like the emulator it uses the standard library only
and never imports the xenfab package.
"""

# The tools are C programs: their printf formats are reproduced with "%" on purpose.
# ruff: noqa: UP031
from __future__ import annotations

import os
import shutil
import sqlite3
import time

try:  # imported as part of xenfab.lab
    from .emulator import (
        Ctx,
        fire_armed,
        guest_record,
        guest_up,
        host_free_mib,
        meta,
        notify,
        record_start,
        write_transaction,
    )
except ImportError:  # run by path, next to emulator.py
    from emulator import (  # type: ignore[no-redef]
        Ctx,
        fire_armed,
        guest_record,
        guest_up,
        host_free_mib,
        meta,
        notify,
        record_start,
        write_transaction,
    )

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
        return _create_locked(ctx, cfg, tool)


def _create_locked(ctx: Ctx, cfg: dict, tool: str = "xl") -> int:
    db, name, now = ctx.db, cfg["name"], time.time()
    fire_armed(ctx, name)
    same = db.execute(
        "SELECT domid FROM domains WHERE host = ? AND name = ?", (ctx.host, name)
    ).fetchone()
    if same is not None:
        # A name is unique per host: libxl__domain_rename (xl), XendDomainInfo._checkName (xm).
        if tool == "xm":
            ctx.err("Error: VM name '%s' already exists as domain %d\n" % (name, same[0]))
        else:
            domid = db.execute("SELECT next_domid FROM hosts WHERE name = ?", (ctx.host,))
            ctx.err(
                "libxl: error: libxl_domain.c:1:libxl__domain_rename: Domain %d:Domain with name "
                '"%s" already exists.\n' % (domid.fetchone()[0], name)
            )
        record_start(db, name, ctx.host, now, now, False)
        return 1
    record = guest_record(db, name)
    if (record is not None and record["start_fails"]) or cfg["memory"] > host_free_mib(
        db, ctx.host
    ):
        ctx.err(
            "libxl: error: libxl_create.c:1:domcreate_launch_dm: Domain %s:"
            "device model did not start: -3\n" % name
        )
        record_start(db, name, ctx.host, now, now, False)
        return 1
    build_domain(db, ctx.host, cfg, now)
    if record is not None:
        # The lab's record of the guest: it runs here now; the other families hear of it.
        guest_up(db, name, ctx.host, now)
        notify("domain-built", db, name, ctx.host, now)
    record_start(db, name, ctx.host, now, now, True)
    return 0


def build_domain(db: sqlite3.Connection, host: str, cfg: dict, now: float) -> None:
    """A new domain of ``cfg`` on ``host``, with the host's next domain id."""
    domid = db.execute("SELECT next_domid FROM hosts WHERE name = ?", (host,)).fetchone()[0]
    db.execute("UPDATE hosts SET next_domid = next_domid + 1 WHERE name = ?", (host,))
    db.execute(
        "INSERT INTO domains(name, host, mem_mib, maxmem_mib, vcpus, domid, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (cfg["name"], host, cfg["memory"], cfg["maxmem"], cfg["vcpus"], domid, now),
    )


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


# --------------------------------------------------------------------------- faults


def hand_start(db: sqlite3.Connection, lab_dir: str, guest: str, host: str) -> None:
    """A hand ``xl create`` of ``guest`` on ``host``: the domain runs there, nobody is told."""
    record = guest_record(db, guest)
    if record is None:
        return
    try:
        cfg = read_cfg(os.path.join(lab_dir, "xenconfig", record["cfg"]))
    except (OSError, ValueError, KeyError):
        cfg = {"name": guest, "memory": 1024, "maxmem": 1024, "vcpus": 1}
    if not db.execute(
        "SELECT 1 FROM domains WHERE host = ? AND name = ?", (host, cfg["name"])
    ).fetchone():
        build_domain(db, host, cfg, time.time())


def _host_booted(db: sqlite3.Connection, lab_dir: str, host: str, now: float) -> None:
    """The host boots: xendomains ``xl create``s every config its autostart directory links.

    As on a real host, with no regard for where else a guest runs (only this host's own names
    are refused): a guest started elsewhere meanwhile now runs twice. An xl lab only; with a
    cluster manager the lab's hosts have no autostart links.
    """
    auto = os.path.join(lab_dir, "hosts", host, AUTO_HOST)
    if meta(db, "backend", BACKEND) != BACKEND or not os.path.isdir(auto):
        return
    for link in sorted(os.listdir(auto)):
        try:
            cfg = read_cfg(os.path.join(auto, link))
        except (OSError, ValueError, KeyError):
            continue  # xendomains logs the failure and goes on with the next
        name = cfg["name"]
        taken = db.execute(
            "SELECT 1 FROM domains WHERE host = ? AND name = ?", (host, name)
        ).fetchone()
        if taken or cfg["memory"] > host_free_mib(db, host):
            record_start(db, name, host, now, now, False)
            continue
        build_domain(db, host, cfg, now)
        if guest_record(db, name) is not None:
            guest_up(db, name, host, now)
            notify("domain-built", db, name, host, now)
        record_start(db, name, host, now, now, True)


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
# The backend this family is the lab of (xl: no cluster manager, the toolstack alone), and the
# family every host has whatever the manager.
BACKEND = "xl"
TOOLSTACK = True
TOOLS = {
    "xl": lambda ctx, args: tool_xen(ctx, "xl", args),
    "xm": lambda ctx, args: tool_xen(ctx, "xm", args),
    "xentop": tool_xentop,
}
# Armed faults (emulator.fire_armed) this family fires: [kind] -> (db, lab_dir, guest, host).
ARMED = {"hand-start-on-start": hand_start}
HOOKS: dict = {"host-booted": _host_booted}


# --------------------------------------------------------------------------- the lab's control side
# What xenfab.lab.control reads: the toolstack every host gets, its faults, and, as the xl
# backend's lab family (no cluster manager), the tools it adds (none), its status summary and
# its per-host autostart directories.

TOOLSTACKS = {"xl": ("xl", "xentop"), "xm": ("xm", "xentop")}
# [kind] -> (arguments, handler(db, lab_dir, values)); "armed" ones wait for a start.
FAULTS = {
    # a hand `xl create` on HOST: the domain runs there, the cluster does not know
    "hand-start": (
        ("GUEST", "HOST"),
        lambda db, lab, v: hand_start(db, lab, v["guest"], v["host"]),
    ),
    # armed: fire at the next start acting on another guest (during a run's starts)
    "hand-start-on-start": (("GUEST", "HOST"), "armed"),
}
HOST_TOOLS: tuple[str, ...] = ()
# xendomains' autostart directory is a host's own: the lab's hosts share one filesystem, so the
# path every host is asked for (LAB_DIR/xen-auto, as /etc/xen/auto on each real host) is mapped,
# in that host's commands, to LAB_DIR/hosts/HOST/auto (see control's labsh).
AUTO_SHARED, AUTO_HOST = "xen-auto", "auto"
HOST_PATHS = {AUTO_SHARED: AUTO_HOST}


def summary(db: sqlite3.Connection, guests: list[dict], now: float) -> dict:
    """xl's view of the lab's guests: running where some live host lists the domain, else down."""
    listed = {
        r[0]
        for r in db.execute(
            "SELECT d.name FROM domains d JOIN hosts h ON h.name = d.host WHERE h.up = 1"
        )
    }
    running = sum(1 for g in guests if g["guest"] in listed)
    return {"running": running, "down": len(guests) - running, "quorate": None}


def setup(lab_dir: str, db: sqlite3.Connection, guests: list[dict], active: bool) -> None:
    """Link each guest's config from the autostart directory of the host it ran on (if active).

    A guest the lab never saw run anywhere is linked from the first host, so that every guest
    of the scenario stays ours to bring back, as with the shared directory before.
    """
    hosts = [r[0] for r in db.execute("SELECT name FROM hosts ORDER BY nodeid")]
    shutil.rmtree(os.path.join(lab_dir, AUTO_SHARED), ignore_errors=True)
    for h in hosts:
        shutil.rmtree(os.path.join(lab_dir, "hosts", h, AUTO_HOST), ignore_errors=True)
    if not active or not hosts:
        return
    for h in hosts:
        os.makedirs(os.path.join(lab_dir, "hosts", h, AUTO_HOST), exist_ok=True)
    for g in guests:
        host = g["ran_on"] if g["ran_on"] in hosts else hosts[0]
        os.symlink(
            os.path.join(lab_dir, "xenconfig", g["cfg"]),
            os.path.join(lab_dir, "hosts", host, AUTO_HOST, g["cfg"]),
        )
