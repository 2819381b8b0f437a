#!/usr/bin/env python3
"""Benchmark gathering facts (`fab facts`) on the lab against the seed's serial way and the bound.

    python bench/bench_gather.py            # 100 hosts, 200 ms per emulated command (~3 min)
    python bench/bench_gather.py --quick    # 4 hosts (~15 s)

It brings up its own lab in a temporary directory (or uses --lab DIR, a running lab with enough
hosts) and tears it down. Every command the lab emulates (xl info, xl list, clustat...) sleeps
--latency ms first, like a busy dom0.

- bound: `fab facts` on a 1-host environment (the master alone: it runs the longest script, with
  the cluster state and every guest config), i.e. one round trip of the slowest host plus
  connection setup plus fab's own start-up;
- serial: the seed's way, one host after another (one SSH connection and the same script per
  host), measured on a sample in the same run and extrapolated linearly to N hosts;
- targets at 100 hosts: `fab facts` within 3x the bound, and at least 15x faster than serial.

Then where the time goes: per-host phases of a gather, the anatomy of one connection, the lab's
cost of N logins that run nothing, who used the CPU, a CPU profile of xenfab, and fab's start-up.

Not a test: the figures are wall-clock times on the machine that runs it, shared by the lab's
sshd and emulated tools; each row says how much CPU xenfab, the lab and other processes used.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import pwd
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import paramiko  # noqa: E402
from common import (  # noqa: E402
    CpuMeter,
    CpuSplit,
    Lab,
    bench_lab,
    fab,
    fmt_ratio,
    fmt_s,
    load_average,
    median,
    run_process,
    table,
    verdict,
)

import xenfab.gather as gather_pkg  # noqa: E402
from xenfab import remote as ssh  # noqa: E402
from xenfab.cluster import backend as get_backend  # noqa: E402
from xenfab.config import Environment, load_config  # noqa: E402
from xenfab.gather import batch, gather  # noqa: E402
from xenfab.remote import group  # noqa: E402

TARGET_RATIO = 3.0
TARGET_SPEEDUP = 15.0


def environment(lab: Lab, size: int) -> Environment:
    """The lab config's environment of the first ``size`` hosts."""
    return load_config(lab.config).environment(lab.env_for(size))


def scripts(env: Environment) -> tuple[str, str, str]:
    """(nonce, host script, master script) exactly as gather() builds them."""
    nonce = batch.new_nonce()
    probes = get_backend(env.backend).state_probes()
    return (
        nonce,
        batch.build_script(nonce, batch.HOST_PROBES),
        batch.build_script(nonce, batch.HOST_PROBES + probes, env.guest_config_dir),
    )


# --------------------------------------------------------------------------- measurements


def fab_facts(lab: Lab, size: int) -> tuple[float, int]:
    """Wall seconds of one `fab facts` on the first ``size`` hosts, and its exit code."""
    res = fab(["facts", "--env", lab.env_for(size)], lab)
    if res.rc not in (0, 2):
        raise SystemExit(f"fab facts on {size} hosts failed ({res.rc}): {res.stderr.strip()}")
    return res.wall, res.rc


def in_process(lab: Lab, size: int) -> dict:
    """One gather() in this process: wall, errors and who used the CPU meanwhile."""
    env = environment(lab, size)
    with CpuMeter(lab.dir) as cpu:
        snap = gather(env)
    return {"wall": cpu.wall, "errors": len(snap.errors), "cpu": cpu}


def cap_sweep(lab: Lab, size: int, caps: list[int]) -> tuple[list[list[str]], list[CpuSplit]]:
    """In-process gathers of ``size`` hosts with env.ssh.parallel set to each of ``caps``."""
    rows, splits = [], []
    for cap in caps:
        env = environment(lab, size)
        env.ssh.parallel = cap
        with CpuMeter(lab.dir) as cpu:
            snap = gather(env)
        rows.append(
            [
                str(cap),
                fmt_s(cpu.wall),
                fmt_s(cpu.lab, 1),
                fmt_s(cpu.lab / size, 3),
                fmt_s(cpu.others, 1),
                str(len(snap.errors)),
            ]
        )
        splits.append(cpu)
    return rows, splits


