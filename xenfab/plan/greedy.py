"""Greedy placement: one pass over the guests in the strategy's order, each to one host.

Each strategy keeps an index over the hosts (segment tree, heap or sorted list) so that picking a
host costs O(log hosts) when the best candidate passes every rule; a candidate refused by a
non-RAM rule (vCPU cap, anti-affinity, pin) costs one more index step.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort

from .model import Model, PGuest, State

NEG = float("-inf")


def guest_order(m: Model) -> list[PGuest]:
    """Guests in placement order: tiers first; seed strategies by name, the others largest first."""
    if m.policy.strategy in ("round-robin", "most-free"):
        return sorted(m.guests, key=lambda g: (g.tier, g.name))
    return sorted(m.guests, key=lambda g: (g.tier, -g.mem, -g.vcpus, g.name))


def fit_text(st: State, g: PGuest, h: int) -> str:
    """The RAM fit behind a choice, e.g. '4096 free >= 2048 needed'."""
    return f"{st.free_mib[h]} free >= {g.mem} needed"


class MaxTree:
    """Segment tree of per-position maxima: first position from ``lo`` with value >= need."""

    def __init__(self, values: list[int]) -> None:
        n = 1
        while n < max(len(values), 1):
            n *= 2
        self.n = n
        self.t: list[float] = [NEG] * (2 * n)
        self.t[n : n + len(values)] = values
        for i in range(n - 1, 0, -1):
            self.t[i] = max(self.t[2 * i], self.t[2 * i + 1])

    def update(self, p: int, v: int) -> None:
        """Set position ``p`` to ``v``."""
        i = p + self.n
        t = self.t
        t[i] = v
        i //= 2
        while i:
            t[i] = max(t[2 * i], t[2 * i + 1])
            i //= 2

    def max(self) -> float:
        """The largest value."""
        return self.t[1]

    def first(self, lo: int, need: int) -> int:
        """The first position >= lo whose value is >= need, or -1."""
        t, n = self.t, self.n
        if t[1] < need:
            return -1
        # Walk up from lo collecting the right-hand subtrees, then descend into the first good one.
        i = lo + n
        if t[i] >= need:
            return lo
        while True:
            # Move to the next subtree to the right at this level.
            while i & 1:
                i //= 2
                if i <= 1:
                    return -1
            i += 1
            if t[i] >= need:
                break
        while i < n:
            i = 2 * i if t[2 * i] >= need else 2 * i + 1
        return i - n


class Picker:
    """Chooses a host for a guest by one strategy; told about every change of a host's room."""

    name = ""

    def __init__(self, m: Model, st: State) -> None:
        self.m = m
        self.st = st
        self.tree = MaxTree([st.free_mib[h] for h in m.usable])
        self.tpos = {h: i for i, h in enumerate(m.usable)}

    def update(self, h: int) -> None:
        """Host ``h`` gained or lost room."""
        self.tree.update(self.tpos[h], self.st.free_mib[h])

    def pick(self, g: PGuest, i: int) -> tuple[int, str] | None:
        """A host for ``g`` (the i-th guest in order) and why, or None when no host fits."""
        if g.pinned is not None:
            fits = [h for h in g.pinned if self.st.fits(g, h)]
            if not fits:
                return None
            h = min(fits, key=lambda h: self.key(h, i))
            names = ", ".join(sorted(self.m.host_name(p) for p in g.pinned))
            return h, f"pinned ({names}); {self.why(g, h, i)}"
        if self.tree.max() < g.mem:
            return None
        h = self.search(g, i)
        return None if h is None else (h, self.why(g, h, i))

    def key(self, h: int, i: int) -> tuple:
        """Sort key of hosts for this strategy (smaller is better)."""
        raise NotImplementedError

    def search(self, g: PGuest, i: int) -> int | None:
        """The best host for an unpinned guest, using the index."""
        raise NotImplementedError

    def why(self, g: PGuest, h: int, i: int) -> str:
        """Why host ``h`` was chosen, before it is charged."""
        raise NotImplementedError


