"""pin: the only hosts a guest may use (``policy.pin``; resolved per guest by the model)."""

from __future__ import annotations

from typing import ClassVar

from .base import GuestView, ModelView, Refusal, Rule, StateView, ref

NOT_PINNED = "not in pin list"


class PinRule(Rule):
    """A pinned guest goes only on the hosts of its pin entries (all of them, when several)."""

    name: ClassVar[str] = "pin"
    policy_field: ClassVar[str | None] = "pin"
    order: ClassVar[int] = 20

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """The pin rule, when some guest to place is pinned."""
        return [cls()] if any(g.pinned is not None for g in model.guests) else []

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when the guest is not pinned, or pinned to ``host``."""
        return guest.pinned is None or host in guest.pinned

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """'not in pin list', with the hosts it allows."""
        if self.fits(state, guest, host):
            return None
        assert guest.pinned is not None
        names = sorted(state.model.host_name(h) for h in guest.pinned)
        return ref(self, NOT_PINNED, allowed_hosts=names)

    def kind_key(self, guest: GuestView, relaxed: bool) -> frozenset[int] | None:
        """The hosts the guest is pinned to."""
        return guest.pinned
