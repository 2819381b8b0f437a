#!/usr/bin/env python3
"""Benchmark the start engine on the rehearsal lab against the schedule bound and the seed's way.

    python bench/bench_start.py            # 20 hosts, 200 guests to start, 5 s boot, 2 per host
    python bench/bench_start.py --quick    # 8 hosts, 40 guests, 2 s boot (about a minute)

It brings up its own lab in a temporary directory (real sshd on loopback), and tears it down.

- best bound: the least time any schedule of these guests can take over every layout the rules
  (RAM) allow, computed exactly: with identical boot times d and c starts per host, a host given
  k guests needs ceil(k / c) rounds, so the all-up time is d x the fewest rounds R for which a
  layout with at most c x R guests per host fits (pigeonhole gives R >= ceil(n / (c x hosts));
  each R from there is checked exactly by an integer program over guest sizes, HiGHS, until one
  is feasible: that one is optimal, the smaller ones proven infeasible);
- layout bound: the same for the chosen layout: its busiest host's ceil(guests / c) x d (the
  global cap is set to c x hosts, so it never binds);
- expected: the plan's expected_all_up_s, its figures read as a run reads them: the audit log
  of a warm-up run (one round: cap x hosts starts, then the lab reseeded) gives each started
  guest its own start time, the others their size class's, and the engine's gap between two
  start commands; start.boot_estimate_s is the lab's boot time, for a class never started;
- serial: the seed's one-at-a-time way (a new SSH connection per command, clusvcadm, wait until
  clustat says started, next guest), measured on a few guests in the same run and scaled to all.

Not a test: the figures depend on the machine (the lab's tools are Python processes sharing its
cores with sshd and xenfab).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tabulate import tabulate  # noqa: E402

from xenfab import lab  # noqa: E402
from xenfab import remote as ssh  # noqa: E402
from xenfab.cluster import backend as get_backend  # noqa: E402
from xenfab.config import XenfabConfig, load_config  # noqa: E402
from xenfab.gather import batch, environment_hosts, gather  # noqa: E402
from xenfab.history import start_history, start_samples  # noqa: E402
from xenfab.plan import plan  # noqa: E402
from xenfab.plan.timing import Timing, expected_times  # noqa: E402
from xenfab.start import StartOptions, start_guests, watch  # noqa: E402

REPO = os.path.dirname(HERE)


def max_overlap(windows: list[tuple[float, float]]) -> int:
    """The most [began, ended) windows open at one instant."""
    events = sorted([(b, 1) for b, _ in windows] + [(e, -1) for _, e in windows])
    best = cur = 0
    for _, step in events:
        cur += step
        best = max(best, cur)
    return best


def latencies(audit_path: str, starts: list[dict]) -> tuple[float, float]:
    """Median seconds from sending clusvcadm to the lab's start, and from booted to confirmed."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    with open(audit_path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            at = datetime.datetime.fromisoformat(rec["time"]).timestamp()
            # The intent is written (fsynced) right before the command leaves; the `start`
            # line only when the loop handles its return, which may be later.
            if rec["action"] == "intent" and rec["guest"] not in sent:
                sent[rec["guest"]] = at
            elif rec["action"] == "result" and rec.get("outcome") == "started":
                seen[rec["guest"]] = at
    launch = [s["began"] - sent[s["guest"]] for s in starts if s["guest"] in sent]
    detect = [seen[s["guest"]] - s["ended"] for s in starts if s["guest"] in seen]
    return statistics.median(launch or [0.0]), statistics.median(detect or [0.0])


def best_rounds(snap, layout, cap: int, reserve_mib: int, overhead_mib: int) -> tuple[int, int]:
    """(fewest rounds over every layout of ``layout``'s guests that fits the hosts' RAM, the
    pigeonhole bound it started from); exact: each smaller count is an infeasible program."""
    import highspy

    sizes = Counter(a.memory_mib + overhead_mib for a in layout.assignments)
    hosts = [h for h in layout.hosts if h.status == "ok"]
    n = len(layout.assignments)
    low = math.ceil(n / (cap * len(hosts)))
    for rounds in range(low, n + 1):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        kinds = sorted(sizes)
        var = {}
        for k in kinds:
            for j, _ in enumerate(hosts):
                var[k, j] = h.addIntegral(lb=0, ub=sizes[k])
        for k in kinds:
            h.addConstr(sum(var[k, j] for j in range(len(hosts))) == sizes[k])
        for j, host in enumerate(hosts):
            room = host.free_mib_before - reserve_mib
            h.addConstr(sum(k * var[k, j] for k in kinds) <= room)
            h.addConstr(sum(var[k, j] for k in kinds) <= cap * rounds)
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            return rounds, low
    return n, low