def cpu_floor(cpu: CpuSplit) -> float:
    """The least wall time this machine's cores need for the CPU the lab and xenfab used."""
    return (cpu.lab + cpu.ours) / (os.cpu_count() or 1)


def serial(lab: Lab, sample: int) -> dict[str, float]:
    """The seed's way on the first ``sample`` hosts: seconds per host, one after another."""
    env = environment(lab, len(lab.hosts))
    cfg = ssh.fabric_config(env)
    _, host_script, master_script = scripts(env)
    seconds = {}
    for name in lab.hosts[:sample]:
        script = master_script if name == env.master else host_script
        res = ssh.run(name, script, env, cfg)
        if res.error:
            raise SystemExit(f"serial baseline: {res.error}")
        seconds[name] = res.seconds
    return seconds


def extrapolate(per_host: dict[str, float], master: str, n: int) -> float:
    """Serial seconds for ``n`` hosts: the master once, the mean of the others n-1 times."""
    others = [s for h, s in per_host.items() if h != master]
    return per_host[master] + (sum(others) / len(others) if others else 0.0) * (n - 1)


def logins(lab: Lab, size: int, command: str = "true") -> dict:
    """``size`` parallel logins that run ``command``: the lab's cost of a login, no Xen tool."""
    env = environment(lab, size)
    cfg = ssh.fabric_config(env)
    workers = max(1, min(env.ssh.parallel, size))
    with CpuMeter(lab.dir) as cpu, ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda h: ssh.run(h, command, env, cfg), lab.hosts[:size]))
    return {
        "wall": cpu.wall,
        "errors": sum(1 for r in results if r.error),
        "slowest": max(r.seconds for r in results),
        "cpu": cpu,
    }


def anatomy(lab: Lab, repeat: int) -> list[list[str]]:
    """One connection to the master, step by step, ``repeat`` times: median seconds."""
    env = environment(lab, 1)
    cfg = ssh.fabric_config(env)
    _, host_script, master_script = scripts(env)
    steps: dict[str, list[float]] = {}

    def step(name: str, fn, *fn_args):
        t = time.monotonic()
        value = fn(*fn_args)
        steps.setdefault(name, []).append(time.monotonic() - t)
        return value

    lab_cpu = []
    for _ in range(repeat):
        before = common.lab_cpu(lab.dir)
        conn = step("Connection() + known_hosts (client only)", ssh.connect, lab.hosts[0], env, cfg)
        key_path = conn.ssh_config["identityfile"][0]
        address = (conn.host, conn.port)
        sock = step("TCP connect", socket.create_connection, address, env.ssh.connect_timeout)
        transport = ssh.transport(sock)  # as xenfab's connections do (no Nagle, quick ACKs)
        step("SSH version + key exchange (curve25519, ed25519 host key)", transport.start_client)
        pkey = paramiko.PKey.from_path(key_path)
        step("public key auth (ed25519)", transport.auth_publickey, conn.user, pkey)
        for label, command in (
            ("run `true` (sshd session + the login shell)", "true"),
            ("run the host script (xl info, xl list)", host_script),
            ("run the master script (+ clustat -x, configs)", master_script),
        ):
            step(label, _exec, transport, command)
        transport.close()
        # The lab's CPU is counted when sshd reaps the connection's processes, after the close.
        time.sleep(0.3)
        lab_cpu.append(common.lab_cpu(lab.dir) - before)
    rows = [[name, fmt_s(median(v), 3)] for name, v in steps.items()]
    rows.append(
        ["lab CPU of that whole connection (sshd, shells, tools)", fmt_s(median(lab_cpu), 3)]
    )
    rows += login_shell(lab, repeat)
    return rows