class RoundRobin(Picker):
    """The seed's rule: hosts by total RAM, largest first; guest i starts at host i mod n."""

    name = "round-robin"

    def __init__(self, m: Model, st: State) -> None:
        super().__init__(m, st)
        hosts = m.snapshot.hosts
        self.order = sorted(m.usable, key=lambda h: (-hosts[h].total_mib, m.rank[h]))
        self.pos = {h: p for p, h in enumerate(self.order)}
        self.tree = MaxTree([st.free_mib[h] for h in self.order])
        self.tpos = self.pos

    def key(self, h: int, i: int) -> tuple:
        """Sort key of host ``h`` for this strategy (smaller is better)."""
        n = len(self.order)
        return ((self.pos[h] - i) % n,)

    def search(self, g: PGuest, i: int) -> int | None:
        """The best unpinned host for ``g`` by this strategy, or None."""
        n = len(self.order)
        start = i % n
        for lo, hi in ((start, n), (0, start)):
            p = lo
            while p < hi:
                p = self.tree.first(p, g.mem)
                if p < 0 or p >= hi:
                    break
                h = self.order[p]
                if self.st.fits(g, h):
                    return h
                p += 1
        return None

    def why(self, g: PGuest, h: int, i: int) -> str:
        """Why host ``h`` was chosen, before it is charged."""
        first = self.m.host_name(self.order[i % len(self.order)])
        fit = fit_text(self.st, g, h)
        return f"round-robin: first host with room in rotation from {first} ({fit})"


class HeapPicker(Picker):
    """A strategy whose best host is the top of a heap ordered by ``key``, kept lazily.

    A host whose room changes gets a fresh entry with a new version; older entries are skipped
    when they surface, so every update costs O(log hosts).
    """

    def __init__(self, m: Model, st: State) -> None:
        super().__init__(m, st)
        self.ver = {h: 0 for h in m.usable}
        self.heap = [self.entry(h) for h in m.usable]
        heapq.heapify(self.heap)

    def entry(self, h: int) -> tuple:
        """Heap entry for host ``h`` at its current room."""
        return (*self.key(h, 0), h, self.ver[h])

    def update(self, h: int) -> None:
        """Host ``h`` gained or lost room: refresh the index."""
        super().update(h)
        self.ver[h] += 1
        heapq.heappush(self.heap, self.entry(h))

    def hopeless(self, top: tuple, g: PGuest) -> bool:
        """True when no host at or below ``top`` can hold ``g`` (ends the search early)."""
        return False

    def search(self, g: PGuest, i: int) -> int | None:
        """The best unpinned host for ``g`` by this strategy, or None."""
        heap, popped, found = self.heap, [], None
        while heap:
            top = heap[0]
            if top[-1] != self.ver[top[-2]]:
                heapq.heappop(heap)  # stale entry of a host that changed since
                continue
            if self.hopeless(top, g):
                break
            popped.append(heapq.heappop(heap))
            if self.st.fits(g, top[-2]):
                found = top[-2]
                break
        for e in popped:
            heapq.heappush(heap, e)
        return found


class MostFree(HeapPicker):
    """The seed's other rule: the host with the most free RAM that fits."""

    name = "most-free"

    def key(self, h: int, i: int) -> tuple:
        """Sort key of host ``h`` for this strategy (smaller is better)."""
        return (-self.st.free_mib[h], self.m.rank[h])

    def hopeless(self, top: tuple, g: PGuest) -> bool:
        """The roomiest host left is too small: so is every other."""
        return -top[0] < g.mem

    def why(self, g: PGuest, h: int, i: int) -> str:
        """Why host ``h`` was chosen, before it is charged."""
        return f"most-free: most free RAM of the hosts that fit ({fit_text(self.st, g, h)})"


