"""Moving a guest that failed twice on its host: a fresh gather and a plan of that guest alone.

The re-plan runs on its own thread (a gather takes seconds) and posts a Replanned to the run's
result queue; the loop applies it between two steps.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cluster import backend as get_backend
from ..errors import XenfabError
from ..snapshot import Domain, Snapshot
from .schedule import Job

if TYPE_CHECKING:
    from ..cluster import ClusterBackend
    from ..config import Environment
    from ..plan import Layout, Policy

# (guest, host, memory MiB, vCPUs) of a guest of the run still to start: its room is held.
Pending = tuple[str, str, int, int]


@dataclass
class Replanned:
    """The re-plan's answer for ``job``: its new host, or None and why."""

    job: Job
    host: str | None
    why: str
    snapshot: Snapshot | None


class Replanner:
    """Re-plans one guest at a time against fresh facts, posting answers to ``results``."""

    def __init__(
        self,
        env: Environment,
        base_config: object | None,
        layout: Layout,
        policy: Policy,
        backend: ClusterBackend,
        results: queue.Queue[Any],
        only_hosts: Collection[str] | None = None,
    ) -> None:
        """Gather ``env`` with ``base_config``; plan with ``policy`` beside ``layout``."""
        self.env = env
        self.base_config = base_config
        self.layout = layout
        self.policy = policy
        self.backend = backend
        self.results = results
        self.only_hosts = only_hosts

    def later(self, job: Job, others: list[Job]) -> None:
        """Re-plan ``job`` on a thread; ``others`` (the run's guests not final) keep their room."""
        pending = [(j.guest, j.slot or j.host, j.memory_mib, j.vcpus) for j in others]
        avoid = {job.guest: set(job.failed_hosts)}
        thread = threading.Thread(
            target=self.work, args=(job, pending, avoid), daemon=True, name="replan"
        )
        thread.start()

    def work(self, job: Job, pending: list[Pending], avoid: dict[str, set[str]]) -> None:
        """Gather, plan ``job``'s guest alone, and post the answer (never raises)."""
        try:
            from ..gather import gather
            from ..plan import plan

            fresh = gather(self.env, self.base_config)
            trial = only_this_guest(fresh, job.guest, pending, self.backend.replan_state)
            without = list(getattr(self.layout, "without", []) or [])
            if self.only_hosts is not None:
                without += [h.name for h in fresh.hosts if h.name not in self.only_hosts]
            layout = plan(trial, self.policy, without=sorted(set(without)), avoid=avoid)
            a = layout.assignment(job.guest)
            if a is not None:
                self.results.put(Replanned(job, a.host, a.why, fresh))
                return
            why = next((u.reason for u in layout.unplaced if u.guest == job.guest), None)
            why = why or next((s.reason for s in layout.skipped if s.guest == job.guest), None)
            self.results.put(Replanned(job, None, why or "the planner found no other host", fresh))
        except XenfabError as exc:
            self.results.put(Replanned(job, None, f"re-plan failed: {exc}", None))
        except Exception as exc:  # noqa: BLE001 - a planner bug must not kill the run
            self.results.put(Replanned(job, None, f"re-plan failed: {exc!r}", None))


def only_this_guest(
    snap: Snapshot,
    guest: str,
    pending: list[Pending],
    replan_state: Callable[[str], str] | None = None,
) -> Snapshot:
    """A copy of ``snap`` where only ``guest`` is to place and the run's other guests hold room.

    ``replan_state`` (the backend's hook) names the down state ``guest`` is placed from: a
    failed start may leave it in a state the planner would not place.
    """
    trial = copy.deepcopy(snap)
    hosts = {h.name: h for h in trial.hosts}
    held = {name: (host, mem, vcpus) for name, host, mem, vcpus in pending}
    if replan_state is None:
        replan_state = get_backend(snap.backend).replan_state
    unclaimed = trial.states.unclaimed
    for g in trial.guests:
        if g.name == guest:
            g.state = replan_state(g.state)
            continue
        if not trial.is_down(g) and g.state not in unclaimed:
            continue
        # Not ours to place now: either another guest of this run (its room is held below) or
        # a guest outside this run (--host), which must not compete for the room. An unclaimed
        # guest too: --expect would claim it in the trial and let it take this guest's room.
        g.state = "pending"
    for name, (host_name, mem, vcpus) in held.items():
        h = hosts.get(host_name)
        if h is None or any(d.name == name for d in h.domains):
            continue
        h.domains.append(Domain(name, mem, vcpus, "pending"))
        h.free_mib -= mem
    return trial
