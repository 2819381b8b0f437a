"""A fresh lab scenario, deterministic from a seed: a cluster just after a crash.

Hosts differ in size; some still run guests; most other guests are down, stopped by hand
(``clean``) or taken down by the crash (``crashed``), with the host they ran on last recorded.
The guests that are down always fit in the free RAM with room to spare, so a recovery can start
all of them. Guest configs are written in the varied xl syntax found in the wild (see
:func:`render_cfg`), plus one xm-style Python config that no key=value parser can read (guest
``legacy07``, crashed).

The scenario is recorded in the shared state's neutral ``guests`` table (see ``emulator``); a
cluster manager's family derives its own state from it (rgmanager's family, for one, maps each
way down to a service state of its own).
"""

# printf-style "%" formatting mirrors the C formats of the files and tools being imitated.
# ruff: noqa: UP031
from __future__ import annotations

import os
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import emulator

FIRST_OCTET = 11  # xen01 is 127.0.0.11
MAX_HOSTS = 100
LEGACY_GUEST = "legacy07"

HOST_SIZES_GIB = (32, 48, 64, 96, 128, 192, 256)
HOST_CPUS = (8, 12, 16, 24, 32, 48, 64)
DOM0_MIB = (1024, 2048, 4096)
XL_VERSIONS = ("4.11.4", "4.14.6", "4.17.3")
XM_VERSIONS = ("4.0.1", "4.1.4", "3.4.3")
GUEST_SIZES = (
    (512, 2),
    (1024, 4),
    (2048, 5),
    (4096, 5),
    (6144, 1),
    (8192, 3),
    (12288, 1),
    (16384, 1),
)
PREFIXES = (
    "web",
    "db",
    "app",
    "mq",
    "cache",
    "lb",
    "mail",
    "dns",
    "ci",
    "log",
    "monitoring",
    "search",
    "proxy",
    "auth",
    "files",
)
# Over 30 characters with a service prefix (a cluster status tool truncates them) and sharing
# their first 10 (xentop does)
LONG_NAMES = ("reporting-warehouse-etl-primary01", "reporting-warehouse-etl-replica01")


@dataclass
class Host:
    """One simulated Xen host."""

    name: str
    nodeid: int
    address: str
    total_mib: int
    dom0_mib: int
    cpus: int
    cpu_mhz: int
    toolstack: str
    xen_version: str
    booted: float
    next_domid: int = 1
    used_mib: int = 0

    @property
    def free_mib(self) -> int:
        return self.total_mib - self.dom0_mib - self.used_mib


@dataclass
class Guest:
    """One guest: its config file, where it runs or ran last, how it went down, its domain."""

    name: str
    memory: int
    vcpus: int
    maxmem: int | None
    cfg: str = ""
    # None while it runs (on ``host``); else emulator.DOWN_CLEAN or DOWN_CRASHED
    down_how: str | None = emulator.DOWN_CLEAN
    host: str | None = None
    since: float = 0.0
    domid: int = 0
    created: float = 0.0
    extra: dict = field(default_factory=dict)


def host_name(index: int, count: int) -> str:
    """xen01..xen99; xen001..xen100 when the lab has 100 hosts."""
    return "xen%0*d" % (3 if count >= 100 else 2, index + 1)


def host_address(index: int) -> str:
    """The loopback address of host number index (0-based): 127.0.0.11 and up."""
    return "127.0.0.%d" % (FIRST_OCTET + index)


# A lab of several clusters (control.up(clusters=N)): cluster n is a lab of its own whose hosts
# are cn-xen01... on 127.0.n.11 and up (loopback only: 127.0.0.0/8 is lo's on Linux).
MAX_CLUSTERS = 32


def cluster_host_name(cluster: int, index: int, count: int) -> str:
    """Host number ``index`` of cluster ``cluster``: c2-xen01 (distinct across clusters)."""
    return f"c{cluster}-{host_name(index, count)}"


def cluster_host_address(cluster: int, index: int) -> str:
    """Its loopback address: 127.0.<cluster>.11 and up, one third octet per cluster."""
    if not 1 <= cluster <= MAX_CLUSTERS:
        raise ValueError(f"cluster {cluster}: 1 to {MAX_CLUSTERS}")
    return "127.0.%d.%d" % (cluster, FIRST_OCTET + index)


