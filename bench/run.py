#!/usr/bin/env python3
"""Run every benchmark against the lab, one after another, and print their figures side by side.

    .venv/bin/python bench/run.py            # full: 100-host lab, 5,000-guest plans (~3 min)
    .venv/bin/python bench/run.py --quick    # small sizes (about a minute)
    .venv/bin/python bench/run.py --smoke    # the smallest sizes, for the test suite: does
                                             # every benchmark still run? (figures mean little)

The gather and memory benchmarks share one lab that this script brings up in a temporary
directory (100 hosts, 400 guests, 200 ms per emulated command; quick: 4 hosts) and always tears
down. The planner's and the start engine's benchmarks (bench_plan.py, bench_start.py, by their
owners) run as they are, with their own labs; when one is missing or fails, the summary says so.
Every benchmark runs alone, in sequence, so none of them measures the others' load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BENCH, REPO, fmt_ratio, fmt_s, load_average, table, verdict  # noqa: E402

from xenfab import lab  # noqa: E402


@dataclass
class Outcome:
    """One benchmark subprocess: its exit code (None: missing or timed out), output, seconds."""

    name: str
    rc: int | None
    output: str
    seconds: float
    note: str = ""

    @property
    def status(self) -> str:
        """What the summary says about the run itself."""
        if self.note:
            return self.note
        return "ran" if self.rc == 0 else f"exit {self.rc}"


def run_bench(name: str, args: list[str], timeout: float) -> Outcome:
    """Run bench/NAME with ARGS, echoing its output live; never raises."""
    path = os.path.join(BENCH, name)
    if not os.path.exists(path):
        print(f"\n##### {name}: not there (yet)\n", flush=True)
        return Outcome(name, None, "", 0.0, "missing")
    print(f"\n##### {name} {' '.join(args)}\n", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, path, *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        proc.wait()
    finally:
        timer.cancel()
    seconds = time.monotonic() - t0
    note = f"killed after {timeout:.0f} s" if seconds >= timeout and proc.returncode < 0 else ""
    return Outcome(name, proc.returncode, "".join(lines), seconds, note)


def supported_options(name: str) -> set[str]:
    """The long options bench/NAME --help lists (so run.py never passes one it lacks)."""
    path = os.path.join(BENCH, name)
    try:
        res = subprocess.run(
            [sys.executable, path, "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", res.stdout))


def read_json(path: str) -> dict:
    """A benchmark's --json figures ({} when it wrote none)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- summary rows


def gather_rows(out: Outcome, fig: dict) -> list[list[str]]:
    """Summary rows of bench_gather.py."""
    if not fig:
        return [["gather", "fab facts", "-", "-", "-", "-", out.status]]
    n = fig["hosts"]
    rows = [
        [
            "gather",
            f"fab facts, {n} hosts vs 1 host ({fig['latency_ms']} ms per command)",
            fmt_s(fig["fab_facts_s"]),
            fmt_s(fig["bound_s"]) + " (1 host)",
            fmt_ratio(fig["ratio"]),
            "<= 3x",
            verdict(fig["ratio"] <= 3.0),
        ],
        [
            "gather",
            f"fab facts, {n} hosts vs the seed's serial way",
            fmt_s(fig["fab_facts_s"]),
            f"{fig['serial_s']:.1f} (serial, {fig['serial_sample']} measured)",
            fmt_ratio(fig["speedup"]) + " faster",
            ">= 15x",
            verdict(fig["speedup"] >= 15.0),
        ],
    ]
    if "best_s" in fig:
        rows.append(
            [
                "gather",
                f"the same, best of the runs ({n} hosts / 1 host)",
                fmt_s(fig["best_s"]),
                fmt_s(fig["best_bound_s"]) + " (1 host)",
                fmt_ratio(fig["best_s"] / fig["best_bound_s"]),
                "<= 3x",
                "info",
            ]
        )
    sizes = fig.get("sizes", {})
    growth = ", ".join(f"{k}: {v:.2f}" for k, v in sizes.items())
    rows.append(["gather", "fab facts s by hosts (median)", growth, "", "", "", "info"])
    if "login_floor_s" in fig:
        rows.append(
            [
                "gather",
                f"lab floor: {n} parallel logins running `true`",
                fmt_s(fig["login_floor_s"]),
                fmt_s(fig["login_one_s"]) + " (1 login)",
                fmt_ratio(fig["fab_facts_s"] / fig["login_floor_s"]) + " (facts / floor)",
                "",
                "info",
            ]
        )
        rows.append(
            [
                "gather",
                f"CPU per host in a {n}-host gather: lab / xenfab",
                f"{fig['lab_cpu_per_host_s']:.3f} / {fig['xenfab_cpu_s'] / n:.3f}",
                "",
                "",
                "",
                "info",
            ]
        )
    if "cpu_floor_s" in fig:
        rows.append(
            [
                "gather",
                f"CPU floor of a {n}-host gather here: (lab + xenfab CPU) / {os.cpu_count()} cores",
                fmt_s(fig["cpu_floor_s"]),
                "",
                fmt_ratio(fig["fab_facts_s"] / fig["cpu_floor_s"]) + " (facts / floor)",
                "",
                "info",
            ]
        )
    if "best_cap" in fig:
        rows.append(
            [
                "gather",
                f"gather(), {n} hosts, fastest worker cap ({fig['best_cap']}; default 64)",
                fmt_s(fig["best_cap_s"]),
                fmt_s(fig["bound_s"]) + " (1 host)",
                fmt_ratio(fig["best_cap_s"] / fig["bound_s"]),
                "",
                "info",
            ]
        )
    rows.append(
        ["gather", "fab start-up (`fab --list`)", fmt_s(fig["fab_startup_s"]), "", "", "", "info"]
    )
    return rows


