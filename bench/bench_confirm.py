#!/usr/bin/env python3
"""Benchmark the xl backend's pre-start round: every host's `xl list`, at 100 hosts vs 1 host.

    python bench/bench_confirm.py              # 100 hosts vs 1 host, 7 rounds each
    python bench/bench_confirm.py --quick      # 20 hosts vs 1 host, 5 rounds
    python bench/bench_confirm.py --json F     # also write the figures to F
    python bench/bench_confirm.py --per-read   # a new SSH command per read (no long-lived readers)

With no cluster manager, the start engine reads every host's domain list before each turn of
starts (xenfab.start.watch.DomainWatch, one round per turn). This measures one such round
through the engine's own reader, over a lab with ``backend: xl`` (real sshd on loopback) that it
brings up in a temporary directory and tears down: a warm-up round opens the transports (and
each host's long-lived reader, xenfab.remote.stream), as the engine's first round does while it
holds the lock, then the median of the timed rounds.

Not a test: the figures depend on the machine (every emulated `xl list` is an sshd channel, a
shell and the lab's emulator, all sharing its cores with xenfab).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from xenfab import lab  # noqa: E402
from xenfab.config import load_config  # noqa: E402
from xenfab.gather import gather  # noqa: E402
from xenfab.remote import fabric_config  # noqa: E402
from xenfab.start import watch  # noqa: E402

REPO = os.path.dirname(HERE)
# The round's target: it uses the cores it has. On a real cluster each host answers from its own
# CPUs and a round is latency-bound; in the lab every host's sshd channel, shell and emulator
# share this machine's cores, so a warm round is CPU-bound (measured: 11.8 ms per host read one
# after another, 1.7 ms of it xenfab's). 16 readers must then bring the round to within 1.25x of
# (one reader's round / min(cores, readers)). The first target, 100 hosts <= 20x one host,
# assumed latency-bound reads and measured the lab's CPU instead: it is still printed, as info.
TARGET_OVERLAP = 1.25
RATIO_WAS_TARGET = 20.0
# xenfab's own CPU per host read (paramiko, threads, parsing): what a 1000-host round costs the
# workstation per turn, whatever the hosts; 3 ms keeps that turn's CPU under 3 s.
TARGET_CPU_MS = 3.0


def _round_seconds(w: watch.DomainWatch, rounds: int) -> tuple[float, list[float], float]:
    """Median seconds of ``rounds`` rounds of ``w`` (after a warm-up), all of them, CPU per round.

    The CPU is this process's (xenfab's reader: paramiko, threads, parsing), not the lab's.
    """
    warm = w.begin()
    w.wait(warm, 120)
    assert not warm.unproven(w.hosts), warm.unproven(w.hosts)
    times = []
    cpu0 = time.process_time()
    for _ in range(rounds):
        t0 = time.monotonic()
        rnd = w.begin()
        w.wait(rnd, 120)
        times.append(time.monotonic() - t0)
        missing = rnd.unproven(w.hosts)
        if missing:
            raise SystemExit(f"bench_confirm: a round missed {len(missing)} host(s): {missing}")
    cpu = (time.process_time() - cpu0) / rounds
    return statistics.median(times), times, cpu


def measure(lab_dir: str, hosts: int, rounds: int) -> dict:
    """One round at ``hosts`` hosts and at one host, over the xl lab in ``lab_dir``."""
    os.environ["XENFAB_LAB_DIR"] = lab_dir
    cfg = load_config(os.path.join(REPO, "fabfile_config.yaml"))
    env = cfg.environment("lab-xl")
    snap = gather(env)
    assert len(snap.hosts) == hosts, (len(snap.hosts), hosts)
    out: dict = {
        "hosts": hosts,
        "rounds": rounds,
        "readers": watch.READERS,
        "streams": watch.STREAMS,
    }
    for key, subset, readers in (
        ("one", snap.hosts[:1], watch.READERS),
        ("many", snap.hosts, watch.READERS),
        ("serial", snap.hosts, 1),
    ):
        one_env = dataclasses.replace(env)
        pool = watch.SessionPool(one_env, fabric_config(one_env))
        saved, watch.READERS = watch.READERS, readers
        try:
            w = watch.DomainWatch(pool, subset, env.ssh.connect_timeout, lambda _msg: None)
        finally:
            watch.READERS = saved
        try:
            median, times, cpu = _round_seconds(w, rounds)
        finally:
            w.stop()
            pool.close()
        out[f"{key}_s"] = round(median, 4)
        out[f"{key}_all_s"] = [round(t, 4) for t in times]
        out[f"{key}_cpu_ms_per_host"] = round(1000 * cpu / len(subset), 2)
    out["ratio"] = round(out["many_s"] / out["one_s"], 2)
    out["speedup"] = round(out["serial_s"] / out["many_s"], 2)
    out["cores"] = os.cpu_count() or 1
    out["bound_s"] = round(out["serial_s"] / min(out["cores"], watch.READERS), 4)
    out["overlap"] = round(out["many_s"] / out["bound_s"], 2)
    out["target"] = TARGET_OVERLAP
    out["target_cpu_ms"] = TARGET_CPU_MS
    out["ok"] = out["overlap"] <= TARGET_OVERLAP and out["many_cpu_ms_per_host"] <= TARGET_CPU_MS
    return out


def main(argv: list[str] | None = None) -> int:
    """Bring up an xl lab, time the rounds, print the figures (and write them as JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 hosts instead of 100")
    ap.add_argument("--hosts", type=int, default=None, help="hosts in the big round")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per size")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument(
        "--per-read", action="store_true", help="a new SSH command per read (no long-lived readers)"
    )
    args = ap.parse_args(argv)
    watch.STREAMS = not args.per_read
    hosts = args.hosts or (20 if args.quick else 100)
    rounds = args.rounds or (5 if args.quick else 7)
    work = tempfile.mkdtemp(prefix="xenfab-bench-confirm-")
    lab_dir = os.path.join(work, "lab")
    try:
        print(f"bringing up a {hosts}-host xl lab in {lab_dir} ...", flush=True)
        lab.up(lab_dir, hosts=hosts, guests=2 * hosts, boot_s=1, backend="xl")
        fig = measure(lab_dir, hosts, rounds)
    finally:
        try:
            lab.down(lab_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"pre-start round (every host's xl list, {fig['readers']} readers, "
        f"{'long-lived readers' if fig['streams'] else 'a command per read'}): "
        f"1 host {fig['one_s']:.3f} s, {hosts} hosts {fig['many_s']:.3f} s ({fig['ratio']:.1f}x), "
        f"one reader {fig['serial_s']:.3f} s; bound {fig['bound_s']:.3f} s "
        f"(one reader / {min(fig['cores'], fig['readers'])} cores): {fig['overlap']:.2f}x "
        f"(target <= {TARGET_OVERLAP:g}x); xenfab CPU {fig['many_cpu_ms_per_host']:.2f} ms per "
        f"host (target <= {TARGET_CPU_MS:g}): {'ok' if fig['ok'] else 'NOT met'}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(fig, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
