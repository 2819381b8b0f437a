"""A state read confirms only the starts that returned before it began (no SSH).

With reads a few tens of ms long, a read begun right after a start left often answers after
that start returned: it may still show a failed service `failed` (the `clusvcadm -d; -e` has
not run yet), which said nothing about the start. Such a read must leave the job waiting.
"""

from __future__ import annotations

import io
from pathlib import Path

from xenfab.cluster import ClusterState, ServiceState
from xenfab.config import load_config
from xenfab.snapshot import Snapshot
from xenfab.start import StartOptions
from xenfab.start.engine import Engine
from xenfab.start.schedule import CONFIRMING, QUEUED, STARTING, Job, Scheduler


def engine_with_one_start() -> tuple[Engine, Scheduler, Job]:
    """An engine (no cluster) whose one job said Success at t=10.0 and awaits confirmation."""
    cfg = load_config(str(Path(__file__).resolve().parent.parent / "fabfile_config.yaml"))
    env = cfg.environment("lab")
    eng = Engine(
        cfg, env, Snapshot("lab", "t", "xen01", True), None, None, StartOptions(out=io.StringIO())
    )
    job = Job("db02", "xen03", 1, 0)
    sched = Scheduler([job], per_host=2, parallel=8, tier_timeout_s=600, now=0.0)
    eng.sched, eng.jobs = sched, [job]
    assert sched.pick(0.0) == [job]
    sched.begin(job, 9.0)
    assert job.phase == STARTING
    job.phase, job.returned_at = CONFIRMING, 10.0
    return eng, sched, job


FAILED = ClusterState(True, services={"db02": ServiceState("db02", "failed", None)})


def test_a_read_begun_before_the_start_returned_leaves_it_waiting():
    eng, sched, job = engine_with_one_start()
    eng.reader.read_at = 9.5  # began after the command left, before it returned
    eng._confirm(sched, [job], FAILED)
    assert job.phase == CONFIRMING and job.attempts == 1
    assert sched.busy["xen03"] == 1  # its slot stays taken while it may boot


def test_a_read_begun_after_it_returned_is_a_verdict():
    eng, sched, job = engine_with_one_start()
    eng.reader.read_at = 10.2
    eng._confirm(sched, [job], FAILED)
    # `failed` after Success, read after the return: a failure, retried on its host.
    assert job.phase == QUEUED and "said Success, then failed" in job.message
