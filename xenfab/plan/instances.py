"""Tight recovery instances with a planted full layout, for the tests and the benchmark.

Shaped like the outages issue 15 measured: 4-24 surviving hosts of 1-3 models, 50-150 guests to
start drawn from a few flavours (512 MiB-16 GiB, 1-16 vCPUs, so many are identical), free RAM
filled 85-100% by a planted layout (so a layout placing every guest exists), a vCPU cap of
1.0-3.0 per CPU that binds at the same time (the running domains already use part of each
host's vCPUs), 0-3 anti-affinity classes of 2-6 members some of which already run, and a reserve
of 0-2048 MiB. Pure and deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..cluster.rgmanager import DISABLED, STARTED
from ..snapshot import Domain, Guest, Host, Snapshot
from .policy import Policy, policy_from_dict

MEM_MIB = (512, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384)
# Host models: (physical CPUs, RAM in MiB).
MODELS = ((16, 65536), (24, 98304), (32, 131072), (32, 196608), (48, 262144), (64, 393216))


@dataclass
class Instance:
    """One generated recovery problem and the layout planted in it (guest -> host)."""

    snapshot: Snapshot
    policy_dict: dict
    planted: dict[str, str] = field(default_factory=dict)

    def policy(self, **overrides: object) -> Policy:
        """The instance's policy, with keys overridden (e.g. strategy)."""
        return policy_from_dict({**self.policy_dict, **overrides})


def tight_instance(
    rng: random.Random,
    *,
    hosts: int | None = None,
    guests: tuple[int, int] = (50, 150),
    fill: tuple[float, float] = (0.85, 1.0),
    oversized_class: bool = False,
) -> Instance:
    """A tight instance; with ``oversized_class`` one class has more members than hosts."""
    while True:
        inst = _attempt(rng, hosts, fill, oversized_class)
        down = sum(1 for g in inst.snapshot.guests if g.state == DISABLED)
        if violations(inst.snapshot, inst.policy(), inst.planted):
            continue  # the vCPU cap or a running member made the planted layout invalid
        if oversized_class or guests[0] <= down <= guests[1]:
            return inst


