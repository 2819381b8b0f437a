#!/usr/bin/env python3
"""Benchmark one run over many clusters on the lab: gather, plan, start-all, phase by phase.

    python bench/bench_scale.py                      # 500 hosts in 32 clusters, 5,000 guests
    python bench/bench_scale.py --clusters 3 --hosts 9 --guests 60    # a small rehearsal

It brings up its own lab of clusters (`lab.up(clusters=N)`) in a temporary directory and tears
it down. The run goes through xenfab.run.multi as `fab start-all --env 'lab-c*' --yes` does,
in this process, so each phase is timed and xenfab's own CPU (process time, every thread) is
known: gather (every cluster side by side, as multi.facts), plan (every cluster, one after
another: the planner is CPU-bound), start (multi.start: gathers and plans again, then every
cluster's engine in parallel; the engines' wall time is reported apart).

For each phase: wall time, xenfab CPU (and per host), the lab's CPU (its sshd trees and
emulator servers), the machine floor = (xenfab CPU + lab CPU) / cores, and wall / floor
(goal: within 1.5x; plan under 2 s). Not part of `bench/run.py --quick`, and not a test: the
machine may be shared, so the load average and the CPU other processes used are reported too.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from common import fmt_ratio, fmt_s, load_average, machine_cpu, table  # noqa: E402

from xenfab import lab  # noqa: E402


def spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts differing by at most one (the larger first)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def lab_cpu(root: str, clusters: int) -> float:
    """CPU seconds used so far by every cluster's sshd trees and emulator server."""
    return sum(common.lab_cpu(os.path.join(root, f"c{n}")) for n in range(1, clusters + 1))


def rss_mib() -> float:
    """This process's peak resident memory (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Phase:
    """Wall time, xenfab CPU, lab CPU and the machine's busy CPU over one phase."""

    def __init__(self, name: str, root: str, clusters: int) -> None:
        """Measure phase ``name`` of a lab of ``clusters`` clusters in ``root``."""
        self.name, self.root, self.clusters = name, root, clusters

    def __enter__(self) -> Phase:
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()
        self.lab0 = lab_cpu(self.root, self.clusters)
        self.busy0, self.total0 = machine_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.t0
        self.ours = time.process_time() - self.cpu0
        self.lab = lab_cpu(self.root, self.clusters) - self.lab0
        busy, total = machine_cpu()
        self.others = max(0.0, (busy - self.busy0) - self.ours - self.lab)
        self.cores = os.cpu_count() or 1

    @property
    def floor(self) -> float:
        """The wall time the CPU work alone needs on this machine's cores."""
        return (self.ours + self.lab) / self.cores


