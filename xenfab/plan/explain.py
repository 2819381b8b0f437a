"""Why a guest could not be placed: the rules that refused it on each host, and a summary.

Built from the rules' structured refusals (``rules.Refusal``): the per-host text and the JSON
figures come from the same objects that decided, and the summary counts refusals by rule.
"""

from __future__ import annotations

from .model import Model, PGuest, State
from .rules import Refusal

# The summary's order of rules, so the text does not depend on host order.
_RULE_ORDER = {"RAM": 0, "vCPU cap": 1}


class Explainer:
    """Explains refusals against one final state."""

    def __init__(self, m: Model, st: State, proven: bool | None) -> None:
        self.m, self.st, self.proven = m, st, proven
        self.best_tier: dict[int, int] = {}  # host -> most important tier placed there
        for g in m.guests:
            h = st.where[g.idx]
            if h is not None:
                self.best_tier[h] = min(self.best_tier.get(h, g.tier), g.tier)
        self.empty = State(m)
        self.empty.relaxed = st.relaxed

    def refusals(self, g: PGuest, h: int) -> list[Refusal]:
        """Every rule guest ``g`` fails on host ``h`` (empty when it fits)."""
        status = self.m.status[h]
        if status is not None:
            return [Refusal("host", status)]
        return self.st.refusals(g, h)

    def why_not(self, g: PGuest, h: int) -> str:
        """Every limit guest ``g`` fails on host ``h`` ('' when it fits), as text."""
        return "; ".join(r.text for r in self.refusals(g, h))

    def unplaced(self, g: PGuest) -> tuple[str, dict[str, str], dict[str, list[dict]]]:
        """The reason summary, the per-host text and the per-host refusals of a guest left down."""
        m = self.m
        refused = {h: self.refusals(g, h) for h in range(len(m.snapshot.hosts))}
        per_host = {m.host_name(h): "; ".join(r.text for r in rs) for h, rs in refused.items()}
        data = {m.host_name(h): [r.to_dict() for r in rs] for h, rs in refused.items()}
        return self._reason(g, refused), per_host, data

    def _reason(self, g: PGuest, refused: dict[int, list[Refusal]]) -> str:
        m, st = self.m, self.st
        prefix = "Need SA intervention: "
        allowed = [h for h in m.usable if g.ok(h)]
        if not m.usable:
            return prefix + "no usable host (all unreachable, excluded or failed)"
        if not allowed:
            rule = "pin list" if g.pinned is not None else "avoid list"
            return prefix + f"no usable host allowed by its {rule}"
        hint = self._class_hint(g, allowed, refused)
        if hint:
            return hint
        largest = max(max(st.free_mib[h], 0) for h in allowed)
        # Would it fit on some allowed host if this plan had placed nothing there?
        room_taken = [h for h in allowed if self.empty.fits(g, h)]
        if room_taken:
            best = min((self.best_tier.get(h, g.tier) for h in room_taken), default=g.tier)
            if best < g.tier:
                head = f"capacity given to tier {best}"
            else:
                head = f"room taken by other tier-{g.tier} guests"
                if self.proven:
                    head += " (proven: no layout places more)"
            return prefix + f"{head} (largest free now {largest} MiB, {g.mem} MiB needed)"
        if all([r.rule for r in refused[h]] == ["RAM"] for h in allowed):
            return prefix + f"no host has room (largest free {largest} MiB < {g.mem} MiB needed)"
        counts: dict[str, int] = {}
        for h in allowed:
            for r in refused[h]:
                counts[r.rule] = counts.get(r.rule, 0) + 1
        kinds = sorted(counts, key=lambda k: (_RULE_ORDER.get(k, 2), k))
        summary = ", ".join(f"{k} on {counts[k]} host{'s' if counts[k] > 1 else ''}" for k in kinds)
        return prefix + f"no host passes every rule ({summary})"

    def _class_hint(
        self, g: PGuest, allowed: list[int], refused: dict[int, list[Refusal]]
    ) -> str | None:
        """A hard class with more members than units keeps ``g`` down: say so, and the way out."""
        m = self.m
        if m.policy.anti_affinity_mode != "hard":
            return None
        for c in g.classes:
            cl = m.classes[c]
            rule = f"class {cl.name}"
            if cl.members <= cl.usable_units:
                continue
            # The class cannot hold every member: a member it refuses somewhere is one of those
            # it keeps down (which ones is the search's choice; the count is the class's).
            if any(any(r.rule == rule for r in refused[h]) for h in allowed):
                what = "failure domain" if cl.spread == "domain" else "usable host"
                if cl.usable_units != 1:
                    what += "s"
                return (
                    "Need SA intervention: "
                    f"class {cl.name}: {cl.members} members, {cl.usable_units} {what}: "
                    f"{g.name} stays down; anti_affinity_mode: soft lets it share"
                )
        return None
