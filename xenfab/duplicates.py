"""Guests running on two or more hosts at once, found in the hosts' domain lists (pure, no I/O).

A guest started by hand (``xl create``) where the cluster already runs it is two domains writing
one disk: nothing downstream may guess which copy is right, so every task that reads domain
lists says it, and the planner and the start engine leave that guest alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# dom0 is on every host: it is never a duplicate.
DOM0 = "Domain-0"


@dataclass
class Duplicate:
    """One guest name that two or more hosts list as a running domain."""

    __pydantic_config__ = {"extra": "forbid"}

    guest: str
    hosts: list[str]


def find_duplicates(lists: Mapping[str, Iterable[str]]) -> list[Duplicate]:
    """Every domain name (Domain-0 aside) listed by two or more hosts, sorted by guest.

    ``lists`` maps a host to the domain names it lists; the names are compared as the hosts
    list them (a computed or renamed guest is its listed name).
    """
    where: dict[str, set[str]] = {}
    for host, names in lists.items():
        for name in names:
            if name != DOM0:
                where.setdefault(name, set()).add(host)
    return [
        Duplicate(guest, sorted(hosts)) for guest, hosts in sorted(where.items()) if len(hosts) > 1
    ]


def merge(*found: Iterable[Duplicate]) -> list[Duplicate]:
    """Several sightings (the gathering, the start run's last round) as one list, by guest.

    A guest seen twice keeps every host it was seen on: a host that did not answer a later
    read does not make a copy go away.
    """
    hosts: dict[str, set[str]] = {}
    for group in found:
        for d in group:
            hosts.setdefault(d.guest, set()).update(d.hosts)
    return [Duplicate(g, sorted(h)) for g, h in sorted(hosts.items())]


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe(dup: Duplicate) -> str:
    """``db01 runs on xen04 and xen06``."""
    return f"{dup.guest} runs on {_and(dup.hosts)}"


def advice(dup: Duplicate, tools: Mapping[str, str | None] | None = None) -> str:
    """What the admin does about it: xenfab never picks the copy to stop.

    ``tools``: each host's toolstack (``xl``/``xm``), so the command is the one that host takes.
    """
    used = sorted({(tools or {}).get(h) or "xl" for h in dup.hosts})
    destroy = " or ".join(f"`{tool} destroy {dup.guest}`" for tool in used)
    return (
        f"stop one copy by hand after checking which one writes: {destroy} on the host that "
        "should not run it; xenfab starts and moves nothing of it meanwhile"
    )


def line(dup: Duplicate, tools: Mapping[str, str | None] | None = None) -> str:
    """The one line every task prints for a duplicate: what, then what to do."""
    return f"DUPLICATE: {describe(dup)}: {advice(dup, tools)}"


def summary(dups: list[Duplicate]) -> str:
    """The gist for a last line: ``DUPLICATE: db01 runs on xen04 and xen06`` (and N more)."""
    head = f"DUPLICATE: {describe(dups[0])}"
    if len(dups) > 1:
        head += f"; {len(dups) - 1} more guest(s) run on two hosts or more"
    return head
