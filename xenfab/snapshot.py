"""The snapshot: the facts gathered from a cluster, as plain data that round-trips through JSON.

Everything downstream of gathering (planning, showing, what-if) reads a Snapshot and nothing else,
so a snapshot saved with ``fab facts --format json`` replays offline with ``--from``.
Memory is MiB everywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .errors import XenfabError

if TYPE_CHECKING:
    from .cluster import StateVocabulary

SNAPSHOT_VERSION = 1
# Snapshots written before the backend was recorded came from rgmanager.
DEFAULT_BACKEND = "rgmanager"


def states_of(backend: str | None) -> StateVocabulary:
    """The service-state vocabulary of the cluster manager called ``backend``."""
    from .cluster import backend as get_backend  # local: cluster imports the parsers

    return get_backend(backend or DEFAULT_BACKEND).states


class SnapshotError(XenfabError):
    """A snapshot file is not valid JSON or misses a required key."""


@dataclass
class Domain:
    """A domain running on a host, as ``xl list`` / ``xm list`` shows it."""

    name: str
    mem_mib: int
    vcpus: int
    state: str = ""


@dataclass
class Host:
    """A physical Xen host (dom0) and what it has free."""

    name: str
    reachable: bool = True
    total_mib: int = 0
    free_mib: int = 0
    cpus: int = 0
    toolstack: str | None = None
    xen_version: str | None = None
    location: str | None = None
    domain: str | None = None
    domains: list[Domain] = field(default_factory=list)
    error: str | None = None
    rtt_ms: float | None = None
    # The cluster manager's word on this host: "online", "offline", or None (not a member, or
    # the cluster state could not be read). Only "offline" proves an unreachable host dead.
    member: str | None = None

    @property
    def vcpus_used(self) -> int:
        """vCPUs of every domain on this host except dom0."""
        return sum(d.vcpus for d in self.domains if d.name != "Domain-0")


@dataclass
class Guest:
    """A guest (a service of the cluster manager and/or a config file) and its state."""

    name: str
    memory_mib: int = 0
    vcpus: int = 1
    state: str = "unknown"
    owner: str | None = None
    last_owner: str | None = None
    maxmem_mib: int | None = None
    config_file: str | None = None
    running_on: list[str] = field(default_factory=list)
    plannable: bool = True
    reason: str | None = None

    @property
    def startable(self) -> bool:
        """True when the default backend (rgmanager) calls this state down.

        A guest does not know its snapshot's backend: code holding the snapshot asks
        ``snapshot.is_down(guest)`` instead.
        """
        return states_of(DEFAULT_BACKEND).kind(self.state) == "down"


@dataclass
class Snapshot:
    """All facts of one environment at one moment."""

    environment: str
    taken_at: str
    master: str | None
    quorate: bool | None
    hosts: list[Host] = field(default_factory=list)
    guests: list[Guest] = field(default_factory=list)
    backend: str = DEFAULT_BACKEND
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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
        data = {"xenfab_snapshot": SNAPSHOT_VERSION}
        data.update(asdict(self))
        return data

    def to_json(self) -> str:
        """The snapshot as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "snapshot") -> Snapshot:
        """Build a snapshot from its JSON object; unknown keys are ignored (newer writers)."""
        if not isinstance(data, dict) or data.get("xenfab_snapshot") != SNAPSHOT_VERSION:
            raise SnapshotError(f"{source}: not a xenfab snapshot (key xenfab_snapshot != 1)")
        try:
            hosts = [_build(Host, h, source) for h in data.get("hosts", [])]
            for h, raw in zip(hosts, data.get("hosts", []), strict=True):
                h.domains = [_build(Domain, d, source) for d in raw.get("domains", [])]
            guests = [_build(Guest, g, source) for g in data.get("guests", [])]
            return cls(
                environment=str(data.get("environment", "")),
                taken_at=str(data.get("taken_at", "")),
                master=data.get("master"),
                quorate=data.get("quorate"),
                hosts=hosts,
                guests=guests,
                backend=str(data.get("backend", DEFAULT_BACKEND)),
                errors=list(data.get("errors", [])),
                warnings=list(data.get("warnings", [])),
            )
        except (TypeError, AttributeError, KeyError) as exc:
            raise SnapshotError(f"{source}: malformed snapshot: {exc}") from None

    @classmethod
    def load(cls, path: str) -> Snapshot:
        """Read a snapshot saved as JSON."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise SnapshotError(f"{path}: cannot read snapshot: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        return cls.from_dict(data, source=path)


def _build(kind: type, raw: Any, source: str) -> Any:
    if not isinstance(raw, dict) or "name" not in raw:
        raise SnapshotError(f"{source}: every host, guest and domain needs a name")
    known = {f.name for f in fields(kind)} - {"domains"}
    return kind(**{k: v for k, v in raw.items() if k in known})
