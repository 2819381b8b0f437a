"""Search beyond greedy: repair moves, vector packing, then an exact search, within a work budget.

The budget is counted in deterministic work (repair steps, packing passes, solver nodes, a fixed
sequence of sub-programs), never in wall time: the same snapshot, policy and options give the
same layout on any machine at any load. A wall-clock limit remains only as a safety stop
(``Budget.stopped == "time"``), which the layout reports (``search_stopped``).

The objective is lexicographic by tier: one more tier-1 guest placed beats any number of tier-2
guests (see Model.weights). Among layouts placing equally well, the search keeps as many guests as
it can on the host the greedy pass (the chosen strategy) gave them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import cpsat
from .budget import Budget
from .greedy import Balanced, Pack, Picker, fit_text, place_greedy, soft_text
from .model import Model, PGuest, State

# The safety stop is checked every this many branch-and-bound nodes: cheap, and never the
# normal end (the node budget is).
_CLOCK_EVERY = 64


# Which exact search runs: "mip" (HiGHS over guest kinds, the default), "bnb" (the built-in
# branch and bound, used when highspy cannot be imported) or "cpsat" (OR-tools, measured only).
SOLVER = "mip"
# The work budget, per search pass (soft anti-affinity runs two passes: rule kept, rule broken).
# Sized with bench/bench_place.py so that the default ends in well under 2 s on a quiet 2-core
# machine (docs/plans.md has the figures). Counted in work, so the layout never depends on load.
REPAIR_STEPS = 4_000  # moves tried by the ejection chains (each costs a scan of the hosts)
VECTOR_PASSES = 16  # vector-packing passes from scratch (fixed seed)
FULL_NODES = 2_000  # HiGHS branch-and-bound nodes for the whole program
NEIGHBOURHOODS = 12  # then at most this many programs over a few hosts at a time
NEIGHBOURHOOD_HOSTS = 5
NEIGHBOURHOOD_NODES = 300
BNB_NODES = 100_000  # the built-in branch and bound (no highspy, or SOLVER = "bnb"): ~1.5 s


# Called when the search starts, with the most seconds it may take; what it returns (if callable)
# is called when the search ends. The planner does no I/O: the caller shows progress.
SearchHook = Callable[[float], "Callable[[], None] | None"]


def improve(
    m: Model,
    st: State,
    why: dict[int, str],
    order: list[PGuest],
    budget: Budget,
    on_search: SearchHook | None = None,
) -> tuple[State, str, bool | None]:
    """Try to place the guests greedy left down; returns the state, method and proof flag."""
    method, proven = "greedy", None
    soft = m.policy.anti_affinity_mode == "soft" and bool(m.classes)
    hard_where = list(st.where)
    for relax in (False, True) if soft else (False,):
        if relax:
            if all(st.where[g.idx] is not None for g in m.guests):
                break
            # Soft rules: only the guests that would otherwise stay down may break a class.
            hard_where = list(st.where)
            st.relaxed = {g.idx for g in m.guests if st.where[g.idx] is None}
            place_greedy(m, st, order, why)
            if all(st.where[g.idx] is not None for g in m.guests):
                return st, method, True
            # For the search, every guest may break a class: that is the true soft optimum.
            st.relaxed = {g.idx for g in m.guests}
        if not budget.search:
            proven = None  # greedy only: no search ran
            continue
        if budget.out_of_time():
            proven = False  # the safety stop came before any search
            continue
        if repair(m, st, why, order, budget):
            method = "greedy+repair"
        if all(st.where[g.idx] is not None for g in m.guests):
            proven = True
            continue
        if budget.out_of_time():
            proven = False  # the safety stop cut the search short
            continue
        finish = on_search(budget.left()) if on_search is not None else None
        try:
            # Vector packing (RAM and vCPUs weighed together) from scratch: a short look first.
            packed = vector_packing(m, st, budget)
            if packed is not None:
                _adopt(m, st, why, packed, order, "vector packing")
                method = "exact"
            if all(st.where[g.idx] is not None for g in m.guests):
                proven = True
                continue
            where, proven, label = _exact(m, st, budget)
            if where is not None:
                _adopt(m, st, why, where, order, label)
                method = "exact"
                # A layout placing every guest is optimal, whether or not the solver said so.
                proven = proven or all(st.where[g.idx] is not None for g in m.guests)
            if not proven and SOLVER == "mip" and _neighbourhoods(m, st, why, order, budget):
                method = "exact"
                if all(st.where[g.idx] is not None for g in m.guests):
                    proven = True
        finally:
            if callable(finish):
                finish()
    if soft:
        _note_soft(m, st, why, hard_where)
    return st, method, proven


def _neighbourhoods(
    m: Model, st: State, why: dict[int, str], order: list[PGuest], budget: Budget
) -> bool:
    """Re-solve a few hosts at a time (their guests and the guests left down), NEIGHBOURHOODS times.

    Each step frees the guests of NEIGHBOURHOOD_HOSTS hosts, half the roomiest (where a down
    guest could go after moves), half drawn at random (a fixed seed: same input, same plan),
    and lets the program place them and the down guests anew, within NEIGHBOURHOOD_NODES
    solver nodes. Returns True when it placed more.
    """
    import random

    from . import mip

    hosts = sorted(m.usable, key=lambda h: m.rank[h])
    size = min(len(hosts), NEIGHBOURHOOD_HOSTS)
    if size == len(hosts):
        return False  # the whole program already had every host
    rng = random.Random(len(m.guests) * 7919 + len(hosts))
    improved = False
    for _ in range(NEIGHBOURHOODS):
        if not any(st.where[g.idx] is None for g in m.guests) or budget.out_of_time():
            break

        def room(h: int) -> float:
            cap = m.vcpu.cap[h]
            used = st.counter(m.vcpu)[h]
            v = 1.0 if cap is None else (cap - used) / max(cap - m.vcpu.running[h], 1.0)
            return st.room_mib[h] / max(m.ram.room_mib[h], 1) + v

        roomy = sorted(hosts, key=lambda h: (-room(h), m.rank[h]))[: size // 2]
        rest = [h for h in hosts if h not in roomy]
        pick = roomy + rng.sample(rest, size - len(roomy))
        solved = mip.solve(m, st, budget, threads=1, hosts=pick, max_nodes=NEIGHBOURHOOD_NODES)
        if solved is None:
            return improved
        if solved[0] is not None:
            _adopt(m, st, why, solved[0], order, "exact search")
            improved = True
    return improved


def _exact(m: Model, st: State, budget: Budget) -> tuple[list[int | None] | None, bool, str]:
    """(better layout or None, proven, label) from the configured exact search."""
    if SOLVER == "mip":
        from . import mip

        # One thread: HiGHS's branch and bound is mostly serial, and one thread is what makes
        # its path (and so the layout) the same on every machine.
        solved = mip.solve(m, st, budget, threads=1, max_nodes=FULL_NODES)
        if solved is not None:
            return solved[0], solved[1], "exact search"
    if SOLVER == "cpsat":
        solved = cpsat.solve(m, st, budget, threads=1)
        if solved is not None:
            return solved[0], solved[1], "exact search (CP-SAT)"
    result = exact(m, st, budget)
    return result.where, result.proven, "exact search"


def _adopt(
    m: Model,
    st: State,
    why: dict[int, str],
    where: list[int | None],
    order: list[PGuest],
    label: str,
) -> None:
    """Switch ``st`` to the search's layout ``where`` and rewrite the reasons that changed."""
    before = list(st.where)
    for g in m.guests:
        if st.where[g.idx] is not None:
            st.remove(g)
    for g in m.guests:
        h = where[g.idx]
        if h is not None:
            st.place(g, h)
    # Settle: the strategy still decides among equally good layouts, so every guest the search
    # moved goes back to its earlier host when that host has room again (in plan order, so the
    # result does not depend on the order of the snapshot's lists).
    for g in order:
        h, old = st.where[g.idx], before[g.idx]
        if h is not None and old is not None and h != old:
            st.remove(g)
            st.place(g, old if st.fits(g, old) else h)
    for g in m.guests:
        h, old = st.where[g.idx], before[g.idx]
        if h is None or h == old:
            continue
        left = m.ram.left_text(st, h)
        if old is None:
            why[g.idx] = f"{label}: greedy left it down; this layout fits it ({left})"
        else:
            why[g.idx] = (
                f"{label}: moved from {m.host_name(old)} so more guests fit "
                f"({g.mem} needed, {left})"
            )


