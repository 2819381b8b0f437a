"""The dispatch's choice of round: a slot this turn's state read freed is filled in this turn."""

from __future__ import annotations

import time

from xenfab.cluster import ClusterState, ServiceState
from xenfab.start.checks import Decision
from xenfab.start.dispatch import DispatchUnit
from xenfab.start.outcome import Action
from xenfab.start.schedule import Job, Scheduler


class _Reader:
    def __init__(self, next_round_at: float = 0.0) -> None:
        self.round = None  # no slot was free when the turn began: no round was begun
        self.next_round_at = next_round_at

    def dead_now(self, state=None):
        return set()


class _Dispatch(DispatchUnit):
    """Just enough of an Engine for ``_dispatch``: every round and send is recorded."""

    def __init__(self, sched: Scheduler, next_round_at: float = 0.0) -> None:
        self.watch = object()
        self.reader = _Reader(next_round_at)
        self.step = False
        self.interrupts = 0
        self.views: list[float] = []
        self.sent: list[tuple[str, float | None]] = []
        self.sched = sched

    def _stopping(self) -> bool:
        return False

    def _fresh_view(self, sched, state):
        began = time.monotonic()
        self.views.append(began)
        return state, {"h1": set(), "h2": set()}, set(), began

    def _precheck(self, job, state, domains, dead):
        return Decision(Action.START, None, "disabled")

    def _send(self, sched, workers, job):
        sched.begin(job, time.monotonic())
        self.sent.append((job.guest, job.cleared_at))


def _turn_with_a_freed_slot(next_round_at: float = 0.0) -> _Dispatch:
    jobs = [Job("a", "h1", 1, 0), Job("b", "h1", 1, 1), Job("c", "h2", 1, 2)]
    sched = Scheduler(jobs, per_host=1, parallel=4, tier_timeout_s=60, now=0)
    # a is in flight on h1 and this turn's read found it booted: h1's slot is free again.
    sched.pick(time.monotonic(), limit=1)
    sched.begin(jobs[0], 0)
    sched.release(jobs[0])
    disp = _Dispatch(sched, next_round_at)
    state = ClusterState(True, services={j.guest: ServiceState(j.guest, "disabled") for j in jobs})
    disp._dispatch(sched, None, state)
    return disp


def test_a_slot_freed_by_this_turns_read_is_filled_after_a_round_begun_now():
    disp = _turn_with_a_freed_slot()
    # One round per start, each begun after the previous start left (issue 19), in this turn.
    assert [g for g, _ in disp.sent] == ["b", "c"]
    assert len(disp.views) == 2
    assert [cleared for _, cleared in disp.sent] == disp.views


def test_no_round_is_begun_while_a_failed_round_waits_out_its_retry_delay():
    disp = _turn_with_a_freed_slot(next_round_at=time.monotonic() + 60)
    assert disp.sent == [] and disp.views == []