def login_shell(lab: Lab, repeat: int) -> list[list[str]]:
    """What the account's login shell costs before the lab runs anything, as its sshd starts it."""
    user = pwd.getpwuid(os.getuid())
    # sshd runs ForceCommand as `$SHELL -c CMD` with SSH_CLIENT set (bash then reads ~/.bashrc,
    # unless SHLVL says it is nested) plus the SetEnv variables of the lab's sshd_config.
    env = {"HOME": user.pw_dir, "USER": user.pw_name, "SSH_CLIENT": "127.0.0.1 1 22"}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    try:
        with open(os.path.join(lab.dir, "sshd", "sshd_config.0"), encoding="utf-8") as fh:
            for line in fh:
                words = line.split()
                if len(words) >= 2 and words[0].lower() == "setenv":
                    env.update(w.split("=", 1) for w in words[1:] if "=" in w)
    except OSError:
        pass
    shell = user.pw_shell or "/bin/sh"
    sets = " ".join(f"{k}={v}" for k, v in env.items() if k not in ("HOME", "USER", "PATH"))
    bare = [shell, "--norc", "-c", "true"] if shell.endswith("bash") else ["/bin/sh", "-c", "true"]
    rows = []
    for label, argv in (
        (
            f"the login shell as the lab's sshd starts it ({sets} {shell} -c true)",
            [shell, "-c", "true"],
        ),
        (f"{' '.join(bare)}, for comparison", bare),
    ):
        runs = [run_process(argv, env=env, clean_env=True) for _ in range(repeat)]
        wall, cpu = median([r.wall for r in runs]), median([r.cpu for r in runs])
        rows.append([f"{label}: wall (CPU)", f"{wall:.3f} ({cpu:.3f})"])
    return rows


def _exec(transport: paramiko.Transport, command: str) -> int:
    chan = transport.open_session()
    chan.exec_command(command)
    chan.shutdown_write()
    while chan.recv(65536):
        pass
    code = chan.recv_exit_status()
    chan.close()
    return code


def phases(lab: Lab, size: int) -> tuple[list[list[str]], dict]:
    """A gather of ``size`` hosts with each host's phases timed (ssh.run, instrumented)."""
    env = environment(lab, size)
    marks: dict[str, tuple[float, float, float, float]] = {}
    t_start = 0.0
    asm: list[float] = []
    real_run, real_assemble = group.run, gather_pkg.assemble

    def timed_run(host, command, env, cfg, timeout=None):
        t0 = time.monotonic()
        conn = ssh.connect(host, env, cfg)
        t1 = time.monotonic()
        address = f"{conn.host}:{conn.port}"
        try:
            conn.open()
            t2 = time.monotonic()
            out = ssh.execute(conn, command, timeout or env.ssh.command_timeout)
            t3 = time.monotonic()
            marks[host] = (t0 - t_start, t1 - t0, t2 - t1, t3 - t2)
            return ssh.RunResult(host, out, None, t3 - t0, address)
        except Exception as exc:  # noqa: BLE001 - same contract as ssh.run
            return ssh.RunResult(host, None, failure=ssh.classify(exc, host, address, env))
        finally:
            conn.close()

    def timed_assemble(*args, **kwargs):
        t = time.monotonic()
        try:
            return real_assemble(*args, **kwargs)
        finally:
            asm.append(time.monotonic() - t)

    group.run, gather_pkg.assemble = timed_run, timed_assemble
    try:
        with CpuMeter(lab.dir) as cpu:
            t_start = time.monotonic()
            gather(env)
    finally:
        group.run, gather_pkg.assemble = real_run, real_assemble
    names = [
        "waiting for a free worker (cap env.ssh.parallel)",
        "Connection() + known_hosts (client CPU)",
        "TCP + SSH handshake + auth",
        "remote script (login shell + emulated tools)",
    ]
    rows = []
    for i, name in enumerate(names):
        values = [m[i] for m in marks.values()]
        rows.append([name, fmt_s(min(values), 3), fmt_s(median(values), 3), fmt_s(max(values), 3)])
    rows.append(["assemble + parse (once, after the last host)", "", fmt_s(asm[0], 3), ""])
    return rows, {"wall": cpu.wall, "cpu": cpu, "hosts": len(marks)}