def _note_soft(m: Model, st: State, why: dict[int, str], hard_where: list[int | None]) -> None:
    # A guest placed or moved after the rules were relaxed, now sharing its host (or domain)
    # beyond the class limit, says so in `why`.
    for g in m.guests:
        h = st.where[g.idx]
        if h is None or h == hard_where[g.idx] or "soft anti-affinity" in why.get(g.idx, ""):
            continue
        st.remove(g)
        broken = st.breaks_class(g, h)
        if broken:
            why[g.idx] = why.get(g.idx, "") + "; " + soft_text(m, st, g, h, broken)
        st.place(g, h)


# --- repair ------------------------------------------------------------------------------------


class _Repair:
    """Ejection chains: place a guest by moving one planned guest (which may move one more)."""

    def __init__(self, m: Model, st: State, budget: Budget) -> None:
        self.m, self.st, self.budget = m, st, budget
        self.steps = 0
        self.on: dict[int, set[int]] = {h: set() for h in m.usable}
        for g in m.guests:
            h = st.where[g.idx]
            if h is not None:
                self.on[h].add(g.idx)
        self.log: list[tuple[str, PGuest, int]] = []
        self.fit: dict[int, str] = {}  # guest -> RAM fit at the moment it was placed
        self.ejected: dict[int, tuple[PGuest, int]] = {}  # guest -> (moved guest, its new host)

    def place(self, g: PGuest, h: int) -> None:
        """Place and remember how to undo."""
        self.fit[g.idx] = fit_text(self.st, g, h)
        self.st.place(g, h)
        self.on[h].add(g.idx)
        self.log.append(("place", g, h))

    def remove(self, g: PGuest) -> int:
        """Remove and remember how to undo."""
        h = self.st.remove(g)
        self.on[h].discard(g.idx)
        self.log.append(("remove", g, h))
        return h

    def undo(self, mark: int) -> None:
        """Roll back to log position ``mark``."""
        while len(self.log) > mark:
            op, g, h = self.log.pop()
            if op == "place":
                self.st.remove(g)
                self.on[h].discard(g.idx)
            else:
                self.st.place(g, h)
                self.on[h].add(g.idx)

    def insert(self, g: PGuest, depth: int, frozen: frozenset[int], moved: set[int]) -> int | None:
        """Place ``g``, moving at most ``depth`` other guests in a chain; None when impossible."""
        st, m = self.st, self.m
        self.ejected.pop(g.idx, None)
        hosts = [h for h in m.usable if h not in frozen and g.ok(h)]
        hosts.sort(key=lambda h: (-st.room_mib[h], m.rank[h]))
        for h in hosts:
            if st.fits(g, h):
                self.place(g, h)
                return h
        if depth == 0:
            return None
        for h in hosts:
            if self.steps > REPAIR_STEPS:
                return None
            if m.ram.room_mib[h] < g.mem:
                continue  # even emptied of planned guests this host is too small
            # Move the least important, smallest guests first: cheapest to relocate.
            victims = sorted(
                (m.guests[i] for i in self.on[h] if i not in moved),
                key=lambda p: (-p.tier, p.mem, p.name),
            )
            for p in victims:
                if st.room_mib[h] + p.mem < g.mem:
                    continue
                # One step: a move tried (its chain below counts its own).
                self.steps += 1
                if self.steps > REPAIR_STEPS:
                    return None
                if self.steps % _CLOCK_EVERY == 0 and self.budget.out_of_time():
                    self.steps = REPAIR_STEPS + 1
                    return None
                mark = len(self.log)
                self.remove(p)
                if st.fits(g, h):
                    self.place(g, h)
                    h2 = self.insert(p, depth - 1, frozen | {h}, moved | {g.idx, p.idx})
                    if h2 is not None:
                        self.ejected[g.idx] = (p, h2)
                        return h
                self.undo(mark)
        return None

    def explain(self, root: PGuest, why: dict[int, str]) -> None:
        """Write the reasons along the successful chain starting at ``root``."""
        m = self.m
        g, made_room_for = root, None
        while True:
            text = self.fit[g.idx]
            move = self.ejected.get(g.idx)
            if move is not None:
                text = f"after moving {move[0].name} to {m.host_name(move[1])}; {text}"
            if made_room_for is None:
                why[g.idx] = f"repair: placed {text}" if move else f"repair: placed ({text})"
            else:
                why[g.idx] = f"moved by repair to make room for {made_room_for.name} ({text})"
            if move is None:
                return
            g, made_room_for = move[0], g


