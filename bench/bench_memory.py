#!/usr/bin/env python3
"""Benchmark peak memory: `fab facts` and `fab show-layout` on the lab, and planning 5,000 guests.

    python bench/bench_memory.py            # fab at 10 and 100 hosts, then 100 hosts with
                                            # 1,250/2,500/5,000 guests; plan 1,250/2,500/5,000
    python bench/bench_memory.py --quick    # fab at 4 hosts (20, 40 guests); plan 250/500/1,000

- fab: each command runs in a child Python with tracemalloc on (peak of Python allocations) and
  its own ru_maxrss (peak resident memory, read with wait4); `fab --list` is the baseline of the
  interpreter, Fabric and xenfab's imports;
- fab by guests: the lab reseeded to 1,250, 2,500 and 5,000 guests on all its hosts (every
  guest config, clustat's services and xl list grow with it); the task's peak per guest must
  stay flat for growth no worse than linear;
- plan: a synthetic cluster built in this process (200 hosts, guests of realistic sizes filling
  70% of the room); tracemalloc's peak during plan() alone, per guest. Growth no worse than
  linear means the bytes per guest stay flat (or fall) as the guest count doubles.

It brings up its own lab in a temporary directory (or uses --lab DIR) and tears it down.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Lab, bench_lab, fmt_s, run_process, table, verdict  # noqa: E402

from xenfab.plan import plan, policy_from_dict  # noqa: E402
from xenfab.snapshot import Domain, Guest, Host, Snapshot  # noqa: E402

MIB = 1024 * 1024
# Linear growth with some slack: bytes per guest may rise this much from the smallest size.
LINEAR_SLACK = 1.25

# Runs the fab program in this interpreter with tracemalloc on: what the imports hold, then the
# peak above that while the task runs (the data: outputs, snapshot, layout, tables).
CHILD = """
import sys, tracemalloc
tracemalloc.start()
from fabric.main import program
import tabulate, xenfab.tasks, xenfab.plan, xenfab.show
base = tracemalloc.get_traced_memory()[0]
tracemalloc.reset_peak()
try:
    program.run(["fab", *sys.argv[1:]])
finally:
    peak = tracemalloc.get_traced_memory()[1]
    sys.stderr.write("\\nTRACEMALLOC_BASE=%d PEAK=%d\\n" % (base, peak))
