"""The checks right before and after a start, without I/O: may it go, and did it come up.

``precheck`` decides on the state just re-read and the fresh domain lists; ``confirm`` reads
what the cluster says of a start in flight. Both are the backend's words turned into one
``Decision`` or ``Confirmation`` (outcome.Action, outcome.Verdict), tested without SSH.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from ..cluster import ClusterBackend, ClusterState, ServiceState
from ..cluster import backend as get_backend
from ..snapshot import DEFAULT_BACKEND
from .outcome import Action, Verdict
from .schedule import Job


def _default_backend() -> ClusterBackend:
    """The backend of callers that name none (snapshots before backends were recorded)."""
    return get_backend(DEFAULT_BACKEND)


@dataclass
class Decision:
    """What to do with a guest just before starting it."""

    action: Action
    host: str | None = None
    message: str = ""  # for "start": the state it is started from


def precheck(
    guest: str,
    state: ClusterState,
    domains: dict[str, Iterable[str]],
    retry: bool = False,
    backend: ClusterBackend | None = None,
    dead: Collection[str] = (),
) -> Decision:
    """Start only a guest the backend calls down and no host runs a domain of.

    ``domains`` are the lists read after the decision to start, from every host not ``dead``.
    Every down state of the backend (rgmanager's ``stopped``, where a failed start of ours
    leaves a service, included) is startable on any try (``retry`` is kept for callers). A
    service in a state the backend may move from (``states.movable``) on a ``dead`` owner
    (declared dead for the run, or fenced after it left, in the cluster's record) is started,
    from that state:
    Decision.host is then the dead owner, for the backend's disable-then-enable.
    """
    backend = backend or _default_backend()
    states = backend.states
    svc: ServiceState | None = state.services.get(guest)
    if svc is None:
        service = backend.service_name(guest)
        return Decision(Action.SKIPPED, None, f"no {service} service in the cluster any more")
    on_dead_owner = svc.owner is not None and svc.owner in dead
    if svc.state in states.occupying and not on_dead_owner:
        where = svc.owner or "an unknown member"
        return Decision(
            Action.FOUND_RUNNING,
            svc.owner,
            f"found running on {where} ({backend.state_tool}: {svc.state}): left alone",
        )
    running = sorted(
        host for host, names in domains.items() if host not in dead and guest in set(names)
    )
    if running:
        return Decision(
            Action.FOUND_RUNNING,
            running[0],
            f"found running on {', '.join(running)} (xl list) while the cluster says "
            f"{svc.state}: left alone",
        )
    if on_dead_owner and svc.state in states.movable:
        return Decision(Action.START, svc.owner, svc.state)
    if svc.state not in states.down:
        return Decision(Action.SKIPPED, svc.owner, f"cluster state is {svc.state}: left alone")
    return Decision(Action.START, None, svc.state)


@dataclass
class Confirmation:
    """What the state read says about a guest whose start the backend accepted."""

    status: Verdict
    host: str | None = None
    message: str = ""


def confirm(
    job: Job,
    svc: ServiceState | None,
    now: float,
    timeout: float,
    grace: float,
    backend: ClusterBackend | None = None,
) -> Confirmation:
    """Read a guest's service state after the backend's start command was accepted."""
    backend = backend or _default_backend()
    reader, starter = backend.state_tool, backend.start_tool
    since = now - (job.returned_at if job.returned_at is not None else now)
    waited = now - (job.command_at if job.command_at is not None else now)
    verdict = backend.confirm(svc)
    if svc is None or verdict is Verdict.GONE:
        service = backend.service_name(job.guest)
        return Confirmation(
            Verdict.STUCK, None, f"{service} vanished from {reader} after its start"
        )
    if verdict is Verdict.STARTED:
        host = svc.owner or job.host
        msg = "" if host == job.host else f"asked for {job.host}; runs on {host}"
        return Confirmation(Verdict.STARTED, host, msg)
    if verdict is Verdict.FAILED:
        return Confirmation(
            Verdict.FAILED, svc.owner or job.host, f"{starter} said Success, then failed"
        )
    if verdict is Verdict.WAIT:
        if waited > timeout:
            return Confirmation(
                Verdict.STUCK,
                svc.owner or job.host,
                f"still {svc.state} after {waited:.0f} s: left alone, check {reader}",
            )
        return Confirmation(Verdict.WAIT)
    # Down right after Success may be the state read lagging behind; give it a moment.
    if since < grace:
        return Confirmation(Verdict.WAIT)
    return Confirmation(
        Verdict.FAILED, job.host, f"{starter} said Success, but the state is {svc.state}"
    )