def repair(m: Model, st: State, why: dict[int, str], order: list[PGuest], budget: Budget) -> int:
    """Place guests greedy left down by moving planned guests; returns how many it placed.

    At most REPAIR_STEPS host tries in all (deterministic work, not time).
    """
    r = _Repair(m, st, budget)
    placed = 0
    for g in order:
        if st.where[g.idx] is not None:
            continue
        if r.steps > REPAIR_STEPS:
            break
        r.log.clear()
        if r.insert(g, 2, frozenset(), {g.idx}) is not None:
            placed += 1
            r.explain(g, why)
    return placed


# --- exact search ------------------------------------------------------------------------------


class ExactResult:
    """Outcome of the exact search: a better layout (or None) and whether the best is proven."""

    def __init__(self, where: list[int | None] | None, proven: bool, nodes: int) -> None:
        self.where = where
        self.proven = proven
        self.nodes = nodes


def exact(m: Model, incumbent: State, budget: Budget) -> ExactResult:
    """Branch and bound over guests (largest first per tier), within BNB_NODES nodes.

    Returns a layout only when it places strictly more (tier-weighted) than ``incumbent``;
    ``proven`` is True when no layout can place more than the best one known.
    """
    guests = sorted(m.guests, key=lambda g: (g.tier, -g.mem, -g.vcpus, g.name))
    n = len(guests)
    weights = m.weights()
    w = [weights[g.tier] for g in guests]
    inc = list(incumbent.where)
    best_primary = sum(w[i] for i, g in enumerate(guests) if inc[g.idx] is not None)
    best_where: list[int | None] | None = None
    # Tier blocks: bound() walks each remaining block smallest first.
    block_end = [0] * n
    i = 0
    while i < n:
        j = i
        while j < n and guests[j].tier == guests[i].tier:
            j += 1
        for k in range(i, j):
            block_end[k] = j
        i = j
    usable = m.usable
    st = State(m)
    st.relaxed = set(incumbent.relaxed)
    sig_static = _static_signatures(m, guests)

    # Smallest guest size from each position on: room smaller than that is wasted.
    suffix_min = [0] * (n + 1)
    suffix_min[n] = 1 << 62
    for k in range(n - 1, -1, -1):
        suffix_min[k] = min(suffix_min[k + 1], guests[k].mem)
    sums = _SubsetSums([g.mem for g in guests])

    def bound(lvl: int) -> int:
        """Upper bound on the tier-weighted guests still placeable from level ``lvl`` on."""
        # Relaxation: the hosts' usable room as one bin; per tier, smallest guests first (exact
        # for lexicographic weights on one bin), each no bigger than the roomiest host. A host
        # can take at most the largest sum of remaining guest sizes that fits its room; the
        # rest of its room is wasted (that is what makes tight instances provable).
        smallest = suffix_min[lvl]
        r = 0
        largest = 0
        for h in usable:
            x = st.room_mib[h]
            if x >= smallest:
                if x > largest:
                    largest = x
                r += sums.fill(lvl, x)
        ub = 0
        k = lvl
        while k < n:
            e = block_end[k]
            for j in range(e - 1, k - 1, -1):
                mem = guests[j].mem
                if mem > largest or mem > r:
                    break
                r -= mem
                ub += w[j]
            k = e
        return ub

    # Identical guests are interchangeable: the later one never takes a host ranked before the
    # earlier one's, and is left down whenever the earlier one is.
    twin_of: dict[tuple, int] = {}
    prev_twin = [-1] * n
    for k, g in enumerate(guests):
        key = (g.mem, g.vcpus, g.tier, g.classes, g.pinned, g.avoided)
        prev_twin[k] = twin_of.get(key, -1)
        twin_of[key] = k

    def candidates(lvl: int) -> list[int]:
        """Hosts to try for the guest at level ``lvl``, best fit first; -1 = leave it down."""
        g = guests[lvl]
        seen = set()
        out = []
        floor = -1
        if prev_twin[lvl] >= 0:
            hp = st.where[guests[prev_twin[lvl]].idx]
            if hp is None:
                return [-1]
            floor = m.rank[hp]
        # Best fit first: the first dive is best-fit decreasing, which packs far better than the
        # seed strategies; settle() afterwards moves guests back to their greedy hosts.
        hosts = sorted(
            (h for h in usable if m.rank[h] >= floor and st.fits(g, h)),
            key=lambda h: (st.room_mib[h], m.rank[h]),
        )
        for h in hosts:
            # Hosts in the same state with the same static rules are interchangeable.
            sig = (sig_static[h], st.host_signature(h))
            if sig in seen:
                continue
            seen.add(sig)
            out.append(h)
        out.append(-1)  # leave the guest down
        return out

    root_ub = bound(0)
    if best_primary >= root_ub:
        return ExactResult(None, True, 0)
    # Cheap starting points before branching: best-fit and worst-fit decreasing from scratch,
    # and best fit smallest first (most guests when the cluster is overloaded). The branching's
    # own first dive differs: identical guests take hosts in a fixed order.
    smallest_first = sorted(guests, key=lambda g: (g.tier, g.mem, g.vcpus, g.name))
    for picker, seq in ((Pack, guests), (Balanced, guests), (Pack, smallest_first)):
        trial = _one_pass(m, picker, seq, incumbent.relaxed)
        score = sum(w[i] for i, g in enumerate(guests) if trial.where[g.idx] is not None)
        if score > best_primary:
            best_primary, best_where = score, list(trial.where)
    if best_primary >= root_ub:
        return ExactResult(best_where, True, 0)
    nodes = 0
    timed_out = False
    cur_primary = 0
    frames: list[list] = [[candidates(0), 0, None]]
    while frames:
        nodes += 1
        if nodes > BNB_NODES or (nodes % _CLOCK_EVERY == 0 and budget.out_of_time()):
            timed_out = True
            break
        lvl = len(frames) - 1
        frame = frames[-1]
        g = guests[lvl]
        if frame[2] is not None and frame[2] >= 0:
            st.remove(g)
            cur_primary -= w[lvl]
        frame[2] = None
        if frame[1] >= len(frame[0]):
            frames.pop()
            continue
        h = frame[0][frame[1]]
        frame[1] += 1
        frame[2] = h
        if h >= 0:
            st.place(g, h)
            cur_primary += w[lvl]
        nxt = lvl + 1
        if nxt == n:
            if cur_primary > best_primary:
                best_primary = cur_primary
                best_where = list(st.where)
                if best_primary >= root_ub:
                    break
            continue
        # Prune on the tier-weighted count only: the secondary wish (keep greedy hosts) is
        # served by trying the greedy host first and by settle() afterwards, not by search.
        if cur_primary + bound(nxt) <= best_primary:
            continue
        frames.append([candidates(nxt), 0, None])
    proven = not timed_out or best_primary >= root_ub
    budget.nodes += nodes
    return ExactResult(best_where if best_where is not None else None, proven, nodes)


