"""The snapshot: the facts gathered from a cluster, as plain data that round-trips through JSON.

Everything downstream of gathering (planning, showing, what-if) reads a Snapshot and nothing else,
so a snapshot saved with ``fab facts --format json`` replays offline with ``--from``.
Memory is MiB everywhere.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from .duplicates import Duplicate, find_duplicates
from .errors import XenfabError
from .schema import (
    Bool,
    HostName,
    MiB,
    Name,
    NonNegFloat,
    NonNegInt,
    PosInt,
    Str,
    read_text,
    unique_by,
    validate,
)

if TYPE_CHECKING:
    from .cluster import StateVocabulary

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
class Domain:
    """A domain running on a host, as ``xl list`` / ``xm list`` shows it."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    name: Name
    mem_mib: MiB
    vcpus: NonNegInt
    state: Str = ""


@dataclass
class Host:
    """A physical Xen host (dom0) and what it has free."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    name: HostName
    reachable: Bool = True
    total_mib: MiB = 0
    free_mib: MiB = 0
    cpus: NonNegInt = 0
    toolstack: Str | None = None
    xen_version: Str | None = None
    location: Str | None = None
    domain: Str | None = None
    domains: list[Domain] = field(default_factory=list)
    error: Str | None = None
    # What kind of failure kept the host from answering (xenfab.remote.errors.KINDS:
    # "host-key-changed", "refused", "timeout", ...); None when it answered. Code reads this,
    # never the text of ``error``.
    error_kind: Str | None = None
    rtt_ms: NonNegFloat | None = None
    # The cluster manager's word on this host: "online", "offline", "fenced" (offline, and its
    # fencing record shows it fenced after it left), or None (not a member, or the cluster state
    # could not be read). Only "fenced" proves an unreachable host dead: offline alone is a
    # partition as well as a death.
    member: Literal["online", "offline", "fenced"] | None = None
    # What people call the host when ``name`` is an identifier (an XAPI host's name-label).
    label: Str | None = None
    # Why the cluster manager keeps guests off this host (maintenance), or None: excluded from
    # placement as ``policy.exclude`` is; what runs there still runs.
    disabled: Str | None = None
    # The guests its autostart directory linked (xl: backend_options.auto_dir), as this gather
    # read it; None when not read (no answer, or a backend with none). The history keeps it, so
    # that a host declared dead later is still known by what it would start at boot.
    autostart: list[Name] | None = None

    @property
    def vcpus_used(self) -> int:
        """vCPUs of every domain on this host except dom0."""
        return sum(d.vcpus for d in self.domains if d.name != "Domain-0")


@dataclass
class Guest:
    """A guest (a service of the cluster manager and/or a config file) and its state."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    name: Name
    memory_mib: MiB = 0
    vcpus: NonNegInt = 1
    state: Str = "unknown"
    owner: Name | None = None
    last_owner: Name | None = None
    maxmem_mib: MiB | None = None
    config_file: Str | None = None
    running_on: list[Name] = field(default_factory=list)
    plannable: Bool = True
    reason: Str | None = None
    # What people call the guest when ``name`` is an identifier (an XAPI VM's name-label, which
    # need not be unique): shown, never used to act.
    label: Str | None = None
    # What the backend's own start policy says, as data for the planner (XAPI: order,
    # start-delay, memory-overhead, the hosts its SRs are plugged on). ``tier``: used unless
    # policy.priority names the guest (None: policy.default_tier). ``gate_s``: seconds the next
    # tier waits after it started. ``overhead_mib``: RAM its manager adds to start it.
    # ``refused_hosts``: host -> why its manager would refuse to start it there.
    tier: PosInt | None = None
    gate_s: NonNegFloat = 0.0
    overhead_mib: MiB = 0
    refused_hosts: dict[Name, Str] = field(default_factory=dict)

    @property
    def startable(self) -> bool:
        """True when the default backend (rgmanager) calls this state down.

        A guest does not know its snapshot's backend: code holding the snapshot asks
        ``snapshot.is_down(guest)`` instead.
        """
        return states_of(DEFAULT_BACKEND).kind(self.state) == "down"


@dataclass
class LockSeen:
    """The run lock as gathering read it on its host: held (and by whom), free, or not read.

    Read, never taken: the start engine takes the lock itself (mkdir is the exclusion); this
    lets a run be refused before its prompt. Owner fields are those of the lock's owner file
    (xenfab.start.lock.LockOwner); ``age_s`` is measured on the lock host's own clock.
    """

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    host: HostName
    path: Str
    held: Bool = False
    user: Str | None = None
    pid: NonNegInt | None = None
    token: Str | None = None
    started: Str | None = None
    age_s: NonNegInt | None = None
    # Why the lock could not be read (its host unreachable, the cluster read elsewhere...).
    error: Str | None = None


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
