"""Why a guest could not be placed: the limit that failed on each host, and a one-line summary."""

from __future__ import annotations

from .model import AVOIDED, NOT_PINNED, Model, PGuest, State


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class Explainer:
    """Explains refusals against one final state; per-unit class members are collected once."""

    def __init__(self, m: Model, st: State, proven: bool | None) -> None:
        self.m, self.st, self.proven = m, st, proven
        self.names: list[list[list[str]]] = [[list(r) for r in c.running] for c in m.classes]
        self.best_tier: dict[int, int] = {}  # host -> most important tier placed there
        for g in m.guests:
            h = st.where[g.idx]
            if h is None:
                continue
            self.best_tier[h] = min(self.best_tier.get(h, g.tier), g.tier)
            for c in g.classes:
                self.names[c][m.classes[c].unit_of[h]].append(g.name)
        for per_unit in self.names:
            for names in per_unit:
                names.sort()
        self.empty = State(m)
        self.empty.relaxed = st.relaxed

    def why_not(self, g: PGuest, h: int) -> str:
        """Every limit guest ``g`` fails on host ``h`` ('' when it fits)."""
        m, st = self.m, self.st
        status = m.status[h]
        if status is not None:
            return status
        if g.pinned is not None and h not in g.pinned:
            return NOT_PINNED
        if h in g.avoided:
            return AVOIDED
        fails = []
        if st.rem[h] < g.mem:
            fails.append(f"RAM: {st.rem[h]} free < {g.mem} needed")
        cap = m.vcap[h]
        if cap is not None and st.vused[h] + g.vcpus > cap:
            fails.append(f"vCPU cap: {st.vused[h]} of {_num(cap)} used, {g.vcpus} needed")
        if g.idx not in st.relaxed:
            for c in g.classes:
                cl = m.classes[c]
                u = cl.unit_of[h]
                if st.count[c][u] >= cl.limit:
                    names = ", ".join(self.names[c][u])
                    where = "here" if cl.spread == "host" else f"in {cl.unit_names[u]}"
                    text = f"class {cl.name}: {names} already {where}"
                    if cl.limit > 1:
                        text += f" (at most {cl.limit} per {cl.spread})"
                    fails.append(text)
        return "; ".join(fails)

    def unplaced(self, g: PGuest) -> tuple[str, dict[str, str]]:
        """The reason summary and the per-host limits for a guest left down."""
        m, st = self.m, self.st
        per_host = {m.host_name(h): self.why_not(g, h) for h in range(len(m.snapshot.hosts))}
        allowed = [h for h in m.usable if g.ok(h)]
        prefix = "Need SA intervention: "
        if not m.usable:
            return prefix + "no usable host (all unreachable, excluded or failed)", per_host
        if not allowed:
            rule = "pin list" if g.pinned is not None else "avoid list"
            return prefix + f"no usable host allowed by its {rule}", per_host
        largest = max(st.rem[h] for h in allowed)
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
            return prefix + f"{head} (largest free now {largest} MiB, {g.mem} MiB needed)", per_host
        if all(per_host[m.host_name(h)].startswith("RAM:") for h in allowed) and all(
            "; " not in per_host[m.host_name(h)] for h in allowed
        ):
            return (
                prefix + f"no host has room (largest free {largest} MiB < {g.mem} MiB needed)",
                per_host,
            )
        counts: dict[str, int] = {}
        for h in allowed:
            for part in per_host[m.host_name(h)].split("; "):
                kind = part.split(":")[0]
                counts[kind] = counts.get(kind, 0) + 1
        # A fixed order (RAM, vCPU, then classes by name) so the text does not depend on host order.
        kinds = sorted(counts, key=lambda k: ({"RAM": 0, "vCPU cap": 1}.get(k, 2), k))
        summary = ", ".join(f"{k} on {counts[k]} host{'s' if counts[k] > 1 else ''}" for k in kinds)
        return prefix + f"no host passes every rule ({summary})", per_host
