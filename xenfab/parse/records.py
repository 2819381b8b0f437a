"""Result records: frozen dataclasses that can also be read like read-only mappings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class RecordMixin:
    """Mapping-style read access (``r["x"]``, ``get``, ``keys``, ``as_dict``) for dataclasses."""

    __slots__ = ()

    def _field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._field_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    def get(self, key: str, default: Any = None) -> Any:
        """Return the field's value, or ``default`` when there is no such field."""
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        """Field names, in declaration order."""
        return list(self._field_names())

    def values(self) -> list[Any]:
        """Field values, in declaration order."""
        return [getattr(self, k) for k in self._field_names()]

    def items(self) -> list[tuple[str, Any]]:
        """(name, value) pairs, in declaration order."""
        return [(k, getattr(self, k)) for k in self._field_names()]

    def as_dict(self) -> dict[str, Any]:
        """A deep plain-dict copy (nested records become dicts too)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class HostInfo(RecordMixin):
    """Host memory (MiB), online pCPU count and Xen version from ``xl info``/``xm info``."""

    total_mib: int
    free_mib: int
    cpus: int
    xen_version: str | None = None
    toolstack: str | None = None


@dataclass(frozen=True)
class XentopDomain(RecordMixin):
    """One xentop row; ``state`` is the 6 flag chars (order d s b c p r).

    ``vcpus`` is None when the screen was cut before the VCPUS column.
    """

    name: str
    state: str
    mem_kib: int
    maxmem_kib: int | None
    vcpus: int | None


@dataclass(frozen=True)
class Xentop(RecordMixin):
    """The last xentop iteration; summary values only in interactive output."""

    domains: list[XentopDomain] = field(default_factory=list)
    total_kib: int | None = None
    free_kib: int | None = None
    cpus: int | None = None


@dataclass(frozen=True)
class ListedDomain(RecordMixin):
    """One ``xl list``/``xm list`` row; ``mem_mib`` in MiB, ``state`` as printed (r b p s ? d)."""

    name: str
    domid: int
    mem_mib: int
    vcpus: int
    state: str


@dataclass(frozen=True)
class GuestConfig(RecordMixin):
    """The sizing of one guest config file, with xl's defaults applied."""

    name: str
    memory_mib: int
    maxmem_mib: int
    vcpus: int


@dataclass(frozen=True)
class Member(RecordMixin):
    """One cluster member from clustat (quorum disks are never members)."""

    name: str
    online: bool
    local: bool
    node_id: int | None = None


@dataclass(frozen=True)
class Service(RecordMixin):
    """One rgmanager service: state word, current owner, last owner (None when unknown)."""

    state: str
    owner: str | None = None
    last_owner: str | None = None


@dataclass(frozen=True)
class Clustat(RecordMixin):
    """Quorum, members and services from ``clustat`` or ``clustat -x``."""

    quorate: bool | None
    members: list[Member] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)
    rgmanager_running: bool = True


@dataclass(frozen=True)
class ClusvcadmResult(RecordMixin):
    """The outcome of one ``clusvcadm`` call, from its output and exit status."""

    ok: bool
    member: str | None
    message: str
    exit_code: int
    running_on: str | None = None
    already_running: bool = False


@dataclass(frozen=True)
class CmanNode(RecordMixin):
    """One ``cman_tool nodes`` row (``-a`` addresses, RHEL 5 ``-f`` fence lines folded in).

    ``status``: ``M`` member, ``X`` not a member, ``d`` disallowed, ``?`` other. ``joined`` is
    None for a node that is not a member. ``last_fenced``/``last_fenced_by``: RHEL 5 ``-f``'s
    ``Last fenced:`` line (local time as printed, the fence device's name);
    ``unfenced_since_down``: its ``Node has not been fenced since it went down`` line.
    """

    node_id: int
    status: str
    incarnation: int
    name: str
    joined: str | None = None
    addresses: list[str] = field(default_factory=list)
    last_fenced: str | None = None
    last_fenced_by: str | None = None
    unfenced_since_down: bool = False

    @property
    def member(self) -> bool:
        """True when cman counts the node a member (status ``M``)."""
        return self.status == "M"


@dataclass(frozen=True)
class FenceNode(RecordMixin):
    """One ``fence_tool ls -n`` "all nodes" row: fenced's record of a node.

    ``member``: 1 in the fence domain, 0 not, -1 disallowed. ``victim``: on the victim list
    (fencing pending or failing). ``how``: the last fencing of it (``none``, ``agent``,
    ``member``, ``override``, ``external``, ``unknown``), by ``last_fence_master``.
    """

    node_id: int
    member: int
    victim: bool
    last_fence_master: int
    how: str


@dataclass(frozen=True)
class FenceDomain(RecordMixin):
    """``fence_tool ls`` (RHEL 6 fenced): the fence domain, and with ``-n`` every node's record."""

    member_count: int
    victim_count: int
    victim_now: int
    master_nodeid: int
    wait_state: str
    members: list[int] = field(default_factory=list)
    # None without ``-n`` (no "all nodes" section).
    nodes: list[FenceNode] | None = None


@dataclass(frozen=True)
class GroupdGroup(RecordMixin):
    """One ``group_tool ls`` (RHEL 5 groupd, = ``cman_tool services``) group and its members."""

    type: str
    level: int
    name: str
    id: str
    state: str
    members: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FenceVerdict(RecordMixin):
    """Whether a member that left the cluster is proven fenced since, and what says so."""

    fenced: bool
    why: str