def main() -> int:
    """Bring up the lab, run the phases, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=32)
    ap.add_argument("--hosts", type=int, default=500, help="hosts in all")
    ap.add_argument("--guests", type=int, default=5000, help="guests in all")
    ap.add_argument("--boot-s", type=float, default=1.0)
    ap.add_argument("--lab", help="lab directory (default: a temporary one, removed)")
    ap.add_argument(
        "--gather-only",
        type=int,
        default=0,
        metavar="N",
        help="measure only the gather, N times (median of wall/floor): `--clusters 1 --hosts "
        "100 --gather-only 3` is the 100-host gather against its floor",
    )
    args = ap.parse_args()
    root = args.lab or tempfile.mkdtemp(prefix="xenfab-scale-")
    os.environ["XENFAB_LAB_DIR"] = root
    hosts = spread(args.hosts, args.clusters)
    guests = spread(args.guests, args.clusters)
    load0 = load_average()
    t0 = time.monotonic()
    lab.up(root, clusters=args.clusters, hosts=hosts, guests=guests, seed=1, boot_s=args.boot_s)
    up_s = time.monotonic() - t0
    try:
        if args.gather_only:
            return _gather_only(root, args, up_s, load0)
        return _measure(root, args, up_s, load0)
    finally:
        lab.down(root)


def _gather_only(root: str, args: argparse.Namespace, up_s: float, load0: float) -> int:
    from fabric import Config
    from invoke import Context

    from xenfab.run import multi

    spec = ",".join(f"lab-c{n}" for n in range(1, args.clusters + 1))
    c = Context(Config())
    config = os.path.join(common.REPO, "fabfile_config.yaml")
    rows = []
    for i in range(args.gather_only):
        with Phase("gather", root, args.clusters) as p:
            runs = multi.facts(c, config, spec, None)
        errors = [r.env for r in runs if r.error]
        rows.append([str(i + 1), *_cells(p, args.hosts), ", ".join(errors) or "-"])
    print(f"lab: {args.clusters} cluster(s), {args.hosts} hosts, up in {up_s:.1f}s; "
          f"{os.cpu_count()} cores; load average before: {load0:.2f}")  # fmt: skip
    heads = ["run", "wall s", "xenfab CPU s", "ms/host", "lab CPU s", "others CPU s", "floor s"]
    print(table(rows, [*heads, "wall/floor", "errors"]))
    print(f"load average after: {load_average():.2f}")
    return 0


def _cells(p: Phase, hosts: int) -> list[str]:
    """A phase's figures as a table row: wall, CPU (xenfab's, per host, the lab's, others'),
    the floor and wall / floor."""
    return [
        fmt_s(p.wall),
        fmt_s(p.ours),
        f"{1000 * p.ours / hosts:.1f}",
        fmt_s(p.lab),
        fmt_s(p.others),
        fmt_s(p.floor),
        fmt_ratio(p.wall / p.floor if p.floor else None),
    ]


def _measure(root: str, args: argparse.Namespace, up_s: float, load0: float) -> int:
    from fabric import Config
    from invoke import Context

    from xenfab.plan import plan
    from xenfab.run import RunRequest, multi
    from xenfab.run.facts import load, run_policy

    spec = ",".join(f"lab-c{n}" for n in range(1, args.clusters + 1))
    c = Context(Config())
    config = os.path.join(common.REPO, "fabfile_config.yaml")
    phases = []
    with Phase("gather", root, args.clusters) as gather:
        runs = multi.facts(c, config, spec, None)
    phases.append(gather)
    errors = [r.env for r in runs if r.error]
    with Phase("plan", root, args.clusters) as planning:
        layouts = []
        for run in runs:
            if run.snap is None:
                continue
            cfg, env = load(c, config, run.env)
            layouts.append(plan(run.snap, run_policy(cfg, env)))
    phases.append(planning)
    request = RunRequest(env=spec, config=config, yes=True, format="json")
    with Phase("start-all", root, args.clusters) as starting:
        outcome = multi.start(c, request)
    phases.append(starting)
    engines = max((r.seconds or 0.0 for r in outcome.runs), default=0.0)
    started = sum(r.started for r in outcome.runs)
    down = sum(r.down or 0 for r in outcome.runs)
    planned = sum(len(lay.assignments) for lay in layouts)
    rows = []
    for p in phases:
        rows.append([p.name, *_cells(p, args.hosts)])
    headers = [
        "phase",
        "wall s",
        "xenfab CPU s",
        "xenfab CPU ms/host",
        "lab CPU s",
        "others CPU s",
        "floor s",
        "wall/floor",
    ]
    print(f"lab: {args.clusters} clusters, {args.hosts} hosts, {args.guests} guests, up in "
          f"{up_s:.1f}s; {os.cpu_count()} cores; load average before: {load0:.2f}")  # fmt: skip
    print(table(rows, headers))
    print(
        f"\nguests down {down}, planned {planned}, started {started}; exit {int(outcome.code)}; "
        f"engines' wall {engines:.1f}s; clusters with errors: {', '.join(errors) or 'none'}; "
        f"peak RSS {rss_mib():.0f} MiB; load average after: {load_average():.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
