"""RAM: a guest's size (with ``overhead_mib``) must fit the host's room.

Two words, never mixed: a host's ``free`` RAM is measured (``xl info``), less what this plan has
already put there; its ``room`` is free less ``reserve_mib``. Every text that a reserve changed
names it: ``room 7952 = free 10000 - reserve 2048 >= 4000 needed``.
"""

from __future__ import annotations

import math
from typing import ClassVar

from .base import NO_LIMIT, Demand, GuestView, Kind, ModelView, Refusal, Row, Rule, StateView, ref


class RamRule(Rule):
    """Room: measured free RAM, less the reserve, less what the plan already put there."""

    name: ClassVar[str] = "RAM"
    policy_field: ClassVar[str | None] = "reserve_mib"
    counts: ClassVar[bool] = True
    order: ClassVar[int] = 0  # first: the strategies index hosts by its counters (room)

    def __init__(self, free_mib: list[int], reserve_mib: int) -> None:
        self.free_mib = free_mib  # per host: measured free RAM
        self.reserve_mib = reserve_mib
        self.room_mib = [free - reserve_mib for free in free_mib]  # per host, before the plan

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """The one RAM rule, with every host's measured free RAM."""
        hosts = model.snapshot.hosts
        return [cls([h.free_mib for h in hosts], model.policy.reserve_mib)]

    def start(self) -> list[int]:
        """Room per host before the plan (may be negative: free below the reserve)."""
        return list(self.room_mib)

    def charge(self, counters: list[int], guest: GuestView, host: int, sign: int) -> None:
        """The guest's size leaves (or returns to) the host's room."""
        counters[host] -= sign * guest.mem

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when the host's room holds the guest."""
        return state.counter(self)[host] >= guest.mem

    def copies(self, state: StateView, guest: GuestView, host: int) -> int:
        """Guests of this size the room holds."""
        room = state.counter(self)[host]
        return max(room, 0) // guest.mem if guest.mem > 0 else NO_LIMIT

    def figures(self, room_mib: int) -> str:
        """``room`` as text, naming the reserve when there is one: 'room 7952 = free 10000 -
        reserve 2048', or '4096 free' when nothing is reserved."""
        if not self.reserve_mib:
            return f"{room_mib} free"
        return f"room {room_mib} = free {room_mib + self.reserve_mib} - reserve {self.reserve_mib}"

    def placed_text(self, state: StateView, guest: GuestView, host: int) -> str:
        """'4096 free >= 2048 needed', or 'room 2048 = free 4096 - reserve 2048 >= 2048 needed'."""
        return f"{self.figures(state.counter(self)[host])} >= {guest.mem} needed"

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """'RAM: 900 free < 2048 needed', or with a reserve
        'RAM: room 900 = free 2948 - reserve 2048 < 2048 needed' (never a negative figure)."""
        room = state.counter(self)[host]
        if room >= guest.mem:
            return None
        free = max(room + self.reserve_mib, 0)
        if room < 0:
            # The reserve alone refuses: say so rather than show a negative room.
            below = f"free {free} is below reserve {self.reserve_mib}"
            text = f"RAM: room 0 < {guest.mem} needed ({below})"
        else:
            text = f"RAM: {self.figures(room)} < {guest.mem} needed"
        return ref(
            self,
            text,
            free_mib=free,
            reserve_mib=self.reserve_mib,
            room_mib=max(room, 0),
            needed_mib=guest.mem,
        )

    def largest(self, state: StateView, hosts: list[int], now: bool = False) -> str:
        """The roomiest of ``hosts`` for a summary: 'largest free 8192 MiB' or, with a reserve,
        'largest room 6144 MiB = free 8192 - reserve 2048'."""
        room = max(state.counter(self)[h] for h in hosts)
        when = " now" if now else ""
        if not self.reserve_mib:
            return f"largest free{when} {max(room, 0)} MiB"
        free = room + self.reserve_mib
        if room < 0:
            below = f"free {max(free, 0)} below reserve {self.reserve_mib}"
            return f"largest room{when} 0 MiB ({below})"
        return f"largest room{when} {room} MiB = free {free} - reserve {self.reserve_mib}"

    def left_text(self, state: StateView, host: int) -> str:
        """What a host has left after the plan: '512 MiB left free on xen02' (and its room)."""
        room = state.counter(self)[host]
        name = state.model.host_name(host)
        if not self.reserve_mib:
            return f"{room} MiB left free on {name}"
        free = room + self.reserve_mib
        return f"{free} MiB left free on {name}, room {room} after reserve {self.reserve_mib}"

    def host_key(self, state: StateView, host: int) -> int:
        """The host's room."""
        return state.counter(self)[host]

    def kind_key(self, guest: GuestView, relaxed: bool) -> int:
        """The guest's size."""
        return guest.mem

    def rows(
        self, base: StateView, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per host: the guests' RAM <= the host's room (in units of the sizes' common divisor)."""
        unit = 0
        for kind in kinds:
            unit = math.gcd(unit, kind.example.mem)
        unit = unit or 1
        # Small coefficients keep the solver's arithmetic exact and its cuts strong.
        per_host: dict[int, list[tuple[int, int]]] = {}
        for col, (kind, host) in enumerate(columns):
            per_host.setdefault(host, []).append((col, kinds[kind].example.mem // unit))
        room = base.counter(self)
        return [Row(terms, max(room[host], 0) // unit) for host, terms in per_host.items()]

    def cannot_hold(self, demand: Demand, hosts: list[int]) -> bool:
        """Not enough room in all, or no host with room for the largest guest."""
        rooms = [max(self.room_mib[h], 0) for h in hosts]
        return demand.ram_mib > sum(rooms) or demand.largest_mib > max(rooms, default=0)