def make_hosts(count: int, seed: int, now: float, cluster: int = 0) -> list[Host]:
    """The hosts of a lab; their sizes depend on the seed, their names and addresses do not.

    ``cluster`` (1 and up): the hosts of that cluster of a multi-cluster lab (names, addresses).
    """
    rng = random.Random("hosts-%d" % seed)
    hosts = []
    n_xm = max(1, round(count / 5)) if count >= 3 else 0
    xm_idx = set(rng.sample(range(count), n_xm)) if n_xm else set()
    for i in range(count):
        gib = rng.choice(HOST_SIZES_GIB)
        xm = i in xm_idx
        hosts.append(
            Host(
                name=cluster_host_name(cluster, i, count) if cluster else host_name(i, count),
                nodeid=i + 1,
                address=cluster_host_address(cluster, i) if cluster else host_address(i),
                # the hypervisor keeps a little: xl info shows 65442 on a 64 GiB host
                total_mib=gib * 1024 - rng.randint(60, 400),
                dom0_mib=rng.choice(DOM0_MIB),
                cpus=rng.choice(HOST_CPUS),
                cpu_mhz=rng.choice((2100, 2394, 2600, 2933, 3191)),
                toolstack="xm" if xm else "xl",
                xen_version=rng.choice(XM_VERSIONS if xm else XL_VERSIONS),
                booted=now - rng.randint(1800, 3 * 3600),
                next_domid=rng.randint(1, 30),
            )
        )
    return hosts


def _guest_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    counters: dict[str, int] = {}
    if count >= 8:
        names += list(LONG_NAMES)
    while len(names) < count:
        prefix = rng.choice(PREFIXES)
        counters[prefix] = counters.get(prefix, 0) + 1
        names.append("%s%02d" % (prefix, counters[prefix]))
    rng.shuffle(names)
    return names[:count]


def _size(rng: random.Random) -> tuple[int, int]:
    sizes = [s for s, _ in GUEST_SIZES]
    weights = [w for _, w in GUEST_SIZES]
    mem = rng.choices(sizes, weights)[0]
    lo, hi = {512: (1, 1), 1024: (1, 2), 2048: (1, 2), 4096: (2, 4), 6144: (2, 4)}.get(
        mem, (2, 8) if mem <= 8192 else (4, 8)
    )
    return mem, rng.randint(lo, hi)


