"""Greedy placement: one pass over the guests in the strategy's order, each to one host.

Each strategy keeps an index over the hosts (segment tree, heap or sorted list) so that picking a
host costs O(log hosts) when the best candidate passes every rule; a candidate refused by a
non-RAM rule (vCPU cap, anti-affinity, pin, max guests) costs one more index step. The index is
the RAM rule's counters: each host's room (free RAM less the reserve and the plan's guests).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort

from .model import Model, PGuest, State
from .rules import Rule
from .rules.pin import PinRule

NEG = float("-inf")


def guest_order(model: Model) -> list[PGuest]:
    """Guests in placement order: tiers first; seed strategies by name, the others largest first."""
    if model.policy.strategy in ("round-robin", "most-free"):
        return sorted(model.guests, key=lambda guest: (guest.tier, guest.name))
    return sorted(
        model.guests, key=lambda guest: (guest.tier, -guest.mem, -guest.vcpus, guest.name)
    )


def fit_text(state: State, guest: PGuest, host: int) -> str:
    """Why ``guest`` fits ``host`` before it is charged, in every rule's words that has a say,
    e.g. '4096 free >= 2048 needed' or 'room 2048 = free 4096 - reserve 2048 >= 2048 needed'."""
    return state.placed_text(guest, host)


class MaxTree:
    """Segment tree of per-position maxima: first position from ``start`` with value >= need."""

    def __init__(self, values: list[int]) -> None:
        n = 1
        while n < max(len(values), 1):
            n *= 2
        self.n = n
        self.t: list[float] = [NEG] * (2 * n)
        self.t[n : n + len(values)] = values
        for i in range(n - 1, 0, -1):
            self.t[i] = max(self.t[2 * i], self.t[2 * i + 1])

    def update(self, position: int, value: int) -> None:
        """Set ``position`` to ``value``."""
        i = position + self.n
        t = self.t
        t[i] = value
        i //= 2
        while i:
            t[i] = max(t[2 * i], t[2 * i + 1])
            i //= 2

    def max(self) -> float:
        """The largest value."""
        return self.t[1]

    def first(self, start: int, need: int) -> int:
        """The first position >= ``start`` whose value is >= need, or -1."""
        t, n = self.t, self.n
        if t[1] < need:
            return -1
        # Walk up from start collecting the right-hand subtrees, then descend into the first fit.
        i = start + n
        if t[i] >= need:
            return start
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

    def __init__(self, model: Model, state: State) -> None:
        self.model = model
        self.state = state
        self.tree = MaxTree([state.room_mib[host] for host in model.usable])
        self.tpos = {host: i for i, host in enumerate(model.usable)}
        self.passed: list[int] = []

    def update(self, host: int) -> None:
        """The host gained or lost room."""
        self.tree.update(self.tpos[host], self.state.room_mib[host])

    def pick(self, guest: PGuest, position: int) -> tuple[int, str] | None:
        """A host for ``guest`` (at ``position`` in order) and why, or None when no host fits.

        ``passed`` is left holding the hosts the choice passed over because a rule refused them
        (the pinned hosts that do not fit; for the strategy, the better-ranked hosts it visited).
        """
        self.passed = []
        if guest.pinned is not None:
            fits, refused = [], []
            for host in sorted(guest.pinned, key=lambda h: self.model.rank[h]):
                (fits if self.state.fits(guest, host) else refused).append(host)
            if not fits:
                return None
            host = min(fits, key=lambda host: self.key(host, position))
            self.passed = refused
            # The pin decides: the strategy only breaks a tie between pinned hosts, unsaid.
            fit = fit_text(self.state, guest, host)
            if len(guest.pinned) == 1:
                return host, fit
            return host, f"{self.model.host_name(host)}: {fit}"
        if self.tree.max() < guest.mem:
            return None
        host = self.search(guest, position)
        return None if host is None else (host, self.why(guest, host, position))

    def key(self, host: int, position: int) -> tuple:
        """Sort key of hosts for this strategy (smaller is better)."""
        raise NotImplementedError

    def search(self, guest: PGuest, position: int) -> int | None:
        """The best host for an unpinned guest, using the index."""
        raise NotImplementedError

    def why(self, guest: PGuest, host: int, position: int) -> str:
        """Why ``host`` was chosen, before it is charged."""
        raise NotImplementedError


class RoundRobin(Picker):
    """The seed's rule: hosts by total RAM, largest first; guest i starts at host i mod n."""

    name = "round-robin"

    def __init__(self, model: Model, state: State) -> None:
        super().__init__(model, state)
        hosts = model.snapshot.hosts
        self.order = sorted(
            model.usable, key=lambda host: (-hosts[host].total_mib, model.rank[host])
        )
        self.pos = {host: p for p, host in enumerate(self.order)}
        self.tree = MaxTree([state.room_mib[host] for host in self.order])
        self.tpos = self.pos

    def key(self, host: int, position: int) -> tuple:
        """Sort key of ``host`` for this strategy (smaller is better)."""
        n = len(self.order)
        return ((self.pos[host] - position) % n,)

    def search(self, guest: PGuest, position: int) -> int | None:
        """The best unpinned host for ``guest`` by this strategy, or None."""
        n = len(self.order)
        start = position % n
        for lo, hi in ((start, n), (0, start)):
            p = lo
            while p < hi:
                p = self.tree.first(p, guest.mem)
                if p < 0 or p >= hi:
                    break
                host = self.order[p]
                if self.state.fits(guest, host):
                    return host
                self.passed.append(host)
                p += 1
        return None

    def why(self, guest: PGuest, host: int, position: int) -> str:
        """Why ``host`` was chosen, before it is charged."""
        first = self.model.host_name(self.order[position % len(self.order)])
        fit = fit_text(self.state, guest, host)
        return f"round-robin: first host with room in rotation from {first} ({fit})"


