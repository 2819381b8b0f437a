"""Benchmark of the placement planner: greedy scaling, and how often each method places everything.

Run standalone from the repository root::

    python bench/bench_plan.py            # full: 5,000 guests on 200 hosts, 40 tight instances
    python bench/bench_plan.py --quick    # small sizes, under 10 s

Part 1 times the greedy strategies (no search) on large random clusters and prints the cost per
guest x log2(hosts), which stays flat when a strategy scales as guests x log(hosts).
Part 2 generates random *tight* instances that have a complete layout by construction, and counts
how many each method places fully: the seed's Perl logic (as written, with its string comparison,
and with a numeric fix), our greedy strategies alone, and ours with repair + exact search.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from xenfab.plan import STRATEGIES, plan, policy_from_dict  # noqa: E402
from xenfab.snapshot import Guest, Host, Snapshot  # noqa: E402

TARGET_S = 1.0
# CPU time of this process: the figures stay meaningful on a shared, busy machine, where wall
# time also counts waiting for a CPU. Wall time is printed alongside.
clock = time.process_time
SIZES_MIB = [512, 768, 1024, 1536, 2048, 2560, 3072, 4096, 5120, 6144, 8192, 12288, 16384]


# --- the seed, as a reference ------------------------------------------------------------------


def seed_plan(snap: Snapshot, mode: str = "round-robin", numeric: bool = False) -> dict | None:
    """The admin's Perl script: guest i tries one host and retries one more, then stops.

    Returns {guest: host}, or None when it stopped with "Need SA intervention". With
    ``numeric=False`` the fit test compares the numbers as strings, as the script did.
    """
    hosts = sorted((h for h in snap.hosts if h.reachable), key=lambda h: -h.total_mib)
    free = {h.name: h.free_mib for h in hosts}

    def fits(name: str, need: int) -> bool:
        """The seed's fit test."""
        if numeric:
            return free[name] >= need
        return str(free[name]) >= str(need)  # Perl `ge`: "900" ge "10000" is true

    out = {}
    todo = [g for g in snap.guests if g.state in ("disabled", "failed")]
    for i, g in enumerate(todo):
        if mode == "round-robin":
            tries = [hosts[i % len(hosts)].name, hosts[(i + 1) % len(hosts)].name]
        else:
            ranked = sorted(free, key=lambda n: -free[n])
            tries = ranked[:2]
        home = next((n for n in tries if fits(n, g.memory_mib)), None)
        if home is None:
            return None  # "Need SA intervention: cannot find a home for NAME"
        free[home] -= g.memory_mib
        out[g.name] = home
    return out


def seed_valid(snap: Snapshot, layout: dict | None) -> bool:
    """True when the seed placed every guest and no host is over its free RAM."""
    if layout is None:
        return False
    used: dict[str, int] = {}
    for g in snap.guests:
        used[layout[g.name]] = used.get(layout[g.name], 0) + g.memory_mib
    return all(used.get(h.name, 0) <= h.free_mib for h in snap.hosts)


# --- instances ---------------------------------------------------------------------------------