def _attempt(
    rng: random.Random, n_hosts: int | None, fill: tuple[float, float], oversized: bool
) -> Instance:
    n = n_hosts if n_hosts is not None else rng.randint(4, 24)
    target = rng.randint(50, 150)
    per_host = target / n
    flavours = _flavours(rng, per_host)
    mean_mem = sum(f[0] for f in flavours) / len(flavours)
    # Models sized so that the planted guests land near the target count.
    want_free = per_host * mean_mem
    models = sorted(
        rng.sample(MODELS, rng.randint(1, 3)), key=lambda mo: abs(mo[1] * 0.6 - want_free)
    )[: rng.randint(1, 3)]
    ratio = round(rng.uniform(1.0, 3.0), 1)
    reserve = rng.choice((0, 0, 512, 1024, 2048))
    hosts: list[Host] = []
    planted: dict[str, str] = {}
    down: list[Guest] = []
    running_guests: list[Guest] = []
    counter = [0]

    def name() -> str:
        counter[0] += 1
        return f"vm{counter[0]:03d}"

    # Anti-affinity classes: members to start, and members already running elsewhere.
    classes: dict[str, list[str]] = {}
    n_classes = rng.randint(0, 3) if not oversized else rng.randint(1, 3)
    for c in range(n_classes):
        cname = ("lb", "db", "dns")[c]
        size = min(rng.randint(2, 6), n)  # hard classes larger than the cluster cannot all run
        if oversized and c == 0:
            size = n + rng.randint(1, 3)
        classes[cname] = [f"{cname}{i:02d}" for i in range(1, size + 1)]
    host_names = [f"xen{i:02d}" for i in range(1, n + 1)]
    # Which host each class member is planted on (or runs on): distinct hosts per class.
    member_host: dict[str, str] = {}
    member_running: set[str] = set()
    for members in classes.values():
        order = rng.sample(host_names, min(len(members), n))
        for i, member in enumerate(members):
            if i < len(order):
                member_host[member] = order[i]
                if rng.random() < 0.3:
                    member_running.add(member)
    extra_members = [m for ms in classes.values() for m in ms if m not in member_host]

    for hname in host_names:
        cpus, total = rng.choice(models)
        cap = int(ratio * cpus)
        dom0 = 2048
        # Running domains take part of the RAM and of the vCPUs.
        run_mem_target = int(total * rng.uniform(0.2, 0.6))
        domains = [Domain("Domain-0", dom0, 4, "r-----")]
        run_mem = 0
        run_vcpus = 0
        for member in [m for m, h in member_host.items() if h == hname and m in member_running]:
            f = rng.choice(flavours)
            domains.append(Domain(member, f[0], f[1], "-b----"))
            run_mem += f[0]
            run_vcpus += f[1]
            running_guests.append(
                Guest(member, memory_mib=f[0], vcpus=f[1], state=STARTED, owner=hname)
            )
        free = total - dom0 - run_mem_target
        room = free - reserve
        planned: list[tuple[str, int, int]] = []
        for member in [m for m, h in member_host.items() if h == hname and m not in member_running]:
            f = rng.choice(flavours)
            planned.append((member, f[0], f[1]))
        goal = int(room * rng.uniform(*fill))
        used = sum(p[1] for p in planned)
        while True:
            options = [f for f in flavours if used + f[0] <= goal]
            if not options:
                break
            f = rng.choice(options)
            planned.append((name(), f[0], f[1]))
            used += f[0]
        if used > room:  # class members alone overfill: drop the extras
            while planned and used > room:
                used -= planned.pop()[1]
        planned_vcpus = sum(p[2] for p in planned)
        # The cap binds: the planted guests plus the running domains leave 0-10% of it.
        slack = int(cap * rng.uniform(0.0, 0.1))
        if planned_vcpus + slack > cap:
            planned, planned_vcpus = _shrink_vcpus(planned, cap - slack)
        filler_vcpus = max(cap - slack - planned_vcpus - run_vcpus, 0)
        filler_mem = max(run_mem_target - run_mem, 0)
        k = 0
        while filler_vcpus > 0 or filler_mem > 0:
            k += 1
            v = min(filler_vcpus, rng.randint(1, 8))
            mem = min(filler_mem, rng.choice(MEM_MIB)) if filler_mem > 0 else 0
            if v == 0 and mem == 0:
                break
            domains.append(Domain(f"{hname}-app{k}", mem, v, "-b----"))
            filler_vcpus -= v
            filler_mem -= mem
        actual_free = total - sum(d.mem_mib for d in domains)
        hosts.append(Host(hname, total_mib=total, free_mib=actual_free, cpus=cpus, domains=domains))
        for gname, mem, vcpus in planned:
            planted[gname] = hname
            down.append(Guest(gname, memory_mib=mem, vcpus=vcpus, state=DISABLED))
    for member in extra_members:
        f = rng.choice(flavours)
        down.append(Guest(member, memory_mib=f[0], vcpus=f[1], state=DISABLED))
    rng.shuffle(down)
    policy = {
        "strategy": "round-robin",
        "reserve_mib": reserve,
        "vcpu_ratio": ratio,
        "anti_affinity": {c: [f"{c}*"] for c in classes},
        "prefer_last_owner": False,
    }
    snap = Snapshot("tight", "2026-01-01T00:00:00Z", None, True, hosts, running_guests + down)
    return Instance(snap, policy, planted)