class HeapPicker(Picker):
    """A strategy whose best host is the top of a heap ordered by ``key``, kept lazily.

    A host whose room changes gets a fresh entry with a new version; older entries are skipped
    when they surface, so every update costs O(log hosts).
    """

    def __init__(self, model: Model, state: State) -> None:
        super().__init__(model, state)
        self.ver = {host: 0 for host in model.usable}
        self.heap = [self.entry(host) for host in model.usable]
        heapq.heapify(self.heap)

    def entry(self, host: int) -> tuple:
        """Heap entry for ``host`` at its current room."""
        return (*self.key(host, 0), host, self.ver[host])

    def update(self, host: int) -> None:
        """The host gained or lost room: refresh the index."""
        super().update(host)
        self.ver[host] += 1
        heapq.heappush(self.heap, self.entry(host))

    def hopeless(self, top: tuple, guest: PGuest) -> bool:
        """True when no host at or below ``top`` can hold ``guest`` (ends the search early)."""
        return False

    def search(self, guest: PGuest, position: int) -> int | None:
        """The best unpinned host for ``guest`` by this strategy, or None."""
        heap, popped, found = self.heap, [], None
        while heap:
            top = heap[0]
            if top[-1] != self.ver[top[-2]]:
                heapq.heappop(heap)  # stale entry of a host that changed since
                continue
            if self.hopeless(top, guest):
                break
            popped.append(heapq.heappop(heap))
            if self.state.fits(guest, top[-2]):
                found = top[-2]
                break
            self.passed.append(top[-2])
        for e in popped:
            heapq.heappush(heap, e)
        return found


class MostFree(HeapPicker):
    """The seed's other rule: the host with the most free RAM that fits."""

    name = "most-free"

    def key(self, host: int, position: int) -> tuple:
        """Sort key of ``host`` for this strategy (smaller is better)."""
        return (-self.state.room_mib[host], self.model.rank[host])

    def hopeless(self, top: tuple, guest: PGuest) -> bool:
        """The roomiest host left is too small: so is every other."""
        return -top[0] < guest.mem

    def why(self, guest: PGuest, host: int, position: int) -> str:
        """Why ``host`` was chosen, before it is charged."""
        return (
            f"most-free: most free RAM of the hosts that fit ({fit_text(self.state, guest, host)})"
        )


class Balanced(HeapPicker):
    """Worst fit / LPT: largest guests first, each to the host with most room for its size."""

    name = "balanced"

    def share(self, host: int) -> float:
        """Fraction of the host's RAM still free, less the reserve (its room)."""
        return self.state.room_mib[host] / self.model.total_mib[host]

    def key(self, host: int, position: int) -> tuple:
        """Sort key of ``host`` for this strategy (smaller is better)."""
        return (-self.share(host), self.model.rank[host])

    def why(self, guest: PGuest, host: int, position: int) -> str:
        """Why ``host`` was chosen, before it is charged."""
        pct = round(100 * self.share(host))
        # The share is of room: with a reserve, calling it free would contradict the table.
        word = "room" if self.model.ram.reserve_mib else "free"
        fit = fit_text(self.state, guest, host)
        return f"balanced: most room for its size ({pct}% {word}, {fit})"


class Pack(Picker):
    """Best fit decreasing: the host with the least room that still fits, keeping hosts empty."""

    name = "pack"

    def __init__(self, model: Model, state: State) -> None:
        super().__init__(model, state)
        self.cur = {host: (state.room_mib[host], model.rank[host], host) for host in model.usable}
        self.keys = sorted(self.cur.values())

    def update(self, host: int) -> None:
        """The host gained or lost room: refresh the index."""
        super().update(host)
        old = self.cur[host]
        del self.keys[bisect_left(self.keys, old)]
        new = (self.state.room_mib[host], self.model.rank[host], host)
        self.cur[host] = new
        insort(self.keys, new)

    def key(self, host: int, position: int) -> tuple:
        """Sort key of ``host`` for this strategy (smaller is better)."""
        return (self.state.room_mib[host], self.model.rank[host])

    def search(self, guest: PGuest, position: int) -> int | None:
        """The best unpinned host for ``guest`` by this strategy, or None."""
        keys = self.keys
        for j in range(bisect_left(keys, (guest.mem, -1, -1)), len(keys)):
            host = keys[j][2]
            if self.state.fits(guest, host):
                return host
            self.passed.append(host)
        return None

    def why(self, guest: PGuest, host: int, position: int) -> str:
        """Why ``host`` was chosen, before it is charged."""
        return f"pack: tightest fit ({fit_text(self.state, guest, host)})"


