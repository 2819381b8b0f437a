"""avoid: hosts where a guest's start failed (a run option) or its manager refuses it."""

from __future__ import annotations

from typing import ClassVar

from .base import GuestView, ModelView, Refusal, Rule, StateView, ref

AVOIDED = "avoided after failed start"


class AvoidRule(Rule):
    """A host where a guest's start failed is not tried again for that guest in this run."""

    name: ClassVar[str] = "avoid"
    order: ClassVar[int] = 30

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """The avoid rule, when some guest to place has hosts to avoid."""
        return [cls()] if any(g.avoided for g in model.guests) else []

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when ``host`` is not avoided for the guest."""
        return host not in guest.avoided

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """'avoided after failed start' (not said where the pin list refuses already)."""
        if self.fits(state, guest, host) or (guest.pinned is not None and host not in guest.pinned):
            return None
        # The cluster manager's own refusal (XAPI: its SR not plugged here), said in its words.
        why = getattr(guest, "refused", {}).get(host)
        return ref(self, why) if why else ref(self, AVOIDED)

    def kind_key(self, guest: GuestView, relaxed: bool) -> frozenset[int]:
        """The hosts the guest avoids."""
        return guest.avoided