def make_guests(hosts: list[Host], count: int, seed: int, now: float) -> list[Guest]:
    """Guests, with about 1 in 5 running; the others fit in what stays free."""
    rng = random.Random("guests-%d" % seed)
    crash = now - rng.randint(600, 3600)
    legacy = count >= 2
    names = _guest_names(rng, count - (1 if legacy else 0))
    guests = []
    for name in names:
        mem, vcpus = _size(rng)
        maxmem = None
        if rng.random() < 0.35:
            maxmem = mem * rng.choice((1, 1, 2))
        guests.append(Guest(name=name, memory=mem, vcpus=vcpus, maxmem=maxmem))
    # Some guests survived the crash on hosts that stayed up; keep every host at most half full
    for g in guests:
        if rng.random() < 0.2:
            fits = [h for h in hosts if h.used_mib + g.memory <= (h.total_mib - h.dom0_mib) // 2]
            if fits:
                h = rng.choice(fits)
                h.used_mib += g.memory
                g.down_how, g.host = None, h.name
                g.since = h.booted + rng.randint(60, 600)
                g.created = g.since
                g.domid = h.next_domid
                h.next_domid += rng.randint(1, 3)
    down = [g for g in guests if g.down_how is not None]
    # The demo must be able to start all of them: shrink the biggest until they fit easily
    budget = 0.6 * sum(max(0, h.free_mib) for h in hosts)
    biggest_free = max((h.free_mib for h in hosts), default=0)
    for g in down:
        while g.memory > 512 and g.memory > biggest_free // 2:
            g.memory //= 2
            g.maxmem = None if g.maxmem is None else max(g.maxmem // 2, g.memory)
    while down and sum(g.memory for g in down) > budget:
        g = max(down, key=lambda x: x.memory)
        if g.memory <= 512:
            break
        g.memory //= 2
        g.maxmem = None if g.maxmem is None else max(g.maxmem // 2, g.memory)
    never_run = rng.choice(down) if len(down) >= 4 else None
    for g in down:
        g.down_how = emulator.DOWN_CLEAN if rng.random() < 0.65 else emulator.DOWN_CRASHED
        g.host = rng.choice(hosts).name if hosts else None
        g.since = crash + rng.uniform(0, 5)
        if g is never_run:
            # a guest that never ran: no host, no time (a cluster manager shows "none", 0)
            g.down_how, g.host, g.since = emulator.DOWN_CLEAN, None, 0.0
    if legacy:
        guests.append(
            Guest(
                name=LEGACY_GUEST,
                memory=1024,
                vcpus=2,
                maxmem=None,
                down_how=emulator.DOWN_CRASHED,
                host=rng.choice(hosts).name if hosts else None,
                since=crash + 2.5,
            )
        )
    used = set()
    for i, g in enumerate(guests):
        g.cfg = _cfg_file_name(rng, g, i, used)
    return guests


def _cfg_file_name(rng: random.Random, g: Guest, index: int, used: set[str]) -> str:
    if g.name == LEGACY_GUEST:
        name = "legacy-vm.cfg"
    else:
        r = rng.random()
        if r < 0.7:
            name = g.name + ".cfg"
        elif r < 0.85:
            name = g.name
        elif r < 0.93:
            name = "vm%03d-%s.cfg" % (index + 1, g.name[:3])
        else:
            name = g.name + ".example.com.cfg"
    while name in used:
        name = "x" + name
    used.add(name)
    return name


def _mac(rng: random.Random) -> str:
    return f"00:16:3e:{rng.randrange(256):02x}:{rng.randrange(256):02x}:{rng.randrange(256):02x}"


def _num(rng: random.Random, value: int, quoted: bool = False) -> str:
    """A number as real configs write it: decimal, sometimes hex or octal (what strtol reads)."""
    r = rng.random()
    if not quoted and r < 0.08:
        return hex(value)
    if not quoted and r < 0.12:
        return f"0{value:o}"
    return ("'%d'" % value) if quoted else str(value)


def render_cfg(rng: random.Random, g: Guest) -> str:
    """The text of a guest's config file, in one of several real-world styles."""
    if g.name == LEGACY_GUEST:
        return _legacy_cfg(g)
    style = rng.choice(("xen-tools", "hvm", "compact", "pv"))
    vg = rng.choice(("vg0", "vg_xen", "data"))
    if style == "xen-tools":
        lines = [
            "#",
            f"# Configuration file for the Xen instance {g.name}, created",
            "# by xen-tools 4.%d on Tue Mar  3 10:12:01 2015." % rng.randint(3, 8),
            "#",
            "",
            "#",
            "#  Kernel + memory size",
            "#",
            "bootloader  = '/usr/lib/xen-4.11/bin/pygrub'",
            "",
            "vcpus       = '%d'" % g.vcpus,
            "memory      = '%d'" % g.memory,
        ]
        if g.maxmem is not None:
            lines.append("maxmem      = '%d'" % g.maxmem)
        lines += [
            "",
            "#",
            "#  Disk device(s).",
            "#",
            "root        = '/dev/xvda2 ro'",
            "disk        = [",
            f"                  'phy:/dev/{vg}/{g.name}-disk,xvda2,w',",
            f"                  'phy:/dev/{vg}/{g.name}-swap,xvda1,w',",
            "              ]",
            "",
            "",
            "#",
            "#  Hostname",
            "#",
            f"name        = '{g.name}'",
            "",
            "#",
            "#  Networking",
            "#",
            "vif         = [ 'ip=10.0.%d.%d ,mac=%s,bridge=br0' ]"
            % (rng.randint(0, 9), rng.randint(2, 250), _mac(rng)),
            "",
            "#",
            "#  Behaviour",
            "#",
            "on_poweroff = 'destroy'",
            "on_reboot   = 'restart'",
            "on_crash    = 'restart'",
            "",
            "",
            "",
        ]
        return "\n".join(lines)
    if style == "hvm":
        lines = [
            f"# {g.name} -- HVM guest, its config on the shared storage",
            'builder = "hvm"',
            'type = "hvm"',
            f'name = "{g.name}"',
            f"memory = {_num(rng, g.memory)}  # MiB",
        ]
        if g.maxmem is not None:
            lines.append(f"maxmem = {_num(rng, g.maxmem)}")
        else:
            lines.append("#maxmem = %d" % (g.memory * 2))
        lines += [
            "vcpus = %d # keep in line with the licence" % g.vcpus,
            "disk = [",
            f'    "phy:/dev/mapper/{g.name}-root,hda,w",',
            '    ",hdc:cdrom,r",',
            "]",
            f'vif = [ "mac={_mac(rng)}, bridge=xenbr0", ]',
            'boot = "c"; serial = "pty"',
            "vnc = 1; vnclisten = \"0.0.0.0\"; vncpasswd = 'x#7k'  # a '#' in quotes is data",
            "",
        ]
        return "\n".join(lines)
    if style == "compact":
        mem = _num(rng, g.memory)
        parts = [f'name="{g.name}"', f"memory={mem}", "vcpus=%d" % g.vcpus]
        if g.maxmem is not None:
            parts.append(f"maxmem={_num(rng, g.maxmem)}")
        return (
            "; ".join(parts)
            + ";\n"
            + (
                "kernel='/boot/vmlinuz-xen';ramdisk='/boot/initrd-xen'\n"
                f"disk=['file:/srv/xen/{g.name}.img,xvda,w']\nvif=['']\n"
            )
        )
    lines = [
        "# PV guest",
        f'name="{g.name}"',
        "memory=%d" % g.memory,
    ]
    if g.maxmem is not None:
        lines.append('maxmem="%d"' % g.maxmem)
    lines += [
        f"vcpus={_num(rng, g.vcpus, quoted=rng.random() < 0.3)}",
        'bootloader="pygrub"',
        f"disk=[ 'tap:aio:/srv/xen/{g.name}/disk.img,xvda,w',"
        f" 'tap:aio:/srv/xen/{g.name}/swap.img,xvdb,w', ]",
        "vif=[ 'mac=%s,bridge=br%d', ]   " % (_mac(rng), rng.randint(0, 2)),
        "on_crash='coredump-restart'",
        "",
    ]
    return "\n".join(lines)


def _legacy_cfg(g: Guest) -> str:
    # An xm config is Python: `xm create` runs it. The name is computed, so no parser gets it.
    return (
        "#  -*- mode: python; -*-\n"
        "# Legacy guest from the old xend setup; started with `xm create legacy-vm.cfg vmid=7`.\n"
        "\n"
        "def check_vmid(var, val):\n"
        "    val = int(val)\n"
        "    if val < 1:\n"
        "        raise ValueError\n"
        "    return val\n"
        "\n"
        "xm_vars.var('vmid', use='Guest number, 1 or more.', check=check_vmid)\n"
        "xm_vars.check()\n"
        "\n"
        'kernel = "/boot/vmlinuz-2.6.32-5-xen-amd64"\n'
        "memory = %d\n"
        'name = "legacy%%02d" %% vmid\n'
        "vcpus = %d # two for the batch jobs\n"
        "disk = ['phy:/dev/vg0/legacy%%02d,xvda1,w' %% vmid]\n"
        "vif = ['mac=00:16:3e:00:00:%%02x, bridge=br0' %% (16 + vmid)]\n" % (g.memory, g.vcpus)
    )


def write_state(
    lab_dir: Path,
    hosts_count: int,
    guests_count: int,
    seed: int,
    boot_s: float,
    latency_ms: int,
    keep_hosts: bool = False,
    cluster: int = 0,
    ready_s: float = 0,
) -> None:
    """(Re)build state.db and xenconfig/ for a fresh scenario.

    ``cluster``: see make_hosts; ``ready_s``: see net_tools.
    """
    now = time.time()
    hosts = make_hosts(hosts_count, seed, now, cluster)
    guests = make_guests(hosts, guests_count, seed, now)
    by_name = {h.name: h for h in hosts}
    cfg_dir = lab_dir / "xenconfig"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random("cfg-%d" % seed)
    wanted = set()
    for g in guests:
        text = render_cfg(rng, g)
        tmp = cfg_dir / (f".{g.cfg}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cfg_dir / g.cfg)
        wanted.add(g.cfg)
    for p in cfg_dir.iterdir():
        if p.name not in wanted:
            p.unlink()
    db = emulator.connect(str(lab_dir))
    try:
        emulator.init_db(db)
        db.execute("BEGIN IMMEDIATE")
        try:
            _fill(db, hosts, guests, by_name, seed, boot_s, latency_ms, now)
            db.execute("INSERT INTO meta(key, value) VALUES ('ready_s', ?)", (str(ready_s),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()


def _fill(
    db: sqlite3.Connection,
    hosts: list[Host],
    guests: list[Guest],
    by_name: dict,
    seed: int,
    boot_s: float,
    latency_ms: int,
    now: float,
) -> None:
    for table in ("meta", "hosts", "domains", "guests", "starts"):
        db.execute(f"DELETE FROM {table}")
    rng = random.Random("cluster-%d" % seed)
    for key, value in (
        ("seed", seed),
        ("boot_s", boot_s),
        ("latency_ms", latency_ms),
        ("quorate", 1),
        ("cluster_id", rng.randint(1000, 65000)),
        ("generation", rng.randint(100, 900)),
        ("created", now),
    ):
        db.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, str(value)))
    for h in hosts:
        db.execute(
            "INSERT INTO hosts(name, nodeid, address, total_mib, dom0_mib, cpus, cpu_mhz, "
            "toolstack, xen_version, up, slow_ms, fails, next_domid, booted) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, 0, ?, ?)",
            (
                h.name,
                h.nodeid,
                h.address,
                h.total_mib,
                h.dom0_mib,
                h.cpus,
                h.cpu_mhz,
                h.toolstack,
                h.xen_version,
                h.next_domid,
                h.booted,
            ),
        )
    for g in guests:
        db.execute(
            "INSERT INTO guests(name, cfg, host, down_how, since, start_fails) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (g.name, g.cfg, g.host, g.down_how, g.since),
        )
        if g.down_how is None and g.host in by_name:
            db.execute(
                "INSERT INTO domains(name, host, mem_mib, maxmem_mib, vcpus, domid, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (g.name, g.host, g.memory, g.maxmem or g.memory, g.vcpus, g.domid, g.created),
            )
