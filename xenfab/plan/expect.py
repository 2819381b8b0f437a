"""``--expect SNAPSHOT.json``: bring back the guests a saved snapshot shows running.

The expectation rides on the run's Policy (``Policy.expect``), not in the snapshot's states, so
every plan of the run (the start engine's replans too) reads it against fresh facts. What it
changes in the planner, and only there (``model._select_guests``):

- a guest that ran then, in a state the backend calls unclaimed (xl: ``not-ours``), is ours;
- a guest down now that did not run then is skipped: not brought back;
- where it ran then is its preferred host, as a last owner is (soft: a host passing every rule);
- a guest that ran then and has no entry now (no config) stays down, said so.

Pure: imports nothing of Fabric or SSH.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..snapshot import DEFAULT_BACKEND, Guest, Snapshot, SnapshotError

if TYPE_CHECKING:
    from ..cluster.base import StateVocabulary
    from .policy import Policy


@dataclass(frozen=True)
class Ran:
    """A guest the saved snapshot shows occupying a host: where, and its size then."""

    host: str | None
    memory_mib: int = 0
    vcpus: int = 0


@dataclass(frozen=True)
class Expectation:
    """The guests that ran when a snapshot was taken, and which snapshot that was."""

    source: str
    taken_at: str
    environment: str
    backend: str
    ran: Mapping[str, Ran] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The snapshot as messages name it: its file and when it was taken."""
        return f"{self.source} (taken {self.taken_at})"

    def kind_of(self, g: Guest, kind: str, states: StateVocabulary) -> str:
        """``g``'s kind for planning: ``down`` when it ran then and is merely unclaimed now."""
        if g.name in self.ran and g.state in states.unclaimed:
            return "down"
        return kind

    def host_of(self, guest: str) -> str | None:
        """The host ``guest`` ran on then, or None (did not run, or its host is unknown)."""
        ran = self.ran.get(guest)
        return ran.host if ran is not None else None

    def not_brought_back(self, g: Guest) -> str | None:
        """Why a down (or unclaimed) guest is not started: it did not run then; else None."""
        if g.name in self.ran:
            return None
        return f"down, but not running in {self.label}: not brought back"

    def missing(self, present: Collection[str], running: Collection[str]) -> list[tuple[str, Ran]]:
        """Guests that ran then, have no entry now (``present``) and run nowhere (``running``)."""
        return [
            (name, ran)
            for name, ran in sorted(self.ran.items())
            if name not in present and name not in running
        ]

    def no_config_reason(self, ran: Ran) -> str:
        """The STILL DOWN reason of a guest that ran then and has no config now."""
        where = ran.host or "an unknown host"
        return f"ran on {where} in {self.label}, no config now"


def ran_then(saved: Snapshot) -> dict[str, Ran]:
    """Every guest ``saved`` shows occupying a host (its backend's words), with that host."""
    occupying = saved.states.occupying
    out: dict[str, Ran] = {}
    for g in saved.guests:
        held = g.state in occupying
        if not held and not g.running_on:
            continue
        host = g.owner if held and g.owner else (g.running_on[0] if g.running_on else None)
        out.setdefault(g.name, Ran(host, max(g.memory_mib, 0), max(g.vcpus, 0)))
    return out


def expectation(saved: Snapshot, now: Snapshot, source: str) -> Expectation:
    """The expectation of ``saved`` for a run on ``now``; SnapshotError if they do not match."""
    then_backend = saved.backend or DEFAULT_BACKEND
    now_backend = now.backend or DEFAULT_BACKEND
    if saved.environment != now.environment:
        raise SnapshotError(
            f"--expect {source}: a snapshot of environment {saved.environment!r}, "
            f"not of {now.environment!r}"
        )
    if then_backend != now_backend:
        raise SnapshotError(
            f"--expect {source}: a snapshot of backend {then_backend}, "
            f"not of {now_backend} (environment {now.environment})"
        )
    return Expectation(source, saved.taken_at, saved.environment, then_backend, ran_then(saved))


def with_expectation(policy: Policy, source: str, now: Snapshot) -> Policy:
    """``policy`` carrying the expectation of the snapshot saved at ``source`` (loaded, checked)."""
    saved = Snapshot.load(source)
    return dataclasses.replace(policy, expect=expectation(saved, now, source))