def random_cluster(rng: random.Random, n_hosts: int, n_guests: int, load: float) -> Snapshot:
    """Hosts of 64-256 GiB free; guests of realistic sizes filling about ``load`` of the room."""
    hosts = [
        Host(f"xen{i:03d}", total_mib=t, free_mib=t - 4096, cpus=32)
        for i, t in enumerate(rng.choice([65536, 131072, 262144]) for _ in range(n_hosts))
    ]
    room = sum(h.free_mib for h in hosts) * load
    mean = room / n_guests
    guests = []
    for i in range(n_guests):
        size = max(256, int(rng.expovariate(1 / mean)) // 256 * 256)
        guests.append(
            Guest(f"vm{i:05d}", memory_mib=size, vcpus=rng.choice([1, 2, 4]), state="failed")
        )
    return Snapshot("bench", "now", None, True, hosts, guests)


def tight_instance(rng: random.Random, n_hosts: int, fill: tuple[float, float]) -> Snapshot:
    """Hosts filled to ``fill`` by construction, so a complete layout exists; guests shuffled."""
    hosts, guests = [], []
    for i in range(n_hosts):
        free = rng.randrange(16384, 65536, 256)
        hosts.append(Host(f"xen{i:02d}", total_mib=free + 2048, free_mib=free, cpus=16))
        left = int(free * rng.uniform(*fill))
        while left >= SIZES_MIB[0]:
            size = rng.choice([s for s in SIZES_MIB if s <= left])
            guests.append(size)
            left -= size
    rng.shuffle(guests)
    objs = [Guest(f"vm{i:03d}", memory_mib=m, state="disabled") for i, m in enumerate(guests)]
    return Snapshot("tight", "now", None, True, hosts, objs)


# --- runs --------------------------------------------------------------------------------------


def scaling(quick: bool) -> None:
    """Part 1: greedy time against guests and hosts."""
    n_hosts = 40 if quick else 200
    counts = [100, 400, 1000] if quick else [500, 2000, 5000]
    print(f"\n== Greedy scaling (no search), {n_hosts} hosts; target {TARGET_S:.0f} s ==")
    print(
        f"{'strategy':<12} {'guests':>7} {'placed':>7} {'cpu s':>8} {'wall s':>8} "
        f"{'us/(g*log2 h)':>14} {'/target':>8}"
    )
    rng = random.Random(1)
    for strategy in STRATEGIES:
        pol = policy_from_dict({"strategy": strategy, "prefer_last_owner": False})
        for n in counts:
            snap = random_cluster(rng, n_hosts, n, 0.7)
            w0, t0 = time.perf_counter(), clock()
            layout = plan(snap, pol, time_budget_s=0)
            dt, wall = clock() - t0, time.perf_counter() - w0
            unit = dt / (n * math.log2(n_hosts)) * 1e6
            print(
                f"{strategy:<12} {n:>7} {len(layout.assignments):>7} {dt:>8.3f} {wall:>8.3f} "
                f"{unit:>14.2f} {dt / TARGET_S:>8.2f}"
            )
    n = counts[-1]
    rules = {
        "vcpu_ratio": 4,
        "reserve_mib": 1024,
        "overhead_mib": 64,
        # Names are vm00000..: vm0003* is a class of ten guests.
        "anti_affinity": {f"c{k}": [f"vm{k:04d}*"] for k in range(n // 100)},
        "pin": {"vm0001*": [f"xen{i:03d}" for i in range(0, n_hosts, 3)]},
        "priority": {"vm000*": 1, "vm001*": 2},
    }
    print(
        f"\n-- {n} guests with rules: vCPU cap, reserve, overhead, {len(rules['anti_affinity'])} "
        "anti-affinity classes of 10, a pin, tiers --"
    )
    for strategy in STRATEGIES:
        snap = random_cluster(rng, n_hosts, n, 0.7)
        pol = policy_from_dict({**rules, "strategy": strategy})
        t0 = clock()
        layout = plan(snap, pol, time_budget_s=0)
        dt = clock() - t0
        unit = dt / (n * math.log2(n_hosts)) * 1e6
        print(
            f"{strategy:<12} {n:>7} {len(layout.assignments):>7} {dt:>8.3f} cpu s "
            f"{unit:>8.2f} us/(g*log2 h) {dt / TARGET_S:>6.2f} of target"
        )
    print(
        f"\n-- same {n} guests, growing host count (balanced; flat us/(g*log2 h) = log growth) --"
    )
    for hosts in [20, 40, 160] if quick else [50, 200, 800]:
        snap = random_cluster(rng, hosts, n, 0.7)
        pol = policy_from_dict({"strategy": "balanced"})
        t0 = clock()
        plan(snap, pol, time_budget_s=0)
        dt = clock() - t0
        print(
            f"hosts {hosts:>5}: {dt:.3f} cpu s, {dt / (n * math.log2(hosts)) * 1e6:.2f} "
            "us/(g*log2 h)"
        )


def tight(quick: bool) -> None:
    """Part 2: share of tight instances each method places fully, in the same run."""
    n_inst = 10 if quick else 40
    budget = 0.3 if quick else 2.0
    rng = random.Random(42)
    instances = [tight_instance(rng, rng.randint(6, 16), (0.93, 1.0)) for _ in range(n_inst)]
    print(f"\n== {n_inst} tight instances (6-16 hosts filled to 93-100% by construction) ==")
    print(f"{'method':<34} {'complete':>9} {'mean s':>8} {'max s':>7}  (wall time)")

    def row(name: str, results: list[tuple[bool, float]]) -> None:
        """Print one result row."""
        ok = sum(1 for r in results if r[0])
        times = [r[1] for r in results]
        print(
            f"{name:<34} {ok:>4}/{len(results):<4} {sum(times) / len(times):>8.3f} "
            f"{max(times):>7.3f}"
        )

    for mode in ("round-robin", "most-free"):
        for numeric in (False, True):
            res = []
            for snap in instances:
                t0 = time.perf_counter()
                ok = seed_valid(snap, seed_plan(snap, mode, numeric))
                res.append((ok, time.perf_counter() - t0))
            row(f"seed {mode}{' (numeric fit)' if numeric else ''}", res)
    for strategy in STRATEGIES:
        for label, b in (("greedy", 0.0), (f"greedy+search {budget:g}s", budget)):
            res = []
            methods: dict[str, int] = {}
            for snap in instances:
                t0 = time.perf_counter()
                layout = plan(snap, policy_from_dict({"strategy": strategy}), time_budget_s=b)
                res.append((layout.complete, time.perf_counter() - t0))
                methods[layout.method] = methods.get(layout.method, 0) + 1
            row(f"{strategy} {label}", res)
            if b:
                print(f"{'':<36}methods: {methods}")


def main() -> None:
    """Parse --quick and run both parts."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under 10 s")
    args = ap.parse_args()
    t0 = time.perf_counter()
    scaling(args.quick)
    tight(args.quick)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