# Entry points whose cumulative CPU says where xenfab's own CPU goes (they nest: not a sum).
ENTRY_POINTS = (
    ("all gather worker threads", "concurrent/futures/thread.py", "_worker"),
    ("  Connection() (Fabric)", "fabric/connection.py", "__init__"),
    ("    of which ssh_config lookup (paramiko)", "paramiko/config.py", "lookup"),
    ("  known_hosts (cached after the first host)", "xenfab/remote/hostkeys.py", "trusted_keys"),
    ("  SSHClient.connect: TCP, wait for kex, auth", "paramiko/client.py", "connect"),
    ("  execute: channel, read the output", "xenfab/remote/channel.py", "execute"),
    ("split_output (per host)", "xenfab/gather/batch.py", "split_output"),
    ("assemble: parse every output, join (once)", "xenfab/gather/assemble.py", "assemble"),
)


def profile(lab: Lab, size: int, top: int) -> tuple[list[list[str]], list[list[str]], float]:
    """cProfile of one gather, every thread, in thread CPU time: entry points and top functions."""
    env = environment(lab, size)
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def hook(frame, event, arg):
        # Runs once in each new thread (then the profiler replaces it): one profile per thread.
        p = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(p)
        p.enable()

    main = cProfile.Profile(time.thread_time)
    threading.setprofile(hook)
    main.enable()
    try:
        t = time.monotonic()
        gather(env)
        wall = time.monotonic() - t
    finally:
        main.disable()
        threading.setprofile(None)
    time.sleep(0.3)  # let the transports' threads finish
    stats = pstats.Stats(main)
    for p in profiles:
        p.disable()
        stats.add(p)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values())
    rows = []
    for label, suffix, func in ENTRY_POINTS:
        ct = sum(v[3] for (path, _, fn), v in raw.items() if fn == func and path.endswith(suffix))
        rows.append([label, fmt_s(ct, 2), f"{100 * ct / total:.0f}%"])
    # The transports' threads enter run() before their profiler starts: count paramiko's own time.
    own = sum(
        v[2] for (path, _, _), v in raw.items() if "paramiko/" in path and "config.py" not in path
    )
    rows.append(
        [
            "paramiko's own time: packets, crypto, kex, auth",
            fmt_s(own, 2),
            f"{100 * own / total:.0f}%",
        ]
    )
    rows.append(["total, every thread (the profiler itself slows it)", fmt_s(total, 2), "100%"])
    ranked = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    funcs = [
        [_short(path, line, fn), str(nc), fmt_s(tt, 3), fmt_s(ct, 3)]
        for (path, line, fn), (_, nc, tt, ct, _) in ranked
    ]
    return rows, funcs, wall


