"""max_guests_per_host: at most this many guests on a host, running and planned together."""

from __future__ import annotations

from typing import ClassVar

from .base import Demand, GuestView, Kind, ModelView, Refusal, Row, Rule, StateView, ref


class MaxGuestsRule(Rule):
    """Guests per host (the domains running there, dom0 aside, plus this plan's) <= the limit."""

    name: ClassVar[str] = "max guests"
    policy_field: ClassVar[str | None] = "max_guests_per_host"
    counts: ClassVar[bool] = True
    order: ClassVar[int] = 50

    def __init__(self, limit: int, running: list[int]) -> None:
        self.limit = limit
        self.running = running  # per host: guests running there now

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """The rule when ``max_guests_per_host`` is set, with each host's running guests."""
        limit = model.policy.max_guests_per_host
        if limit is None:
            return []
        return [cls(limit, [len(names) for names in model.running_names()])]

    def start(self) -> list[int]:
        """Guests per host before the plan: those running."""
        return list(self.running)

    def charge(self, counters: list[int], guest: GuestView, host: int, sign: int) -> None:
        """One guest more (or less) on the host."""
        counters[host] += sign

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when the host runs fewer guests than the limit."""
        return state.counter(self)[host] < self.limit

    def copies(self, state: StateView, guest: GuestView, host: int) -> int:
        """Guests the host still takes."""
        return max(self.limit - state.counter(self)[host], 0)

    def placed_text(self, state: StateView, guest: GuestView, host: int) -> str:
        """'guest 3 of at most 4 here'."""
        return f"guest {state.counter(self)[host] + 1} of at most {self.limit} here"

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """'max guests: 4 of 4 here (3 running, 1 planned)'."""
        count = state.counter(self)[host]
        if count < self.limit:
            return None
        running = self.running[host]
        text = (
            f"max guests: {count} of {self.limit} here "
            f"({running} running, {count - running} planned)"
        )
        return ref(
            self,
            text,
            guests=count,
            max_guests=self.limit,
            running=running,
            planned=count - running,
        )

    def host_key(self, state: StateView, host: int) -> int:
        """Guests on the host."""
        return state.counter(self)[host]

    def rows(
        self, base: StateView, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per host: guests placed <= the limit less the guests on it in ``base``."""
        per_host: dict[int, list[tuple[int, int]]] = {}
        for col, (_kind, host) in enumerate(columns):
            per_host.setdefault(host, []).append((col, 1))
        count = base.counter(self)
        return [Row(terms, max(self.limit - count[h], 0)) for h, terms in per_host.items()]

    def cannot_hold(self, demand: Demand, hosts: list[int]) -> bool:
        """More guests to place than the hosts' free slots in all."""
        return demand.guests > sum(max(self.limit - self.running[h], 0) for h in hosts)