class Balanced(HeapPicker):
    """Worst fit / LPT: largest guests first, each to the host with most room for its size."""

    name = "balanced"

    def share(self, h: int) -> float:
        """Fraction of the host's RAM still free."""
        return self.st.free_mib[h] / self.m.size[h]

    def key(self, h: int, i: int) -> tuple:
        """Sort key of host ``h`` for this strategy (smaller is better)."""
        return (-self.share(h), self.m.rank[h])

    def why(self, g: PGuest, h: int, i: int) -> str:
        """Why host ``h`` was chosen, before it is charged."""
        pct = round(100 * self.share(h))
        return f"balanced: most room for its size ({pct}% free, {fit_text(self.st, g, h)})"


class Pack(Picker):
    """Best fit decreasing: the host with the least room that still fits, keeping hosts empty."""

    name = "pack"

    def __init__(self, m: Model, st: State) -> None:
        super().__init__(m, st)
        self.cur = {h: (st.free_mib[h], m.rank[h], h) for h in m.usable}
        self.keys = sorted(self.cur.values())

    def update(self, h: int) -> None:
        """Host ``h`` gained or lost room: refresh the index."""
        super().update(h)
        old = self.cur[h]
        del self.keys[bisect_left(self.keys, old)]
        new = (self.st.free_mib[h], self.m.rank[h], h)
        self.cur[h] = new
        insort(self.keys, new)

    def key(self, h: int, i: int) -> tuple:
        """Sort key of host ``h`` for this strategy (smaller is better)."""
        return (self.st.free_mib[h], self.m.rank[h])

    def search(self, g: PGuest, i: int) -> int | None:
        """The best unpinned host for ``g`` by this strategy, or None."""
        keys = self.keys
        for j in range(bisect_left(keys, (g.mem, -1, -1)), len(keys)):
            h = keys[j][2]
            if self.st.fits(g, h):
                return h
        return None

    def why(self, g: PGuest, h: int, i: int) -> str:
        """Why host ``h`` was chosen, before it is charged."""
        return f"pack: tightest fit ({fit_text(self.st, g, h)})"


PICKERS: dict[str, type[Picker]] = {p.name: p for p in (RoundRobin, MostFree, Balanced, Pack)}


def place_greedy(m: Model, st: State, guests: list[PGuest], why: dict[int, str]) -> None:
    """Place ``guests`` in order on top of ``st``; fills ``why`` for each guest placed."""
    if not m.usable:
        return
    picker = PICKERS[m.policy.strategy](m, st)
    for i, g in enumerate(guests):
        if st.where[g.idx] is not None:
            continue
        choice = _sticky(m, st, g)
        if choice is None:
            choice = picker.pick(g, i)
        if choice is None:
            continue
        h, text = choice
        broken = st.breaks_class(g, h) if g.idx in st.relaxed else []
        if broken:
            text += "; " + soft_text(m, st, g, h, broken)
        st.place(g, h)
        picker.update(h)
        why[g.idx] = text


def _sticky(m: Model, st: State, g: PGuest) -> tuple[int, str] | None:
    # Admin intent (prefer) before habit (last owner) before the strategy.
    for h in g.prefer:
        if st.fits(g, h):
            return h, f"preferred host ({fit_text(st, g, h)})"
    h = g.last_owner
    if h is not None and st.fits(g, h):
        return h, f"{g.last_owner_why} ({fit_text(st, g, h)})"
    return None


def soft_text(m: Model, st: State, g: PGuest, h: int, broken: list[int]) -> str:
    """Explain a soft anti-affinity violation, before ``g`` is charged to ``h``."""
    parts = []
    for c in broken:
        cl = m.classes[c]
        where = cl.unit_names[cl.unit_of[h]]
        parts.append(f"class {cl.name} shares {where} with {', '.join(st.members_at(c, h))}")
    return "soft anti-affinity broken: " + "; ".join(parts) + " (it would otherwise stay down)"