def memory_rows(out: Outcome, fig: dict) -> list[list[str]]:
    """Summary rows of bench_memory.py."""
    if not fig:
        return [["memory", "fab facts / show-layout / plan", "-", "-", "-", "-", out.status]]
    n = fig["hosts"]
    rows = []
    for task in ("facts", "show-layout"):
        m = fig.get(f"{task}_{n}")
        if m:
            rows.append(
                [
                    "memory",
                    f"fab {task}, {n} hosts: peak RSS (task's own Python peak)",
                    f"{m['rss_kib'] / 1024:.1f} MiB ({m['above'] / 2**20:.1f} MiB)",
                    "",
                    "",
                    "",
                    "info",
                ]
            )
    sweep = fig.get("fab_by_guests") or []
    if len(sweep) >= 2:
        first, last = sweep[0], sweep[-1]
        for task in ("facts", "show-layout"):
            per = [r[task]["above"] / r["guests"] / 1024 for r in (first, last)]
            m = last[task]
            rows.append(
                [
                    "memory",
                    f"fab {task}, {n} hosts, {last['guests']} guests: RSS (task peak, KiB/guest)",
                    f"{m['rss_kib'] / 1024:.1f} MiB ({m['above'] / 2**20:.1f} MiB, {per[1]:.1f})",
                    f"{first['guests']} guests: {per[0]:.1f} KiB per guest",
                    fmt_ratio(per[1] / per[0]) + " per guest",
                    "<= 1.25x (linear)",
                    verdict(fig.get("fab_linear")),
                ]
            )
    plans = fig.get("plan", {}).get("round-robin", [])
    if plans:
        first, last = plans[0], plans[-1]
        per = [p["peak"] / p["guests"] / 1024 for p in (first, last)]
        rows.append(
            [
                "memory",
                f"plan {last['guests']} guests: peak (KiB per guest)",
                f"{last['peak'] / 2**20:.1f} MiB ({per[1]:.1f})",
                f"{first['guests']} guests: {per[0]:.1f} KiB per guest",
                fmt_ratio(per[1] / per[0]) + " per guest",
                "<= 1.25x (linear)",
                verdict(fig.get("plan_linear")),
            ]
        )
    return rows


def plan_rows(out: Outcome) -> list[list[str]]:
    """Summary rows of bench_plan.py: the slowest greedy strategy at the largest size."""
    found = re.findall(
        r"^(round-robin|most-free|balanced|pack)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)",
        out.output,
        re.M,
    )
    if out.rc != 0 or not found:
        return [["plan", "greedy strategies (bench_plan.py)", "-", "-", "-", "< 1 s", out.status]]
    biggest = max(int(g) for _, g, _, _, _ in found)
    rows = [r for r in found if int(r[1]) == biggest]
    worst = max(rows, key=lambda r: float(r[3]))
    hosts = re.search(r"Greedy scaling[^,]*,\s*(\d+) hosts", out.output)
    where = f" on {hosts.group(1)} hosts" if hosts else ""
    return [
        [
            "plan",
            f"slowest greedy strategy ({worst[0]}), {biggest} guests{where}",
            f"{float(worst[3]):.3f} CPU s ({float(worst[4]):.3f} wall)",
            "1 s (target)",
            fmt_ratio(float(worst[3]) / 1.0) + " of target",
            "< 1 s",
            verdict(float(worst[3]) < 1.0),
        ]
    ]