"""


def fab_memory(lab: Lab | None, args: list[str]) -> dict:
    """Peak traced and resident memory of one fab command (``--config`` of the lab added)."""
    argv = [sys.executable, "-c", CHILD, *args]
    env = {}
    if lab is not None:
        argv += ["--config", lab.config]
        env["XENFAB_LAB_DIR"] = lab.dir
    res = run_process(argv, env=env)
    found = re.search(r"TRACEMALLOC_BASE=(\d+) PEAK=(\d+)", res.stderr)
    if res.rc not in (0, 2) or not found:
        tail = res.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"fab {' '.join(args)} failed ({res.rc}): {' | '.join(tail)}")
    base, peak = int(found.group(1)), int(found.group(2))
    return {"imports": base, "above": max(0, peak - base), "rss_kib": res.maxrss_kib}


def cluster(rng: random.Random, n_hosts: int, n_guests: int, load: float = 0.7) -> Snapshot:
    """Hosts of 64-256 GiB with a few running domains; down guests filling ``load`` of the room."""
    hosts = []
    for i in range(n_hosts):
        total = rng.choice([65536, 131072, 262144])
        running = [Domain(f"run{i:03d}-{j}", 2048, 2, "r") for j in range(rng.randint(0, 3))]
        used = 4096 + sum(d.mem_mib for d in running)
        hosts.append(
            Host(
                f"xen{i:03d}",
                total_mib=total,
                free_mib=total - used,
                cpus=rng.choice([16, 32, 64]),
                domains=running,
                location=f"dc{i % 2 + 1}",
                domain=f"rack{i % 8}",
            )
        )
    room = sum(h.free_mib for h in hosts) * load
    mean = room / n_guests
    guests = []
    for i in range(n_guests):
        size = max(256, int(rng.expovariate(1 / mean)) // 256 * 256)
        last = hosts[rng.randrange(n_hosts)].name
        guests.append(
            Guest(
                f"vm{i:05d}",
                memory_mib=size,
                vcpus=rng.choice([1, 2, 4]),
                state=rng.choice(["disabled", "failed"]),
                last_owner=last,
                config_file=f"/xenconfig/vm{i:05d}.cfg",
            )
        )
    return Snapshot("bench", "2026-01-01T00:00:00Z", "xen000", True, hosts, guests)


def plan_memory(n_hosts: int, n_guests: int, strategy: str) -> dict:
    """tracemalloc figures of planning ``n_guests`` on ``n_hosts`` (snapshot built first)."""
    gc.collect()
    tracemalloc.start()
    try:
        snap = cluster(random.Random(n_guests), n_hosts, n_guests)
        policy = policy_from_dict({"strategy": strategy}, where="policy")
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        t = time.process_time()
        layout = plan(snap, policy, time_budget_s=0)
        cpu = time.process_time() - t
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "guests": n_guests,
        "snapshot": before,
        "peak": peak - before,
        "kept": after - before,
        "placed": len(layout.assignments),
        "cpu": cpu,
    }


def per_guest_growth(sizes: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """(bytes per guest, that / the first size's) for each (guests, bytes), smallest first."""
    first = sizes[0][1] / sizes[0][0]
    return [(b / g, (b / g) / first) for g, b in sizes]


def guest_sweep(lab: Lab, n: int, counts: list[int], restore: int) -> list[dict]:
    """fab facts and show-layout on the lab's ``n`` hosts, reseeded to each guest count.

    The lab gets its own guest count back afterwards (the same seed: the same scenario).
    """
    from xenfab import lab as lab_mod

    env = lab.env_for(n)
    results = []
    try:
        for count in counts:
            lab_mod.reseed(lab.dir, guests=count)
            row: dict = {"guests": count}
            for task in ("facts", "show-layout"):
                row[task] = fab_memory(lab, [task, "--env", env])
            results.append(row)
    finally:
        lab_mod.reseed(lab.dir, guests=restore)
    return results


def lab_status_guests(lab: Lab) -> list[dict]:
    """The lab's services (one per guest)."""
    from xenfab import lab as lab_mod

    return lab_mod.status(lab.dir)["services"]


def main(argv: list[str] | None = None) -> int:
    """Run the memory benchmark and print its tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (~10 s)")
    ap.add_argument("--hosts", type=int, help="lab hosts (default 100; quick 4)")
    ap.add_argument("--latency", type=int, default=0, help="ms each emulated command sleeps")
    ap.add_argument("--lab", help="use this running lab instead of starting one")
    ap.add_argument("--json", help="also write the key figures to this file (for run.py)")
    args = ap.parse_args(argv)
    n = args.hosts or (4 if args.quick else 100)
    fab_sizes = [n] if args.quick else sorted({min(10, n), n})
    counts = [250, 500, 1000] if args.quick else [1250, 2500, 5000]
    fab_guests = [20, 40] if args.quick else [1250, 2500, 5000]
    plan_hosts = 40 if args.quick else 200
    figures: dict = {"hosts": n}

    rows = []
    base = fab_memory(None, ["--list"])
    rows.append(["fab --list (no task)", "-", _mib(base["imports"]), "-", _rss(base)])
    with bench_lab(n, 4 * n, args.latency, fab_sizes, lab_dir=args.lab) as lab:
        for size in fab_sizes:
            env = lab.env_for(size)
            for task in ("facts", "show-layout"):
                m = fab_memory(lab, [task, "--env", env])
                rows.append(
                    [f"fab {task}", str(size), _mib(m["imports"]), _mib(m["above"]), _rss(m)]
                )
                figures[f"{task}_{size}"] = m
        n_guests = len(lab_status_guests(lab))
        by_guests = guest_sweep(lab, n, fab_guests, n_guests)
    print(
        f"== Peak memory of fab (lab of {n} hosts, {n_guests} guests; tracemalloc in the child, "
        "ru_maxrss by wait4) =="
    )
    print(table(rows, ["command", "hosts", "imports MiB", "task peak MiB", "peak RSS MiB"]))
    print(
        "imports: Python objects the interpreter, Fabric and xenfab hold before the task runs; "
        "task peak: tracemalloc's peak above that while it runs; RSS: the whole process."
    )
    rows, fab_linear = [], True
    for task in ("facts", "show-layout"):
        growth = per_guest_growth([(r["guests"], r[task]["above"]) for r in by_guests])
        fab_linear = fab_linear and max(g for _, g in growth) <= LINEAR_SLACK
        for r, (per_guest, ratio) in zip(by_guests, growth, strict=True):
            m = r[task]
            rows.append(
                [
                    f"fab {task}",
                    str(r["guests"]),
                    _mib(m["above"]),
                    f"{per_guest / 1024:.1f}",
                    f"{ratio:.2f}",
                    _rss(m),
                ]
            )
    print(f"\n== Peak memory of fab on all {n} hosts as the guests grow (the lab reseeded) ==")
    print(
        table(
            rows,
            ["command", "guests", "task peak MiB", "KiB / guest", "vs smallest", "peak RSS MiB"],
        )
    )
    print(
        f"Growth no worse than linear (task peak per guest at most {LINEAR_SLACK:g}x the "
        f"smallest size's): {verdict(fab_linear)}."
    )
    figures["fab_by_guests"] = by_guests
    figures["fab_linear"] = fab_linear

    results = {}
    for strategy in ("round-robin", "balanced"):
        results[strategy] = [plan_memory(plan_hosts, c, strategy) for c in counts]
    rows = []
    linear = True
    for strategy, res in results.items():
        growth = per_guest_growth([(r["guests"], r["peak"]) for r in res])
        linear = linear and max(g for _, g in growth) <= LINEAR_SLACK
        for r, (per_guest, ratio) in zip(res, growth, strict=True):
            rows.append(
                [
                    strategy,
                    str(r["guests"]),
                    str(r["placed"]),
                    _mib(r["snapshot"]),
                    _mib(r["peak"]),
                    f"{per_guest / 1024:.1f}",
                    f"{ratio:.2f}",
                    fmt_s(r["cpu"], 3),
                ]
            )
    print(f"\n== Peak memory of planning, {plan_hosts} hosts (tracemalloc, during plan() only) ==")
    headers = [
        "strategy",
        "guests",
        "placed",
        "snapshot MiB",
        "plan peak MiB",
        "KiB / guest",
        "vs smallest",
        "CPU s",
    ]
    print(table(rows, headers))
    print(
        f"\nGrowth no worse than linear (KiB per guest at most {LINEAR_SLACK:g}x the smallest "
        f"size's): {verdict(linear)}."
    )
    figures["plan"] = results
    figures["plan_linear"] = linear
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=1)
    return 0


def _rss(m: dict) -> str:
    return _mib(m["rss_kib"] * 1024)


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / MIB:.1f}"


if __name__ == "__main__":
    sys.exit(main())
