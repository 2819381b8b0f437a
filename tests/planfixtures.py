"""Small builders for synthetic snapshots in the planner's tests."""

from __future__ import annotations

from xenfab.snapshot import Guest, Host, Snapshot


def snap(hosts: list[Host], guests: list[Guest]) -> Snapshot:
    """A snapshot of ``hosts`` and ``guests`` (master xen01, quorate)."""
    return Snapshot("test", "2026-01-01T00:00:00Z", "xen01", True, hosts, guests)


def host(name: str, free: int, total: int | None = None, cpus: int = 8, **kw) -> Host:
    """A reachable host with ``free`` MiB free (total defaults to free)."""
    return Host(
        name, total_mib=total if total is not None else free, free_mib=free, cpus=cpus, **kw
    )


def guest(name: str, mem: int, state: str = "disabled", **kw) -> Guest:
    """A guest of ``mem`` MiB, down (disabled) unless told otherwise."""
    return Guest(name, memory_mib=mem, state=state, **kw)
