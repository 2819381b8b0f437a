"""The rehearsal lab's tasks: ``lab.up``, ``lab.down``, ``lab.status``, ``lab.inject``."""

from __future__ import annotations

import json

from invoke import Collection, task
from invoke.exceptions import Exit

from ._common import cli


def lab_options(**given: object) -> dict:
    """The lab's numeric options given on the command line, checked (the lab has the defaults)."""
    from ..schema import Int, NonNegFloat, option

    kinds = {
        "hosts": Int,
        "guests": Int,
        "seed": Int,
        "latency_ms": Int,
        "boot_s": NonNegFloat,
        "clusters": Int,
        "ready_s": NonNegFloat,
    }
    return {
        k: option("--" + k.replace("_", "-"), v, kinds[k])
        for k, v in given.items()
        if v is not None
    }


LAB_DIR_HELP = "lab directory (default: $XENFAB_LAB_DIR, else ~/.cache/xenfab/lab)"
BACKEND_HELP = (
    "rgmanager (default: clustat and clusvcadm on every host), xl (no cluster manager: the "
    "Xen tools only, every guest's config linked from an autostart directory) or xe (an "
    "XCP-ng pool: xe on every host, the first one the master)"
)


def _summary(st: dict) -> str:
    if "clusters" in st:
        return _clusters_summary(st)
    hosts = st["hosts"]
    svcs = st["services"]
    # The lab's own count, by its backend's tools (rgmanager: service states; xl: domain lists).
    summary = st["summary"]
    down = sum(1 for h in hosts if not h["up"])
    state = "running" if st["running"] else "stopped"
    quorum = summary["quorate"]
    text = (
        f"lab {state} in {st['lab_dir']}: {len(hosts)} hosts ({down} down) on 127.0.0.x:"
        f"{st['port']}, {len(svcs)} guests ({summary['running']} started), "
        + (
            f"no cluster manager ({st['backend']})"
            if quorum is None
            else f"{'quorate' if quorum else 'INQUORATE'}"
        )
    )
    if st["running"] and not st.get("server_pid"):
        # Still correct, only slower: every emulated command starts a Python of its own.
        text += "; emulator server not running (the tools run as commands: slower)"
    import textwrap

    # A long lab directory would take the line past 100 columns.
    return "\n".join(textwrap.wrap(text, 100, subsequent_indent="  ", break_on_hyphens=False))


@task(
    help={
        "hosts": "number of simulated hosts, 1-100 (default 6; per cluster with --clusters)",
        "guests": "number of guests (default 30; per cluster with --clusters)",
        "clusters": "bring up N clusters (1-32), environments lab-c1 ... lab-cN, hosts "
        "cN-xen01... on 127.0.N.11 and up, each with its own cluster manager",
        "seed": "scenario seed: the same seed gives the same cluster (default 1)",
        "latency_ms": "delay added to every emulated command, in ms (default 0)",
        "boot_s": "seconds a started guest stays 'starting' (default 2)",
        "ready_s": "seconds after its domain booted that a guest answers ping and nc (default 0)",
        "backend": BACKEND_HELP,
        "lab_dir": LAB_DIR_HELP,
    },
    # Automatic short flags ran out of letters: --lab-dir got an empty one (`--=STRING`).
    auto_shortflags=False,
)
@cli
def up(
    c,
    hosts=None,
    guests=None,
    seed=None,
    latency_ms=None,
    boot_s=None,
    backend=None,
    lab_dir=None,
    clusters=None,
    ready_s=None,
):
    """Start the rehearsal lab: real sshd on 127.0.0.11.. with simulated Xen hosts."""
    from .. import lab as _lab

    given = lab_options(
        hosts=hosts,
        guests=guests,
        seed=seed,
        latency_ms=latency_ms,
        boot_s=boot_s,
        clusters=clusters,
        ready_s=ready_s,
    )
    if clusters is not None and backend not in (None, "rgmanager"):
        raise Exit("xenfab: lab.up --clusters: rgmanager clusters only (no --backend)", code=1)
    st = _lab.up(lab_dir, **given, backend=backend or "rgmanager")
    if st.get("restarted"):
        print("lab was already running: restarted it with a fresh scenario")
    print(_summary(st) + f" (up in {st['up_seconds']:.1f}s)")
    if "clusters" in st:
        first = st["clusters"][0]["lab_dir"]
        last = len(st["clusters"])
        names = ",".join(f"lab-c{n}" for n in range(1, last + 1))
        print(f"environments: lab-c1 ... lab-c{last} (try: fab facts --env {names})")
        print(f"ssh_config of lab-c1: {first}/ssh_config")
        return
    cfg = f"{st['lab_dir']}/ssh_config"
    print(f"ssh_config: {cfg}  (try: ssh -F {cfg} xen01 xl info)")


@task(help={"lab_dir": LAB_DIR_HELP})
@cli
def down(c, lab_dir=None):
    """Stop the rehearsal lab's sshd processes and its emulator server."""
    from .. import lab as _lab

    res = _lab.down(lab_dir)
    if res["stopped"]:
        pids = ", ".join(map(str, res["stopped"]))
        print(f"lab stopped in {res['lab_dir']} (sshd and emulator server PIDs {pids})")
    else:
        print(f"lab in {res['lab_dir']} was not running")


