"""Why a guest could not be placed: the rules that refused it on each host, and a summary.

Built from the rules' structured refusals (``rules.Refusal``): the per-host text and the JSON
figures come from the same objects that decided, and the summary counts refusals by rule object
(in the rules' order), never by their display text.
"""

from __future__ import annotations

from .model import Model, PGuest, State
from .rules import Refusal, Rule

PREFIX = "Need SA intervention: "


class Explainer:
    """Explains refusals against one final state."""

    def __init__(self, model: Model, state: State, proven: bool | None) -> None:
        self.model, self.state, self.proven = model, state, proven
        self.best_tier: dict[int, int] = {}  # host -> most important tier placed there
        for guest in model.guests:
            host = state.where[guest.idx]
            if host is not None:
                self.best_tier[host] = min(self.best_tier.get(host, guest.tier), guest.tier)
        self.empty = State(model)
        self.empty.relaxed = state.relaxed

    def refusals(self, guest: PGuest, host: int) -> list[Refusal]:
        """Every rule ``guest`` fails on ``host`` (empty when it fits)."""
        status = self.model.status[host]
        if status is not None:
            return [Refusal("host", status)]
        return self.state.refusals(guest, host)

    def why_not(self, guest: PGuest, host: int) -> str:
        """Every limit ``guest`` fails on ``host`` ('' when it fits), as text."""
        return "; ".join(r.text for r in self.refusals(guest, host))

    def unplaced(self, guest: PGuest) -> tuple[str, dict[str, str], dict[str, list[dict]]]:
        """The reason summary, the per-host text and the per-host refusals of a guest left down."""
        model = self.model
        refused = {h: self.refusals(guest, h) for h in range(len(model.snapshot.hosts))}
        per_host = {model.host_name(h): "; ".join(r.text for r in rs) for h, rs in refused.items()}
        data = {model.host_name(h): [r.to_dict() for r in rs] for h, rs in refused.items()}
        return self._reason(guest, refused), per_host, data

    def _reason(self, guest: PGuest, refused: dict[int, list[Refusal]]) -> str:
        model, state = self.model, self.state
        allowed = [h for h in model.usable if guest.ok(h)]
        if not model.usable:
            return PREFIX + "no usable host (all unreachable, excluded or failed)"
        if not allowed:
            rule = "pin list" if guest.pinned is not None else "avoid list"
            return PREFIX + f"no usable host allowed by its {rule}"
        for rule in model.rules:
            somewhere = any(r.source is rule for h in allowed for r in refused[h])
            hint = rule.down_hint(guest, somewhere)
            if hint:
                return PREFIX + hint
        ram = model.ram
        only_ram = all([r.source for r in refused[h]] == [ram] for h in allowed)
        # Would it fit on some allowed host if this plan had placed nothing there?
        room_taken = [h for h in allowed if self.empty.fits(guest, h)]
        if room_taken:
            best = min((self.best_tier.get(h, guest.tier) for h in room_taken), default=guest.tier)
            if best < guest.tier:
                head = f"capacity given to tier {best}"
            else:
                head = f"room taken by other tier-{guest.tier} guests"
                if self.proven:
                    head += " (proven: no layout places more)"
            if only_ram:
                largest = ram.largest(state, allowed, now=True)
                return PREFIX + f"{head} ({largest}, {guest.mem} MiB needed)"
            return PREFIX + f"{head} ({self._summary(allowed, refused)})"
        if only_ram:
            largest = ram.largest(state, allowed)
            return PREFIX + f"no host has room ({largest} < {guest.mem} MiB needed)"
        return PREFIX + f"no host passes every rule ({self._summary(allowed, refused)})"

    def _summary(self, allowed: list[int], refused: dict[int, list[Refusal]]) -> str:
        """'RAM on 1 host, class multicast on 2 hosts': the refusals counted per rule."""
        counts: dict[tuple[Rule | None, str], int] = {}
        for h in allowed:
            for r in refused[h]:
                key = (r.source, r.rule)
                counts[key] = counts.get(key, 0) + 1
        # In the rules' order; the classes (one rule type) by name.
        order = sorted(counts, key=lambda k: (k[0].order if k[0] else 1 << 30, k[1]))
        return ", ".join(
            f"{label} on {counts[(rule, label)]} host{'s' if counts[(rule, label)] > 1 else ''}"
            for rule, label in order
        )