def place_rows(out: Outcome, fig: dict) -> list[list[str]]:
    """Summary rows of bench_place.py: the default's all-placed share against the others."""
    rows = fig.get("rows") or []
    if out.rc is None or not rows:
        return [
            ["place", "all placed, tight set (bench_place.py)", "-", "-", "-", ">= 99%", out.status]
        ]
    default = rows[0]
    n = default["instances"]
    greedy = max(
        (r for r in rows if r["method"].startswith("greedy")), key=lambda r: r["all_placed"]
    )
    seed = next((r for r in rows if r["method"].startswith("seed")), None)
    before = next((r for r in rows if r["method"].startswith("before")), None)
    out_rows = [
        [
            "place",
            f"all placed, {n} tight instances, default (round-robin + HiGHS)",
            f"{default['all_placed_pct']:.1f}% "
            f"(mean {default['mean_s']:.2f} s, max {default['max_s']:.2f} s)",
            "100% (exact optimum)",
            f"{default['proven']}/{n} proven",
            ">= 99%",
            verdict(default["all_placed_pct"] >= 99 and not default["broken"]),
        ]
    ]
    for label, r in (
        ("before: branch and bound", before),
        (greedy["method"], greedy),
        ("seed's way", seed),
    ):
        if r is not None:
            out_rows.append(
                ["place", f"all placed, {label}", f"{r['all_placed_pct']:.1f}%", "", "", "", "info"]
            )
    return out_rows


def start_rows(out: Outcome) -> list[list[str]]:
    """Summary rows of bench_start.py, read from its first GitHub table."""
    lines = [ln for ln in out.output.splitlines() if ln.startswith("|")]
    if len(lines) < 3:
        return [["start", "start-all (bench_start.py)", "-", "-", "-", "<= 1.15x", out.status]]
    headers = [c.strip() for c in lines[0].strip("|").split("|")]
    values = [c.strip() for c in lines[2].strip("|").split("|")]
    row = dict(zip(headers, values, strict=False))
    # Against the best bound over every layout (issue 21); older output: its layout's bound.
    ratio = row.get("vs best", row.get("ratio"))
    try:
        ok: bool | None = float(ratio) <= 1.15 if ratio else None
    except ValueError:
        ok = None
    what = f"start-all, {row.get('guests', '?')} guests on {row.get('hosts', '?')} hosts"
    return [
        [
            "start",
            what + f" (boot {row.get('boot s', '?')} s)",
            f"{row.get('wall s', '-')}",
            f"{row.get('best bound s', row.get('bound s', '-'))} (best bound)",
            f"{ratio}x" if ratio else "-",
            "<= 1.15x",
            verdict(ok) + ("" if out.rc == 0 else f" ({out.status})"),
        ],
        [
            "start",
            "start-all vs the seed's one-at-a-time way",
            f"{row.get('wall s', '-')}",
            f"{row.get('serial s (sample)', '-')} (serial)",
            f"{row.get('speed-up', '-')} faster",
            "",
            "info",
        ],
    ]