@task(help={"format": "table (default) or json", "lab_dir": LAB_DIR_HELP})
@cli
def status(c, format="table", lab_dir=None):
    """Show the lab's hosts, services, quorum and recorded starts."""
    from .. import lab as _lab

    if format not in ("table", "json"):
        raise Exit(f"xenfab: --format: {format!r} is not one of table, json", code=1)
    st = _lab.status(lab_dir)
    if format == "json":
        print(json.dumps(st, indent=2))
        return
    print(_status_text(st))


@task(
    positional=["kind"],
    help={
        "kind": "host-down (a partition), fence (the host powers off, the cluster records "
        "the fence), host-up, slow, command-fails, command-ok, inquorate, quorate, "
        "start-behind, hand-start (an xl create the cluster does not see), hand-start-on-start, "
        "start-behind-on-start (armed: at the next start of another guest), start-fails, "
        "start-ok; never-ready (--guest: it boots but never answers ping/nc), slow-boot "
        "(--guest, -s S: it answers S seconds late); xe labs: sr-unplugged/sr-plugged, "
        "host-disable/host-enable (--host), ha-enable, ha-disable, xapi-8.0, xapi-8.2",
        "host": "the host (host-down/-up, fence, slow, command-fails/-ok, start-behind...)",
        "guest": "the guest, e.g. web01 (start-behind, hand-start..., start-fails/-ok)",
        "ms": "milliseconds of delay for slow (0 removes it)",
        "s": "seconds for slow-boot",
        "lab_dir": LAB_DIR_HELP,
    },
)
@cli
def inject(c, kind, host=None, guest=None, ms=None, lab_dir=None, s=None):
    """Inject a fault, e.g. `lab.inject host-down --host xen03` (see --help for the kinds)."""
    from .. import lab as _lab

    spec = _lab.INJECT_KINDS.get(kind)
    if spec is None:
        # let the lab word the error (it lists the kinds)
        _lab.inject(lab_dir, kind)
        return
    given = {"HOST": host, "GUEST": guest, "MS": ms, "S": s}
    flags = {"HOST": "--host", "GUEST": "--guest", "MS": "--ms", "S": "-s"}
    if not spec and host and _lab.has_clusters(lab_dir):
        # A cluster-wide fault in a lab of clusters: the cluster of --host.
        spec = ("HOST",)
    missing = [flags[n] for n in spec if given[n] in (None, "")]
    extra = [flags[n] for n, v in given.items() if n not in spec and v not in (None, "")]
    if missing or extra:
        wanted = " ".join(f"{flags[n]} {n}" for n in spec) or "no options"
        raise Exit(f"xenfab: lab.inject {kind} takes {wanted}", code=1)
    args = [str(given[n]) for n in spec]
    _lab.inject(lab_dir, kind, *args)
    print(f"injected: {' '.join([kind, *args])}")


ns = Collection("lab")
for _t in (up, down, status, inject):
    ns.add_task(_t)


def _status_text(st: dict) -> str:
    """The lab's status as text: the summary, then its hosts, services and recorded starts."""
    parts = [_summary(st), "", _hosts_table(st), "", _services_table(st)]
    if st["starts"]:
        parts += ["", _starts_table(st)]
    return "\n".join(parts)


def _clusters_summary(st: dict) -> str:
    """A lab of clusters in one line per cluster."""
    lines = [f"lab of {len(st['clusters'])} clusters in {st['lab_dir']}:"]
    for c in st["clusters"]:
        state = "running" if c["running"] else "stopped"
        quorum = "quorate" if c["quorate"] else "INQUORATE"
        lines.append(
            f"  {c['cluster']}: {state}, {c['hosts']} hosts, {c['guests']} guests "
            f"({c['summary']['running']} started), {quorum}, port {c['port']}"
        )
    return "\n".join(lines)


def _cluster(row: dict) -> tuple:
    # A lab of clusters names each row's cluster (its environment) first.
    return (row["cluster"],) if "cluster" in row else ()


def _cluster_head(st: dict) -> list[str]:
    return ["cluster"] if "clusters" in st else []


def _hosts_table(st: dict) -> str:
    from tabulate import tabulate

    rows = [
        (
            *_cluster(h),
            h["name"],
            h["address"],
            "up" if h["up"] else "DOWN",
            h["toolstack"],
            h["cpus"],
            h["total_mib"],
            h["free_mib"],
        )
        for h in st["hosts"]
    ]
    headers = ["host", "address", "state", "tools", "cpus", "total MiB", "free MiB"]
    headers = _cluster_head(st) + headers
    return tabulate(rows, headers=headers)


def _services_table(st: dict) -> str:
    from tabulate import tabulate

    rows = [
        (*_cluster(s), s["name"], s["state"], s["owner"] or "", s["last_owner"] or "")
        for s in st["services"]
    ]
    return tabulate(rows, headers=_cluster_head(st) + ["service", "state", "owner", "last owner"])


def _starts_table(st: dict) -> str:
    from tabulate import tabulate

    rows = [
        (
            *_cluster(s),
            s["guest"],
            s["host"],
            f"{s['ended'] - s['began']:.1f}s",
            "ok" if s["ok"] else "FAILED",
        )
        for s in st["starts"]
    ]
    head = ["started guest", "on", "took", "result"]
    return tabulate(rows, headers=_cluster_head(st) + head)