def _one_pass(m: Model, picker: type[Picker], guests: list[PGuest], relaxed: set[int]) -> State:
    """Place ``guests`` in the given order from scratch with one strategy's host rule."""
    st = State(m)
    st.relaxed = set(relaxed)
    p = picker(m, st)
    for i, g in enumerate(guests):
        choice = p.pick(g, i)
        if choice is not None:
            st.place(g, choice[0])
            p.update(choice[0])
    return st


def _static_signatures(m: Model, guests: list[PGuest]) -> dict[int, int]:
    # Two hosts are interchangeable for the search when every guest's pin/avoid treats them
    # alike, they have the same vCPU cap and sit in the same failure domain for every
    # domain-spread class.
    dom_classes = [c for c, cl in enumerate(m.classes) if cl.spread == "domain"]
    ids: dict[tuple, int] = {}
    out: dict[int, int] = {}
    restricted = [g for g in guests if g.pinned is not None or g.avoided]
    for h in m.usable:
        key = (
            m.vcpu.cap[h],
            tuple(m.classes[c].unit_of[h] for c in dom_classes),
            frozenset(g.idx for g in restricted if not g.ok(h)),
        )
        out[h] = ids.setdefault(key, len(ids))
    return out


class _SubsetSums:
    """Which totals the guests from position k on can make (bitsets of reachable RAM sums).

    ``fill(k, room)`` is the largest total of some of those guests that is <= room: no host can
    hold more of them than that. Sizes are divided by their greatest common divisor (often
    256 or 512 MiB) to keep the bitsets small; too large instances fall back to ``room``.
    """

    LIMIT_BITS = 1 << 27  # 16 MiB of bitsets in all

    def __init__(self, sizes: list[int]) -> None:
        self.unit = 0
        for s in sizes:
            self.unit = math.gcd(self.unit, s)
        self.unit = self.unit or 1
        scaled = [s // self.unit for s in sizes]
        total = sum(scaled)
        self.bits: list[int] | None = None
        if total * (len(sizes) + 1) > self.LIMIT_BITS:
            return
        bits = [1] * (len(sizes) + 1)
        for k in range(len(sizes) - 1, -1, -1):
            bits[k] = bits[k + 1] | (bits[k + 1] << scaled[k])
        self.bits = bits
        self.total = total

    def fill(self, k: int, room: int) -> int:
        """Largest reachable total of guests k.. that is <= room (in MiB)."""
        if self.bits is None or room <= 0:
            return max(room, 0)
        r = room // self.unit
        if r >= self.total:
            return self.total * self.unit
        x = self.bits[k] & ((1 << (r + 1)) - 1)
        return (x.bit_length() - 1) * self.unit


# --- vector packing ----------------------------------------------------------------------------


def vector_packing(
    m: Model, incumbent: State, budget: Budget, seed: int = 0
) -> list[int | None] | None:
    """Layouts from scratch that weigh RAM and vCPUs together; the best if it beats ``incumbent``.

    Greedy orders by RAM alone fail where RAM and vCPUs bind together. These passes size each
    guest by its larger share of the cluster's room (RAM or vCPUs), largest first, and put it
    where it leaves the least room wasted in both; then they retry with perturbed orders until
    every guest is placed or VECTOR_PASSES passes are done. Cheap (milliseconds a pass), and
    often enough.
    """
    import random

    weights = m.weights()
    hosts = sorted(m.usable, key=lambda h: m.rank[h])
    if not hosts:
        return None
    ram0 = {h: max(m.ram.room_mib[h], 1) for h in hosts}
    vroom0: dict[int, float] = {}
    for h in hosts:
        cap = m.vcpu.cap[h]
        vroom0[h] = max(cap - m.vcpu.running[h], 1.0) if cap is not None else float("inf")
    total_ram = sum(ram0.values())
    finite = [v for v in vroom0.values() if v != float("inf")]
    total_v = sum(finite) if finite else float("inf")

    def size(g: PGuest) -> float:
        return max(g.mem / total_ram, g.vcpus / total_v if total_v != float("inf") else 0.0)

    base = sorted(m.guests, key=lambda g: (g.tier, -size(g), g.name))
    score_now = sum(weights[g.tier] for g in m.guests if incumbent.where[g.idx] is not None)
    target = sum(weights[g.tier] for g in m.guests)
    best: list[int | None] | None = None
    best_score = score_now
    rng = random.Random(seed)
    attempt = 0
    # A fixed number of passes, not "until the clock": the same input gives the same layout.
    while attempt < VECTOR_PASSES and best_score < target and not budget.out_of_time():
        if attempt == 0:
            seq = base
        else:
            noise = {g.idx: rng.uniform(0.8, 1.25) for g in base}
            seq = sorted(base, key=lambda g: (g.tier, -size(g) * noise[g.idx], g.name))
        mode = attempt % 2
        st = State(m)
        st.relaxed = set(incumbent.relaxed)
        for g in seq:
            pick, pick_key = None, None
            for h in hosts:
                if not st.fits(g, h):
                    continue
                r_left = (st.room_mib[h] - g.mem) / ram0[h]
                if vroom0[h] == float("inf"):
                    v_left = 0.0
                else:
                    cap = m.vcpu.cap[h]
                    assert cap is not None
                    v_left = (cap - st.counter(m.vcpu)[h] - g.vcpus) / vroom0[h]
                # Best fit on the sum of the leftovers, or on the larger one.
                key = (r_left + v_left) if mode == 0 else max(r_left, v_left)
                if pick_key is None or key < pick_key:
                    pick, pick_key = h, key
            if pick is not None:
                st.place(g, pick)
        got = sum(weights[g.tier] for g in m.guests if st.where[g.idx] is not None)
        if got > best_score:
            best, best_score = list(st.where), got
        attempt += 1
    return best
