"""What the benchmarks share: a lab of their own, CPU and memory accounting, `fab` runs, tables.

The figures are wall-clock times on whatever machine runs them, so every measurement here also
records who used the CPU meanwhile: xenfab itself, the lab (its sshd process trees: sshd, the
login shell, the emulated Xen tools), and everything else on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import yaml  # noqa: E402

from xenfab import lab  # noqa: E402
from xenfab.lab import scenario  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- CPU accounting


def lab_cpu(lab_dir: str) -> float:
    """CPU seconds used so far by the lab's sshd listeners (and what they reaped) and its server."""
    try:
        with open(os.path.join(lab_dir, "lab.json"), encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return 0.0
    # The emulator server answers the hosts' tool wrappers: its threads are the lab's CPU too.
    pids = [g.get("pid", 0) for g in info.get("groups", [])]
    pids.append((info.get("server") or {}).get("pid", 0))
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # utime stime cutime cstime: a connection's sshd, shell and tools are reaped children
        total += sum(int(x) for x in fields[11:15])
    return total / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / TICK, sum(values) / TICK


@dataclass
class CpuSplit:
    """Who used the CPU during one measurement (seconds of CPU, all cores)."""

    wall: float = 0.0
    ours: float = 0.0
    lab: float = 0.0
    busy: float = 0.0
    capacity: float = 0.0

    @property
    def others(self) -> float:
        """CPU used by every other process of the machine (other benchmarks, tests...)."""
        return max(0.0, self.busy - self.ours - self.lab)


class CpuMeter:
    """Measure wall time and the CPU split of a block: ``with CpuMeter(lab_dir) as m: ...``."""

    def __init__(self, lab_dir: str | None, children: bool = False) -> None:
        """``children``: count this process's reaped children (a `fab` run) as ours."""
        self.lab_dir = lab_dir
        self.children = children
        self.split = CpuSplit()

    def _ours(self) -> float:
        t = os.times()
        return t.user + t.system + ((t.children_user + t.children_system) if self.children else 0)

    def __enter__(self) -> CpuSplit:
        self._t = time.monotonic()
        self._ours0 = self._ours()
        self._lab0 = lab_cpu(self.lab_dir) if self.lab_dir else 0.0
        self._busy0, self._total0 = machine_cpu()
        return self.split

    def __exit__(self, *exc: object) -> None:
        s = self.split
        s.wall = time.monotonic() - self._t
        s.ours = self._ours() - self._ours0
        s.lab = (lab_cpu(self.lab_dir) - self._lab0) if self.lab_dir else 0.0
        busy, total = machine_cpu()
        s.busy, s.capacity = busy - self._busy0, total - self._total0


def load_average() -> float:
    """The 1-minute load average (how busy the machine was before a measurement)."""
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- the lab


def host_names(count: int) -> list[str]:
    """The lab's host names for a lab of ``count`` hosts (xen01.., or xen001.. at 100)."""
    return [scenario.host_name(i, count) for i in range(count)]


@dataclass
class Lab:
    """A running lab as a benchmark uses it: directory, host names, config file, environments."""

    dir: str
    hosts: list[str]
    config: str
    envs: dict[str, list[str]] = field(default_factory=dict)

    def env_for(self, count: int) -> str:
        """Name of the environment made of the first ``count`` hosts (the master first)."""
        return f"h{count}"


def write_config(lab_dir: str, hosts: list[str], sizes: list[int]) -> tuple[str, dict]:
    """A xenfab config for the lab: one environment per size, h1 = the master alone."""
    ssh = {
        "config": os.path.join(lab_dir, "ssh_config"),
        "known_hosts": os.path.join(lab_dir, "known_hosts"),
        "host_key_check": "strict",
        "connect_timeout": 10,
        "command_timeout": 120,
    }
    envs: dict[str, list[str]] = {}
    raw_envs = {}
    for size in sorted(set(sizes) | {1, len(hosts)}):
        if size > len(hosts):
            continue
        envs[f"h{size}"] = hosts[:size]
        raw_envs[f"h{size}"] = {
            "description": f"the lab's first {size} host(s)",
            "hosts": hosts[:size],
            "master": hosts[0],
            "guest_config_dir": os.path.join(lab_dir, "xenconfig"),
            "backend": "rgmanager",
            "ssh": dict(ssh),
        }
    data = {
        "default_env": f"h{len(hosts)}",
        "audit_log": os.path.join(lab_dir, "audit.jsonl"),
        "lock_path": os.path.join(lab_dir, "xenfab.lock"),
        "environments": raw_envs,
        "policy": {"strategy": "round-robin"},
    }
    path = os.path.join(lab_dir, "bench_config.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return path, envs


@contextlib.contextmanager
def bench_lab(
    hosts: int,
    guests: int,
    latency_ms: int,
    sizes: list[int],
    lab_dir: str | None = None,
    keep: bool = False,
) -> Iterator[Lab]:
    """A lab for a benchmark: ``lab_dir``'s running lab, or a new one torn down afterwards."""
    own = lab_dir is None
    path = lab_dir or tempfile.mkdtemp(prefix="xenfab-bench-")
    saved = os.environ.get("XENFAB_LAB_DIR")
    os.environ["XENFAB_LAB_DIR"] = path
    try:
        if own:
            lab.up(path, hosts=hosts, guests=guests, latency_ms=latency_ms, boot_s=2)
        status = lab.status(path)
        names = [h["name"] for h in status["hosts"]]
        config, envs = write_config(path, names, sizes)
        yield Lab(path, names, config, envs)
    finally:
        try:
            if own:
                lab.down(path)
        finally:
            if saved is None:
                os.environ.pop("XENFAB_LAB_DIR", None)
            else:
                os.environ["XENFAB_LAB_DIR"] = saved
            if own and not keep:
                shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- running fab


@dataclass
class ProcRun:
    """One finished subprocess: exit code, output, wall time, CPU and peak RSS."""

    rc: int
    stdout: str
    stderr: str
    wall: float
    cpu: float
    maxrss_kib: int


def run_process(
    argv: list[str],
    env: dict | None = None,
    timeout: float = 600,
    cwd: str = REPO,
    clean_env: bool = False,
) -> ProcRun:
    """Run ``argv`` to completion; its own rusage (wait4), not the sum over all children.

    ``clean_env``: ``env`` is the whole environment, not additions to this process's.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env or {}) if clean_env else {**os.environ, **(env or {})},
        )
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcRun(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss,
        )


def fab(args: list[str], lab: Lab, timeout: float = 600) -> ProcRun:
    """Run ``fab ARGS --config <the lab's config>`` from the repository (where fabfile.py is)."""
    return run_process(
        [sys.executable, "-m", "fabric", *args, "--config", lab.config],
        env={"XENFAB_LAB_DIR": lab.dir},
        timeout=timeout,
    )


# --------------------------------------------------------------------------- figures


def median(values: list[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def fmt_s(seconds: float | None, digits: int = 2) -> str:
    """Seconds for a table cell."""
    return "-" if seconds is None else f"{seconds:.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio for a table cell (``3.1x``)."""
    return "-" if value is None else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def table(rows: list[list], headers: list[str]) -> str:
    """A GitHub-markdown table (what bench/README.md pastes)."""
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def verdict(ok: bool | None) -> str:
    """A target's outcome for a table cell."""
    return "n/a" if ok is None else "met" if ok else "NOT met"