def trimmed(snap, want: int):
    """``snap`` with only the first ``want`` down guests (name order) of the lab's scenario."""
    down = sorted(g.name for g in snap.guests if g.state in ("disabled", "failed") and g.plannable)
    drop = set(down[want:]) | {
        g.name for g in snap.guests if g.state in ("disabled", "failed") and not g.plannable
    }
    return replace(snap, guests=[g for g in snap.guests if g.name not in drop])


def sources(layout) -> str:
    """How many guests' expected start times came from where, and their median."""
    said = ", ".join(f"{n} {src}" for src, n in sorted(layout.expected_sources.items()))
    boots = [a.expected_boot_s for a in layout.assignments if a.expected_boot_s is not None]
    return f"{said} (median {statistics.median(boots or [0.0]):.2f} s)"


def run_gaps(audit_path: str) -> list[float]:
    """Per run of the audit log (in order), the median seconds between consecutive intents."""
    runs: dict[str, list[float]] = {}
    with open(audit_path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("action") == "intent":
                at = datetime.datetime.fromisoformat(rec["time"]).timestamp()
                runs.setdefault(rec["run"], []).append(at)
    out = []
    for times in runs.values():
        times.sort()
        if len(times) > 1:
            out.append(statistics.median(b - a for a, b in zip(times, times[1:], strict=False)))
    return out


def has_ready(audit_path: str) -> bool:
    """True when the audit log has a ``ready`` line (the readiness probes write them)."""
    with open(audit_path, encoding="utf-8") as fh:
        return any('"action": "ready"' in line for line in fh)


def lab_config(lab_dir: str) -> XenfabConfig:
    """The repository's configuration, with the lock and audit log inside the lab directory."""
    os.environ["XENFAB_LAB_DIR"] = lab_dir
    cfg = load_config(os.path.join(REPO, "fabfile_config.yaml"))
    cfg.lock_path = os.path.join(lab_dir, "xenfab.lock")
    cfg.audit_log = os.path.join(lab_dir, "audit.jsonl")
    return cfg


def seed_way(cfg: XenfabConfig, guests: list[tuple[str, str]], boot_s: float) -> list[float]:
    """Start guests one at a time as the seed script did; the seconds each one took."""
    env = cfg.environment("lab")
    fab = ssh.fabric_config(env)
    be = get_backend(env.backend)
    master = env.master or environment_hosts(env)[0].name  # hosts may be patterns (xen*)
    times = []
    for guest, host in guests:
        t0 = time.monotonic()
        res = ssh.run(master, be.start_command(guest, host, "disabled"), env, fab)
        if res.error:
            raise SystemExit(f"serial baseline: {res.error}")
        deadline = t0 + boot_s * 4 + 30
        while time.monotonic() < deadline:
            nonce = batch.new_nonce()
            out = ssh.run(master, batch.build_script(nonce, be.state_probes()), env, fab)
            if out.output is not None:
                state = be.parse_state(batch.split_output(out.output.text, nonce).outputs, master)
                svc = state.services.get(guest)
                if svc is not None and svc.state == "started":
                    break
            time.sleep(0.25)
        times.append(time.monotonic() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller lab (about a minute)")
    ap.add_argument("--hosts", type=int)
    ap.add_argument("--guests", type=int, help="guests to start (the lab gets a few more)")
    ap.add_argument("--boot", type=float, help="boot time of a guest in the lab (s)")
    ap.add_argument("--cap", type=int, default=2, help="starts per host at a time")
    ap.add_argument("--serial-sample", type=int, help="guests started the seed's way")
    ap.add_argument(
        "--objective", choices=("all-up", "last-owner"), default="all-up", help="policy.objective"
    )
    ap.add_argument(
        "--plan-only", action="store_true", help="bring the lab up, plan, print the bounds, stop"
    )
    ap.add_argument("--keep", action="store_true", help="keep the lab directory")
    ap.add_argument("--log", help="write the engine's progress lines to this file")
    ap.add_argument(
        "--per-read",
        action="store_true",
        help="read domain lists and state with a new command per read (no long-lived readers)",
    )
    args = ap.parse_args(argv)
    watch.STREAMS = not args.per_read
    hosts = args.hosts or (8 if args.quick else 20)
    want = args.guests or (40 if args.quick else 200)
    boot = args.boot if args.boot is not None else (2.0 if args.quick else 5.0)
    sample = args.serial_sample or (3 if args.quick else 4)

    lab_dir = tempfile.mkdtemp(prefix="xenfab-bench-")
    cfg = lab_config(lab_dir)
    env = cfg.environment("lab")
    rows = []
    try:
        # The lab's scenario leaves some guests running; grow it until `want` are down.
        total = want
        for _ in range(6):
            lab.up(lab_dir, hosts=hosts, guests=total, boot_s=boot)
            status = lab.status(lab_dir)
            down = sum(1 for s in status["services"] if s["state"] in ("disabled", "failed"))
            if down >= want:
                break
            total += want - down + 2
        env.start.max_starts_per_host = args.cap
        policy = env.policy

        # 1. The seed's way, on a sample (then a fresh scenario for the real run).
        snap = gather(env)
        layout = plan(snap, policy)
        picked = [
            (a.guest, a.host)
            for a in layout.assignments
            if snap.guest(a.guest) and snap.guest(a.guest).state == "disabled"
        ][:sample]
        serial_each = seed_way(cfg, picked, boot) if not args.plan_only else []
        lab.reseed(lab_dir)
        gap, samples = 0.0, {}
        if not args.plan_only:
            # A warm-up run (one round: cap x hosts starts) so that the audit log knows how
            # fast the engine sends starts, as a real site's log would from its last runs.
            snap = trimmed(gather(env), args.cap * hosts)
            warm = plan(snap, policy)
            start_guests(
                cfg,
                env,
                snap,
                warm,
                policy,
                StartOptions(parallel=args.cap * hosts, out=io.StringIO()),
            )
            samples, gap = start_history(cfg.audit_log, env.name)
            lab.reseed(lab_dir)

        # 2. xenfab: gather, plan, start everything. The global cap never binds (c x hosts);
        # the plan is told the caps and the lab's boot time (no history in a fresh lab).
        parallel = args.cap * hosts
        t0 = time.monotonic()
        snap = gather(env)
        # As a run plans (run/facts.py): per guest its own starts in the audit log, else its
        # size class's, else start.boot_estimate_s (the lab's boot time here).
        timing = Timing(
            per_host=args.cap,
            in_flight=parallel,
            boot_estimate_s=boot,
            estimates=expected_times(snap.guests, samples, boot),
            dispatch_s=gap,
        )
        layouts = {}
        for objective in ("last-owner", "all-up"):
            pol = replace(policy, objective=objective, timing=timing)
            layouts[objective] = plan(trimmed(snap, want), pol)
        layout = layouts[args.objective]
        snap = trimmed(snap, want)
        assignments = layout.assignments
        per_host = Counter(a.host for a in assignments)
        rounds, low = best_rounds(snap, layout, args.cap, policy.reserve_mib, policy.overhead_mib)
        best = rounds * boot
        sticky = {
            name: sum(
                1 for a in lay.assignments if (snap.guest(a.guest).last_owner or "") == a.host
            )
            for name, lay in layouts.items()
        }
        summary = [
            f"best bound: {rounds} rounds x {boot:g} s (pigeonhole: >= {low} rounds; "
            f"{'the same' if rounds == low else 'more: RAM'}; HiGHS proved every fewer "
            f"infeasible). From the warm-up run's audit log: start commands {gap:.3f} s "
            f"apart (median); start times: {sources(layout)}. Both objectives on these facts "
            f"({len(assignments)} guests):"
        ]
        for name, lay in layouts.items():
            used = Counter(a.host for a in lay.assignments)
            summary.append(
                f"  objective {name}: busiest host {max(used.values())} guests, layout bound "
                f"{max(math.ceil(n / args.cap) for n in used.values()) * boot:.1f} s, expected "
                f"all-up {lay.expected_all_up_s:.1f} s, {sticky[name]} of "
                f"{len(lay.assignments)} on their last owner"
            )
        if args.plan_only:
            print("\n".join(summary))
            return 0
        log = io.StringIO()
        load0 = os.getloadavg()[0]
        t1, c1 = time.monotonic(), os.times()
        report = start_guests(
            cfg, env, snap, layout, policy, StartOptions(parallel=parallel, out=log)
        )
        wall = time.monotonic() - t1
        c2 = os.times()
        cpu = (c2.user + c2.system) - (c1.user + c1.system)
        total_wall = time.monotonic() - t0
        if args.log:
            with open(args.log, "w", encoding="utf-8") as fh:
                fh.write(log.getvalue())
        if not report.ok:
            print(log.getvalue()[-3000:], file=sys.stderr)
            print(report.table(), file=sys.stderr)
        bound = max(math.ceil(n / args.cap) for n in per_host.values()) * boot
        starts = [s for s in lab.status(lab_dir)["starts"] if s["ok"]]
        by_host: dict[str, list] = {}
        for s in starts:
            by_host.setdefault(s["host"], []).append((s["began"], s["ended"]))
        peak_host = max(max_overlap(w) for w in by_host.values()) if by_host else 0
        peak_all = max_overlap([(s["began"], s["ended"]) for s in starts])
        launch, detect = latencies(cfg.audit_log, starts)
        serial_mean = sum(serial_each) / len(serial_each)
        serial = serial_mean * len(assignments)
        counts = report.counts()
        rows.append(
            [
                hosts,
                len(assignments),
                max(per_host.values()),
                f"{boot:g}",
                f"{args.cap}/{parallel}",
                f"{wall:.1f}",
                f"{best:.1f}",
                f"{wall / best:.2f}",
                f"{bound:.1f}",
                f"{wall / bound:.2f}",
                f"{layout.expected_all_up_s:.1f}",
                f"{(layout.expected_all_up_s - wall) / wall * 100:+.0f}%",
                f"{serial:.0f} ({len(serial_each)}x{serial_mean:.2f})",
                f"{serial / wall:.0f}x",
                f"{peak_host}/{peak_all}",
                f"{counts['started']}/{counts['failed']}",
            ]
        )
        headers = [
            "hosts",
            "guests",
            "busiest",
            "boot s",
            "cap host/all",
            "wall s",
            "best bound s",
            "vs best",
            "layout bound s",
            "vs layout",
            "expected s",
            "exp. err",
            "serial s (sample)",
            "speed-up",
            "peak host/all",
            "started/failed",
        ]
        print(tabulate(rows, headers=headers, tablefmt="github"))
        print(
            f"\nwall: start_guests only ({cpu:.1f} s CPU in xenfab); with gather and plan: "
            f"{total_wall:.1f} s. "
            f"targets: vs best <= 1.15, expected within 10% of wall. serial: the seed's "
            f"one-at-a-time way, measured on {len(serial_each)} guests in this run and scaled "
            f"to {len(assignments)}."
        )
        print(f"Ran: objective {args.objective}. " + "\n".join(summary))
        gaps = run_gaps(cfg.audit_log)
        print(
            "gap between start commands, median per run (warm-up, measured): "
            + ", ".join(f"{g:.3f} s" for g in gaps)
        )
        seen = start_samples(cfg.audit_log, env.name)
        if seen:
            flat = [v for vs in seen.values() for v in vs]
            print(
                f"the audit log's start times after the run: {len(flat)} samples, median "
                f"{statistics.median(flat):.2f} s (ready lines: "
                f"{'yes' if has_ready(cfg.audit_log) else 'none, so accepted-start seconds'})"
            )
        how = "a new SSH command per read" if args.per_read else "long-lived readers"
        print(f"domain lists and state reads: {how} (--per-read switches).")
        age = getattr(report, "max_liveness_age_s", None)
        if age is not None:
            print(
                f"freshness per start: every start was cleared by a round of domain lists "
                f"begun at most {age:.3f} s before it left (max_liveness_age_s)."
            )
        print(
            f"per start (median): clusvcadm sent -> the lab's start began {launch:.2f} s; "
            f"booted -> xenfab saw started {detect:.2f} s. "
            f"Load average before/after: {load0:.1f}/{os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs."
        )
        ok = report.ok and wall / best <= 1.15 and peak_host <= args.cap
        return 0 if ok else 1
    finally:
        try:
            lab.down(lab_dir)
        finally:
            if not args.keep:
                shutil.rmtree(lab_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