def _flavours(rng: random.Random, per_host: float) -> list[tuple[int, int]]:
    """3-6 (MiB, vCPUs) flavours; small ones where many guests share a host."""
    top = len(MEM_MIB) if per_host < 8 else 8 if per_host < 14 else 6
    out = set()
    while len(out) < rng.randint(3, 6):
        mem = rng.choice(MEM_MIB[:top])
        # vCPUs roughly follow RAM (1 per GiB give or take), 1-16.
        vcpus = max(1, min(16, round(mem / 1024 * rng.uniform(0.5, 2.0))))
        out.add((mem, vcpus))
    return sorted(out)


def _shrink_vcpus(
    planned: list[tuple[str, int, int]], budget: int
) -> tuple[list[tuple[str, int, int]], int]:
    """Lower the largest vCPU counts until the planted guests fit ``budget`` vCPUs."""
    planned = list(planned)
    total = sum(p[2] for p in planned)
    while total > max(budget, len(planned)):
        i = max(range(len(planned)), key=lambda k: planned[k][2])
        gname, mem, vcpus = planned[i]
        if vcpus <= 1:
            break
        planned[i] = (gname, mem, vcpus - 1)
        total -= 1
    return planned, total


def tight_set(seed: int, count: int) -> list[Instance]:
    """``count`` tight instances from one seed (the benchmark's and the tests' set)."""
    rng = random.Random(seed)
    return [tight_instance(rng) for _ in range(count)]


def violations(snapshot: Snapshot, policy: Policy, placed: dict[str, str]) -> list[str]:
    """Every hard rule ``placed`` (guest -> host) breaks, checked from scratch.

    Written apart from the planner's rules on purpose (plain sums over the snapshot), so the
    tests and the benchmark judge the planner by a second reading of the policy.
    """
    import fnmatch

    out: list[str] = []
    hosts = {h.name: h for h in snapshot.hosts}
    size = {g.name: g for g in snapshot.guests}
    ram: dict[str, int] = {}
    vcpus: dict[str, int] = {}
    for gname, hname in placed.items():
        h = hosts.get(hname)
        if h is None or not h.reachable:
            out.append(f"{gname}: host {hname} is not usable")
            continue
        if any(fnmatch.fnmatchcase(hname, p) for p in policy.exclude):
            out.append(f"{gname}: host {hname} is excluded")
        for pattern, allowed in policy.pin.items():
            if fnmatch.fnmatchcase(gname, pattern) and not any(
                fnmatch.fnmatchcase(hname, a) for a in allowed
            ):
                out.append(f"{gname}: {hname} is not in its pin list")
        ram[hname] = ram.get(hname, 0) + size[gname].memory_mib + policy.overhead_mib
        vcpus[hname] = vcpus.get(hname, 0) + max(size[gname].vcpus, 0)
    for hname, used in ram.items():
        h = hosts[hname]
        if used > h.free_mib - policy.reserve_mib:
            out.append(f"{hname}: {used} MiB placed > {h.free_mib - policy.reserve_mib} room")
        if policy.vcpu_ratio is not None and h.cpus > 0:
            running = sum(d.vcpus for d in h.domains if d.name != "Domain-0")
            if running + vcpus[hname] > policy.vcpu_ratio * h.cpus + 1e-9:
                out.append(f"{hname}: {running + vcpus[hname]} vCPUs > cap")
    if policy.anti_affinity_mode == "hard":
        for cname, cls in policy.anti_affinity.items():
            per_unit: dict[str, set[str]] = {}
            for h in snapshot.hosts:
                if not h.reachable:
                    continue
                unit = (h.domain or h.name) if cls.spread == "domain" else h.name
                for d in h.domains:
                    if cls.matches(d.name):
                        per_unit.setdefault(unit, set()).add(d.name)
            for gname, hname in placed.items():
                if cls.matches(gname) and hname in hosts:
                    h = hosts[hname]
                    unit = (h.domain or h.name) if cls.spread == "domain" else h.name
                    per_unit.setdefault(unit, set()).add(gname)
            for unit, names in per_unit.items():
                if len(names) > 1:
                    out.append(f"class {cname}: {', '.join(sorted(names))} share {unit}")
    return out