PICKERS: dict[str, type[Picker]] = {p.name: p for p in (RoundRobin, MostFree, Balanced, Pack)}


def place_greedy(model: Model, state: State, guests: list[PGuest], why: dict[int, str]) -> None:
    """Place ``guests`` in order on top of ``state``; fills ``why`` for each guest placed.

    A guest's ``why`` says every refusal that changed its answer (its last owner's first, then
    its preferred hosts', then the hosts its pin or the strategy passed over), then why the
    chosen host; a pinned guest's says what the pin allowed, never the strategy's words.
    """
    if not model.usable:
        return
    picker = PICKERS[model.policy.strategy](model, state)
    for position, guest in enumerate(guests):
        if state.where[guest.idx] is not None:
            continue
        choice, refused = _sticky(model, state, guest)
        if choice is None:
            choice = picker.pick(guest, position)
            if choice is not None:
                said = {h for h, _ in refused}
                # The strategy's text says "with room"/"that fit": a host RAM refuses is implied.
                implied = guest.pinned is None
                refused += _passed_over(state, guest, picker.passed, said, implied)
        if choice is None:
            continue
        host, text = choice
        text = "; ".join([*(t for _, t in refused), text])
        if guest.pinned is not None:
            names = ", ".join(sorted(model.host_name(p) for p in guest.pinned))
            text = f"pinned ({names}): {text}"
        broken = state.breaks_class(guest, host) if guest.idx in state.relaxed else []
        if broken:
            text += "; " + soft_text(model, state, guest, host, broken)
        state.place(guest, host)
        picker.update(host)
        why[guest.idx] = text


# At most this many passed-over hosts are said with their figures; the rest are counted.
PASSED_SAID = 3


def refused_text(state: State, guest: PGuest, host: int, label: str) -> str | None:
    """'last owner xen02 refused: vCPU cap: 16 of 16 used, 2 needed (vcpu_ratio 2 x 8 CPUs)',
    with ``label`` naming the host; None when nothing but its pin refuses a pinned guest there
    (its line says the pin already)."""
    status = state.model.status[host]
    if status is not None:
        return f"{label} not usable: {status}"
    texts = [r.text for r in state.refusals(guest, host) if not isinstance(r.source, PinRule)]
    return f"{label} refused: " + ", ".join(texts) if texts else None


def _sticky(
    model: Model, state: State, guest: PGuest
) -> tuple[tuple[int, str] | None, list[tuple[int, str]]]:
    """The preferred host or last owner when one fits, and the refusals of those that did not
    (the last owner's first), as (host, text)."""
    # Admin intent (prefer) before habit (last owner) before the strategy.
    refused: list[tuple[int, str]] = []
    for host in guest.prefer:
        if state.fits(guest, host):
            return (host, f"preferred host ({fit_text(state, guest, host)})"), refused
        said = refused_text(state, guest, host, f"preferred host {model.host_name(host)}")
        if said:
            refused.append((host, said))
    host = guest.last_owner
    if host is not None and state.fits(guest, host):
        return (host, f"{guest.last_owner_why} ({fit_text(state, guest, host)})"), refused
    seen = host if host is not None else guest.last_seen
    if seen is not None and seen not in guest.prefer:
        label = f"last owner {model.host_name(seen)}"
        if guest.last_owner_why != "last owner":
            label = f"{model.host_name(seen)} ({guest.last_owner_why})"  # --expect's words
        said = refused_text(state, guest, seen, label)
        if said:
            refused.insert(0, (seen, said))
    return None, refused


def _passed_over(
    state: State, guest: PGuest, hosts: list[int], said: set[int], implied_ram: bool
) -> list[tuple[int, str]]:
    """The refusals of the hosts a choice passed over: a few with figures, the rest counted."""
    out: list[tuple[int, str]] = []
    more, rules = 0, dict[str, None]()
    ram = state.model.ram
    for host in hosts:
        if host in said:
            continue
        refusals = [r for r in state.refusals(guest, host) if not isinstance(r.source, PinRule)]
        if not refusals or (implied_ram and any(r.source is ram for r in refusals)):
            continue
        said.add(host)
        if len(out) < PASSED_SAID:
            name = state.model.host_name(host)
            out.append((host, f"{name} refused: " + ", ".join(r.text for r in refusals)))
        else:
            more += 1
            rules.update(dict.fromkeys(r.rule for r in refusals))
    if more:
        hosts_word = "host" if more == 1 else "hosts"
        out.append((-1, f"{more} more {hosts_word} refused ({', '.join(rules)})"))
    return out


def soft_text(model: Model, state: State, guest: PGuest, host: int, broken: list[Rule]) -> str:
    """Explain a soft anti-affinity violation, before ``guest`` is charged to ``host``."""
    parts = [rule.soft_text(state, host) for rule in broken]
    return "soft anti-affinity broken: " + "; ".join(parts) + " (it would otherwise stay down)"
