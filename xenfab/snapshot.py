"""The snapshot: the facts gathered from a cluster, as plain data that round-trips through JSON.

Everything downstream of gathering (planning, showing, what-if) reads a Snapshot and nothing else,
so a snapshot saved with ``fab facts --format json`` replays offline with ``--from``.
Memory is MiB everywhere.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from .duplicates import Duplicate, find_duplicates
from .errors import XenfabError
from .schema import (
    Bool,
    HostName,
    Str,
    read_text,
    unique_by,
    validate,
)
from .values import Domain, Guest, Host, LockSeen

if TYPE_CHECKING:
    from .cluster import StateVocabulary

# The records live in xenfab.values (the bottom layer, shared with the backends that build their
# own inventory); they stay importable from here, with the snapshot that holds them.
__all__ = [
    "DEFAULT_BACKEND",
    "SNAPSHOT_VERSION",
    "Domain",
    "Guest",
    "Host",
    "LockSeen",
    "Snapshot",
    "SnapshotError",
    "states_of",
]

SNAPSHOT_VERSION = 1
# Snapshots written before the backend was recorded came from rgmanager.
DEFAULT_BACKEND = "rgmanager"


def states_of(backend: str | None) -> StateVocabulary:
    """The service-state vocabulary of the cluster manager called ``backend``."""
    return _states_of(backend or DEFAULT_BACKEND)


@functools.cache
def _states_of(name: str) -> StateVocabulary:
    # Once per backend name: is_down() asks per guest, and building a backend validates its
    # options each time (7.5 us for xl). A vocabulary does not depend on backend_options.
    from .cluster import backend as get_backend  # local: cluster imports the parsers

    return get_backend(name).states


class SnapshotError(XenfabError):
    """A snapshot file is not valid JSON or misses a required key."""


@dataclass
class Snapshot:
    """All facts of one environment at one moment."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    environment: Str
    taken_at: Str
    master: HostName | None
    quorate: Bool | None
    hosts: Annotated[list[Host], unique_by("name")] = field(default_factory=list)
    guests: Annotated[list[Guest], unique_by("name")] = field(default_factory=list)
    backend: Str = DEFAULT_BACKEND
    errors: list[Str] = field(default_factory=list)
    warnings: list[Str] = field(default_factory=list)
    # The run lock when the snapshot was taken; None when not read (older snapshots, capacity).
    lock: LockSeen | None = None
    # Guests two or more hosts list as running (xenfab.duplicates): always derived from
    # ``hosts``, so a saved value is never trusted over the domain lists it came from.
    duplicates: list[Duplicate] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Derive ``duplicates`` from the hosts' domain lists."""
        self.refresh_duplicates()

    def refresh_duplicates(self) -> list[Duplicate]:
        """Recompute ``duplicates`` from the hosts' domain lists (after a change to them)."""
        self.duplicates = find_duplicates({h.name: [d.name for d in h.domains] for h in self.hosts})
        return self.duplicates

    @property
    def states(self) -> StateVocabulary:
        """The service-state vocabulary of the backend that gathered this snapshot."""
        return states_of(self.backend)

    def service_of(self, guest: Guest) -> str:
        """``guest``'s service name in the words of this snapshot's backend (rgmanager: vm:NAME)."""
        from .cluster import backend as get_backend

        return get_backend(self.backend or DEFAULT_BACKEND).service_name(guest.name)

    def is_down(self, guest: Guest) -> bool:
        """True when ``guest``'s service state is a down state of this snapshot's backend."""
        return self.states.kind(guest.state) == "down"

    def host(self, name: str) -> Host | None:
        """The host named ``name``, or None."""
        return next((h for h in self.hosts if h.name == name), None)

    def guest(self, name: str) -> Guest | None:
        """The guest named ``name``, or None."""
        return next((g for g in self.guests if g.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as the documented JSON object."""
        self.refresh_duplicates()
        data = {"xenfab_snapshot": SNAPSHOT_VERSION}
        data.update(asdict(self))
        return data

    def to_json(self) -> str:
        """The snapshot as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "snapshot") -> Snapshot:
        """Build a snapshot from its JSON object, validated strictly (one SnapshotError line)."""
        version = data.get("xenfab_snapshot") if isinstance(data, dict) else None
        # `true == 1` in Python: the version must be the integer itself.
        if type(version) is not int or version != SNAPSHOT_VERSION:
            raise SnapshotError(f"{source}: not a xenfab snapshot (key xenfab_snapshot != 1)")
        body = {k: v for k, v in data.items() if k != "xenfab_snapshot"}
        # Without hosts or guests a snapshot says "nothing ran, nothing is down": a truncated or
        # hand-edited file must not read as an empty cluster.
        for key in ("hosts", "guests"):
            if key not in body:
                raise SnapshotError(f"{source}: {key}: missing (required)")
        snap = validate(cls, body, source, error=SnapshotError)
        names = {h.name for h in snap.hosts}
        for i, g in enumerate(snap.guests):
            unknown = [h for h in g.running_on if h not in names]
            if unknown:
                raise SnapshotError(
                    f"{source}: guests[{i}].running_on: {', '.join(unknown)} is not one of the "
                    "snapshot's hosts"
                )
        return snap

    @classmethod
    def load(cls, path: str) -> Snapshot:
        """Read a snapshot saved as JSON."""
        text = read_text(path, "snapshot", error=SnapshotError)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise SnapshotError(f"{path}: not a snapshot: nested too deeply") from None
        return cls.from_dict(data, source=path)