def confirm_rows(out: Outcome, fig: dict) -> list[list[str]]:
    """The xl backend's pre-start round (bench_confirm.py): 100 hosts vs 1 host."""
    if not fig:
        what = "xl pre-start round (bench_confirm.py)"
        return [["confirm", what, "-", "-", "-", "-", out.status]]
    if "overlap" not in fig:  # figures of the first version of the benchmark
        return [["confirm", "xl pre-start round (bench_confirm.py)", "-", "-", "-", "-", "?"]]
    mark = verdict(fig.get("ok")) + ("" if out.rc == 0 else f" ({out.status})")
    hosts = fig["hosts"]
    return [
        [
            "confirm",
            f"xl pre-start round (every host's `xl list`), {hosts} hosts, 16 readers vs bound",
            fmt_s(fig["many_s"]),
            f"{fmt_s(fig['bound_s'])} (1 reader / {min(fig['cores'], fig['readers'])} cores)",
            fmt_ratio(fig["overlap"]),
            f"<= {fig['target']:g}x",
            mark,
        ],
        [
            "confirm",
            f"xenfab CPU per host read in a {hosts}-host round (ms)",
            f"{fig['many_cpu_ms_per_host']:.2f}",
            "",
            "",
            f"<= {fig['target_cpu_ms']:g} ms",
            verdict(fig["many_cpu_ms_per_host"] <= fig["target_cpu_ms"]),
        ],
        [
            "confirm",
            f"the same, {hosts} hosts vs 1 host (first target: <= 20x)",
            fmt_s(fig["many_s"]),
            f"{fmt_s(fig['one_s'])} (1 host)",
            fmt_ratio(fig["ratio"]),
            "",
            "info",
        ],
    ]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the summary table; 1 if our own benchmarks broke."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    ap.add_argument(
        "--smoke", action="store_true", help="the smallest sizes: every benchmark runs (suite)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the lab directory")
    args = ap.parse_args(argv)
    args.quick = args.quick or args.smoke
    quick = ["--quick"] if args.quick else []
    timeout = 120 if args.quick else 1800
    hosts = 2 if args.smoke else 4 if args.quick else 100
    # --smoke: what each benchmark needs to reach its end once, on top of --quick.
    smoke = {
        "gather": ["--hosts", "2", "--repeat", "1", "--serial-sample", "1", "--latency", "20"],
        "memory": ["--hosts", "2"],
        "place": ["--instances", "2"],
        "confirm": ["--hosts", "4", "--rounds", "2"],
    }
    if not args.smoke:
        smoke = {}
    started = time.monotonic()
    load0 = load_average()
    work = tempfile.mkdtemp(prefix="xenfab-bench-run-")
    lab_dir = os.path.join(work, "lab")
    outcomes: dict[str, Outcome] = {}
    figures: dict[str, dict] = {}
    try:
        print(f"bringing up a {hosts}-host lab in {lab_dir} ...", flush=True)
        latency = 20 if args.smoke else 200  # smoke measures nothing: no need to wait like a dom0
        lab.up(lab_dir, hosts=hosts, guests=4 * hosts, latency_ms=latency, boot_s=2)
        for name, key in (("bench_gather.py", "gather"), ("bench_memory.py", "memory")):
            out_json = os.path.join(work, f"{key}.json")
            bench_args = [*quick, *smoke.get(key, []), "--lab", lab_dir, "--json", out_json]
            outcomes[key] = run_bench(name, bench_args, timeout)
            figures[key] = read_json(out_json)
    finally:
        try:
            lab.down(lab_dir)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)

    outcomes["plan"] = run_bench("bench_plan.py", quick, timeout)
    place_json = os.path.join(tempfile.gettempdir(), f"xenfab-bench-place-{os.getpid()}.json")
    place_args = [*quick, *smoke.get("place", []), "--json", place_json]
    outcomes["place"] = run_bench("bench_place.py", place_args, timeout)
    figures["place"] = read_json(place_json)
    if os.path.exists(place_json):
        os.unlink(place_json)
    start_args = list(quick)
    if args.quick:
        # Its own --quick takes about a minute; smaller sizes keep the whole run short.
        have = supported_options("bench_start.py")
        sizes = ("6", "1") if args.smoke else ("16", "2")
        for opt, value in (("--guests", sizes[0]), ("--boot", "1"), ("--serial-sample", sizes[1])):
            if opt in have:
                start_args += [opt, value]
    outcomes["start"] = run_bench("bench_start.py", start_args, timeout)
    # Its own xl lab (the shared one above is rgmanager, with 200 ms per command).
    confirm_json = os.path.join(tempfile.gettempdir(), f"xenfab-bench-confirm-{os.getpid()}.json")
    confirm_args = [*quick, *smoke.get("confirm", []), "--json", confirm_json]
    outcomes["confirm"] = run_bench("bench_confirm.py", confirm_args, timeout)
    figures["confirm"] = read_json(confirm_json)
    if os.path.exists(confirm_json):
        os.unlink(confirm_json)

    rows = [
        *gather_rows(outcomes["gather"], figures["gather"]),
        *memory_rows(outcomes["memory"], figures["memory"]),
        *plan_rows(outcomes["plan"]),
        *place_rows(outcomes["place"], figures["place"]),
        *start_rows(outcomes["start"]),
        *confirm_rows(outcomes["confirm"], figures["confirm"]),
    ]
    headers = ["bench", "figure", "measured", "bound / baseline", "ratio", "target", "verdict"]
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    print(
        f"\n##### Summary ({size} run, {now}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {load0:.1f} at start, "
        f"{time.monotonic() - started:.0f} s in all)\n"
    )
    print(table(rows, headers))
    runs = ", ".join(f"{o.name} {o.status} in {o.seconds:.0f} s" for o in outcomes.values())
    print(f"\nbenchmarks: {runs}")
    ours_ok = all(outcomes[k].rc == 0 for k in ("gather", "memory"))
    return 0 if ours_ok else 1


if __name__ == "__main__":
    sys.exit(main())
