"""The snapshot's records: a domain, a host, a guest, the run lock seen (shared value types).

The bottom layer: they import only the schema, so a cluster backend that builds its own
inventory (xe) and the snapshot that holds them share one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .schema import (
    Bool,
    HostName,
    MiB,
    Name,
    NonNegFloat,
    NonNegInt,
    PosInt,
    Str,
)


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


@dataclass
class LockSeen:
    """The run lock as gathering read it on its host: held (and by whom), free, or not read.

    Read, never taken: the start engine takes the lock itself (mkdir is the exclusion); this
    lets a run be refused before its prompt. Owner fields are those of the lock's owner file
    (xenfab.gather.lockfile.LockOwner); ``age_s`` is measured on the lock host's own clock.
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


def spoken(name: str, label: str | None) -> str:
    """``name`` as people say it: an identifier (xe's uuid) after its label, else the name.

    Labels need not be unique (two VMs may both be "web server"): the uuid's head says which.
    """
    return f"{label} ({name[:8]})" if label and label != name else name


def speaker(known: Mapping[str, str]) -> Callable[[str | None], str]:
    """``spoken`` over one map of labels (``labels``): a name as people say it, ``-`` for none."""

    def say(name: str | None) -> str:
        return spoken(name, known.get(name)) if name else "-"

    return say


def labels(*groups: Iterable[Host] | Iterable[Guest]) -> dict[str, str]:
    """Name -> label of every host or guest in ``groups`` that has a label of its own."""
    return {k.name: k.label for g in groups for k in g if k.label and k.label != k.name}