def _short(path: str, line: int, fn: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({fn})" if line else fn


# Where `import xenfab.tasks` spends its time (cumulative; nested ones are counted in both).
IMPORTS = (
    ("xenfab.tasks", " (all of it)"),
    ("fabric", ""),
    ("paramiko", ""),
    ("invoke", ""),
    ("yaml", ""),
    ("tabulate", ""),
    ("xenfab.plan", ""),
    ("xenfab.show", ""),
)


def startup(repeat: int) -> tuple[list[list[str]], float]:
    """fab's start-up: `fab --list` wall time and the heaviest top-level imports."""
    walls = [run_process([sys.executable, "-m", "fabric", "--list"]).wall for _ in range(repeat)]
    bare = median([run_process([sys.executable, "-c", "pass"]).wall for _ in range(repeat)])
    res = run_process([sys.executable, "-X", "importtime", "-c", "import xenfab.tasks"])
    cumulative = {}
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative.setdefault(parts[2].strip(), int(parts[1]))
    rows = [["`fab --list` (start-up, no SSH)", fmt_s(median(walls), 3)]]
    rows.append(["`python -c pass` (the interpreter alone)", fmt_s(bare, 3)])
    for name, what in IMPORTS:
        if name in cumulative:
            rows.append(
                [f"import {name}{what} (when first imported)", fmt_s(cumulative[name] / 1e6, 3)]
            )
    return rows, median(walls)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the gather benchmark and print its tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 hosts, no profile (~15 s)")
    ap.add_argument("--hosts", type=int, help="largest size (default 100; quick 6)")
    ap.add_argument("--guests", type=int, help="guests in the lab (default 4 per host)")
    ap.add_argument("--latency", type=int, default=200, help="ms each emulated command sleeps")
    ap.add_argument("--serial-sample", type=int, help="hosts asked the seed's way (default 10)")
    ap.add_argument("--repeat", type=int, help="runs of the bound and of N hosts (default 3)")
    ap.add_argument("--lab", help="use this running lab instead of starting one")
    ap.add_argument("--no-profile", action="store_true", help="skip the CPU profile")
    ap.add_argument(
        "--caps", help="env.ssh.parallel values to sweep at N hosts (default 8,16,32,64,100)"
    )
    ap.add_argument("--json", help="also write the key figures to this file (for run.py)")
    args = ap.parse_args(argv)
    n = args.hosts or (4 if args.quick else 100)
    sizes = [1, n] if args.quick else sorted({1, *(s for s in (10, 30) if s < n), n})
    sample = min(n, args.serial_sample or (3 if args.quick else 10))
    repeat = args.repeat or (1 if args.quick else 3)
    guests = args.guests or 4 * n
    figures: dict = {"hosts": n, "latency_ms": args.latency, "guests": guests}

    with bench_lab(n, guests, args.latency, sizes, lab_dir=args.lab) as lab:
        if len(lab.hosts) < n:
            raise SystemExit(f"the lab in {lab.dir} has {len(lab.hosts)} hosts, not {n}")
        load0 = load_average()
        # The bound and the target alternate, so a change in the machine's load hits both.
        fab_walls: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(repeat):
            for s in (1, n):
                fab_walls[s].append(fab_facts(lab, s)[0])
        for s in sizes:
            if not fab_walls[s]:
                fab_walls[s].append(fab_facts(lab, s)[0])
        inproc = {s: in_process(lab, s) for s in sizes}
        per_host = serial(lab, sample)
        master = lab.hosts[0]
        bound = median(fab_walls[1])

        rows = []
        for s in sizes:
            fw = median(fab_walls[s])
            ser = extrapolate(per_host, master, s)
            cpu = inproc[s]["cpu"]
            rows.append(
                [
                    str(s),
                    f"{fw:.2f} ({min(fab_walls[s]):.2f})",
                    fmt_ratio(fw / bound),
                    fmt_s(inproc[s]["wall"]),
                    fmt_s(ser, 1) + ("" if s <= sample else " (extrap.)"),
                    fmt_ratio(ser / fw),
                    f"{cpu.ours:.1f} / {cpu.lab:.1f} / {cpu.others:.1f}",
                    str(inproc[s]["errors"]),
                ]
            )
        headers = [
            "hosts",
            "fab facts s (best)",
            "vs 1 host",
            "gather() s",
            "serial s",
            "speed-up",
            "CPU s xenfab / lab / others",
            "errors",
        ]
        print(
            f"== Gather: `fab facts`, lab of {len(lab.hosts)} hosts, {guests} guests, "
            f"{args.latency} ms per emulated command, {os.cpu_count()} CPUs, "
            f"load average {load0:.1f} at start =="
        )
        print(table(rows, headers))
        fw_n = median(fab_walls[n])
        ser_n = extrapolate(per_host, master, n)
        ratio, speedup = fw_n / bound, ser_n / fw_n
        best_n, best_1 = min(fab_walls[n]), min(fab_walls[1])
        print(
            f"\nfab facts: median (best) of {len(fab_walls[n])} runs, 1 host and {n} hosts "
            f"alternated; best runs: {best_n / best_1:.2f}x the 1-host time, "
            f"{ser_n / best_n:.1f}x faster than serial. gather(): the same in this process. "
            f"serial: the seed's way (one host after another, one connection each), measured on "
            f"{sample} hosts ({master} = master {per_host[master]:.2f} s, others mean "
            f"{median([v for k, v in per_host.items() if k != master]):.2f} s) and extrapolated."
            f"\nTargets at {n} hosts: <= {TARGET_RATIO:g}x the 1-host time: {ratio:.2f}x "
            f"{verdict(ratio <= TARGET_RATIO)}; >= {TARGET_SPEEDUP:g}x faster than serial: "
            f"{speedup:.1f}x {verdict(speedup >= TARGET_SPEEDUP)}."
        )
        figures.update(
            bound_s=bound,
            fab_facts_s=fw_n,
            ratio=ratio,
            serial_s=ser_n,
            serial_sample=sample,
            speedup=speedup,
            sizes={str(s): median(fab_walls[s]) for s in sizes},
            best_s=best_n,
            best_bound_s=best_1,
            gather_s={str(s): inproc[s]["wall"] for s in sizes},
            load_average=load0,
        )

        # Where the time goes.
        floor = logins(lab, n)
        one = logins(lab, 1)
        rows, info = phases(lab, n)
        print(f"\n== Where the time goes: one {n}-host gather, per host (s) ==")
        print(table(rows, ["phase", "min", "median", "max"]))
        c = info["cpu"]
        print(
            f"\nThat gather: {info['wall']:.2f} s wall; CPU {c.ours:.1f} s xenfab, {c.lab:.1f} s "
            f"the lab ({c.lab / max(1, n):.3f} s per host), {c.others:.1f} s other processes, "
            f"of {c.capacity:.1f} s available on {os.cpu_count()} cores: that CPU alone needs "
            f"{cpu_floor(c):.2f} s of wall time (the machine's CPU floor for this gather)."
        )
        print(
            f"The lab's floor: {n} parallel logins running `true` (no Xen tool) take "
            f"{floor['wall']:.2f} s ({floor['cpu'].lab:.1f} s lab CPU, "
            f"{floor['cpu'].lab / n:.3f} s per login); one login alone {one['wall']:.2f} s."
        )
        figures.update(
            login_floor_s=floor["wall"],
            login_one_s=one["wall"],
            lab_cpu_per_host_s=c.lab / max(1, n),
            lab_cpu_per_login_s=floor["cpu"].lab / n,
            xenfab_cpu_s=c.ours,
        )

        caps = [
            int(x) for x in (args.caps or ("" if args.quick else "8,16,32,64,100")).split(",") if x
        ]
        floors = [cpu_floor(c)]
        if caps:
            print(f"\n== The worker cap (env.ssh.parallel, default 64) at {n} hosts: gather() ==")
            rows, splits = cap_sweep(lab, n, caps)
            print(
                table(rows, ["cap", "wall s", "lab CPU s", "per host", "others' CPU s", "errors"])
            )
            floors += [cpu_floor(split) for split in splits]
            best = min(range(len(caps)), key=lambda i: splits[i].wall)
            figures.update(best_cap=caps[best], best_cap_s=splits[best].wall)
        figures["cpu_floor_s"] = min(floors)
        print(
            f"\nCPU floor of a {n}-host gather on this machine, (lab + xenfab CPU) / "
            f"{os.cpu_count()} cores, least of the gathers above: {min(floors):.2f} s; "
            f"fab facts took {fw_n / min(floors):.2f}x that."
        )

        print("\n== One connection to the master, step by step (median) ==")
        print(table(anatomy(lab, 1 if args.quick else 5), ["step", "s"]))

        if not (args.quick or args.no_profile):
            areas, funcs, wall = profile(lab, n, 12)
            print(f"\n== xenfab's CPU in a {n}-host gather (cProfile, thread CPU time) ==")
            print(table(areas, ["where (cumulative)", "CPU s", "share"]))
            print("\nTop functions by own CPU time:")
            print(table(funcs, ["function", "calls", "own s", "cumulative s"]))

        rows, fab_list = startup(1 if args.quick else 3)
        print("\n== fab's own start-up (part of every `fab facts` above) ==")
        print(table(rows, ["what", "s"]))
        figures["fab_startup_s"] = fab_list

    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
