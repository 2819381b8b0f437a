"""Time to all-up: expected start times, the schedule a layout allows, and the pass that
places the planned guests for the earliest expected all-up (policy.objective).

Pure: the audit log is read by xenfab.history (``start_samples``); here only numbers.

The model (docs/policy.md, "Time to all-up"): tiers start one after another (the engine opens
tier 2 when tier 1 is done). Within a tier, host ``h`` runs its queue with at most
``per_host`` starts at a time, longest expected start first (list scheduling); the tier's
expected time is the largest of the hosts' makespans, and never less than the tier's total
work / ``in_flight`` (the global cap). The all-up time is the sum over tiers.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import StartPolicy

if TYPE_CHECKING:
    from ..values import Guest
    from .model import Model, PGuest, State

# The start policy's defaults: used when a plan is made without the run's caps (tests,
# what-ifs); the run passes its own (run/facts.py).
_START = StartPolicy()
DEFAULT_PER_HOST = _START.max_starts_per_host
DEFAULT_IN_FLIGHT = _START.max_starts_in_flight
DEFAULT_BOOT_S = _START.boot_estimate_s
# Size classes by maxmem (memory when maxmem is unset): upper bounds in MiB; above the last,
# one class. A guest with no start of its own in the history gets its class's median.
SIZE_CLASSES_MIB = (1024, 2048, 4096, 8192, 16384, 32768, 65536)
# Samples kept per guest (the newest): a guest's boot drifts with its disk and its services.
KEEP_SAMPLES = 20
HISTORY, SIZE_CLASS, ESTIMATE = "history", "size class", "estimate"


def size_class(maxmem_mib: int) -> str:
    """The size class of a guest of ``maxmem_mib``: '<=1G', '<=2G', ... '<=64G', '>64G'."""
    for bound in SIZE_CLASSES_MIB:
        if maxmem_mib <= bound:
            return f"<={bound // 1024}G"
    return f">{SIZE_CLASSES_MIB[-1] // 1024}G"


def guest_size(guest: Guest) -> int:
    """The MiB a guest's size class is read from: maxmem, else memory."""
    return guest.maxmem_mib if guest.maxmem_mib else guest.memory_mib


@dataclass(frozen=True)
class Estimate:
    """A guest's expected seconds from start command to ready, and where the figure comes from."""

    seconds: float
    source: str  # HISTORY, SIZE_CLASS or ESTIMATE
    samples: int = 0


def expected_times(
    guests: Iterable[Guest],
    samples: Mapping[str, list[float]],
    boot_estimate_s: float = DEFAULT_BOOT_S,
) -> dict[str, Estimate]:
    """Per guest: the median of its own past starts; else the median of its size class's
    guests (each guest's own median counted once); else ``boot_estimate_s``."""
    guests = list(guests)
    own: dict[str, float] = {}
    for g in guests:
        mine = [s for s in samples.get(g.name, ()) if s >= 0 and math.isfinite(s)]
        if mine:
            own[g.name] = statistics.median(mine[-KEEP_SAMPLES:])
    by_class: dict[str, list[float]] = {}
    for g in guests:
        if g.name in own:
            by_class.setdefault(size_class(guest_size(g)), []).append(own[g.name])
    out: dict[str, Estimate] = {}
    for g in guests:
        if g.name in own:
            n = min(len(samples[g.name]), KEEP_SAMPLES)
            out[g.name] = Estimate(round(own[g.name], 2), HISTORY, n)
            continue
        peers = by_class.get(size_class(guest_size(g)))
        if peers:
            out[g.name] = Estimate(round(statistics.median(peers), 2), SIZE_CLASS, len(peers))
        else:
            out[g.name] = Estimate(float(boot_estimate_s), ESTIMATE)
    return out


@dataclass(frozen=True)
class Timing:
    """What the plan knows of starting: the caps and each guest's expected start time."""

    per_host: int = DEFAULT_PER_HOST
    in_flight: int = DEFAULT_IN_FLIGHT
    boot_estimate_s: float = DEFAULT_BOOT_S
    estimates: Mapping[str, Estimate] = field(default_factory=dict)
    # Seconds at least between two start commands as past runs sent them (the median gap
    # between consecutive intents of a run; history.start_gap_s): the engine's dispatch. Used
    # for the expected schedule only: it is the same for every layout.
    dispatch_s: float = 0.0

    def seconds(self, guest: str) -> float:
        """Expected seconds from ``guest``'s start command to ready."""
        found = self.estimates.get(guest)
        return found.seconds if found is not None else self.boot_estimate_s

    def source(self, guest: str) -> str:
        """Where ``guest``'s figure comes from: history, size class or estimate."""
        found = self.estimates.get(guest)
        return found.source if found is not None else ESTIMATE


def makespan(durations: list[float], cap: int) -> float:
    """List scheduling, longest first, on ``cap`` slots: when the last one ends."""
    if not durations:
        return 0.0
    if len(durations) <= cap:
        return max(durations)
    slots = [0.0] * cap
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(slots, slots[0] + d)
    return max(slots)


def tier_time(per_host: Mapping[int, list[float]], timing: Timing) -> float:
    """A tier's expected time: the busiest host's makespan, at least total work / global cap."""
    work = sum(sum(ds) for ds in per_host.values())
    hosts = max((makespan(ds, timing.per_host) for ds in per_host.values()), default=0.0)
    return max(hosts, work / max(timing.in_flight, 1))


def objective(m: Model, st: State, timing: Timing) -> tuple[float, ...]:
    """Per tier (most important first), its expected time under the caps."""
    tiers: dict[int, dict[int, list[float]]] = {}
    for g in m.guests:
        h = st.where[g.idx]
        if h is not None:
            tiers.setdefault(g.tier, {}).setdefault(h, []).append(timing.seconds(g.name))
    return tuple(round(tier_time(tiers[t], timing), 6) for t in sorted(tiers))


def sticky_count(m: Model, st: State) -> int:
    """Guests planned on their last owner."""
    return sum(1 for g in m.guests if g.last_owner is not None and st.where[g.idx] == g.last_owner)


@dataclass
class Schedule:
    """The expected schedule of a layout: per guest when its start is sent and when it is ready."""

    start_s: dict[str, float] = field(default_factory=dict)
    ready_s: dict[str, float] = field(default_factory=dict)
    tiers_s: dict[int, float] = field(default_factory=dict)  # tier -> all up at (from 0)
    all_up_s: float = 0.0


def simulate(
    jobs: Iterable[tuple[str, str, int, float]],
    timing: Timing,
    gates: Mapping[str, float] | None = None,
) -> Schedule:
    """Play the engine's schedule on ``jobs`` (guest, host, tier, seconds): tiers in turn; within
    a tier every free slot filled at once, the host with the most queued work first, its longest
    start first; at most ``per_host`` per host and ``in_flight`` in all.

    ``gates``: a guest's start delay (the manager's, e.g. XAPI's ``start-delay``): the next tier
    opens no sooner than that long after the guest is up, as the engine waits it.
    """
    out = Schedule()
    by_tier: dict[int, list[tuple[str, str, float]]] = {}
    for guest, host, tier, seconds in jobs:
        by_tier.setdefault(tier, []).append((guest, host, seconds))
    gates = gates or {}
    now = 0.0
    for tier in sorted(by_tier):
        now = _play(by_tier[tier], timing, now, out)
        out.tiers_s[tier] = round(now, 2)
        waits = [out.ready_s[g] + gates[g] for g, _, _ in by_tier[tier] if gates.get(g)]
        now = max([now, *waits])
    # A start delay after the last tier holds nothing back.
    out.all_up_s = max(out.tiers_s.values(), default=0.0)
    return out


def _play(jobs: list[tuple[str, str, float]], timing: Timing, now: float, out: Schedule) -> float:
    queues: dict[str, list[tuple[float, str]]] = {}
    for guest, host, seconds in jobs:
        queues.setdefault(host, []).append((seconds, guest))
    for q in queues.values():
        q.sort(key=lambda j: (-j[0], j[1]))
        q.reverse()  # pop() takes the longest (then the first name)
    work = {h: sum(s for s, _ in q) for h, q in queues.items()}
    busy = dict.fromkeys(queues, 0)
    running: list[tuple[float, str, str]] = []  # (ready at, host, guest)
    end = now
    gap = max(timing.dispatch_s, 0.0)
    next_send = now
    # Hosts that may start now, most queued work first. Lazy: an entry is dropped when its
    # host is empty, full (pushed again when one of its starts ends) or stale (a fresher exists).
    ready: list[tuple[float, str]] = [(-work[h], h) for h in queues]
    heapq.heapify(ready)

    def top() -> str | None:
        while ready:
            neg, host = ready[0]
            if queues[host] and busy[host] < timing.per_host and -neg == work[host]:
                return host
            heapq.heappop(ready)
        return None

    while True:
        host = top() if len(running) < timing.in_flight else None
        if host is not None and next_send <= now + 1e-9:
            heapq.heappop(ready)
            seconds, guest = queues[host].pop()
            work[host] -= seconds
            busy[host] += 1
            out.start_s[guest] = round(now, 2)
            heapq.heappush(running, (now + seconds, host, guest))
            next_send = now + gap
            if queues[host] and busy[host] < timing.per_host:
                heapq.heappush(ready, (-work[host], host))
            continue
        # The next event: the dispatcher free again (when a start may go), or a start ending.
        if host is not None and (not running or next_send < running[0][0]):
            now = next_send
            continue
        if not running:
            return end
        at, host, guest = heapq.heappop(running)
        now = end = max(end, at)
        out.ready_s[guest] = round(at, 2)
        busy[host] -= 1
        if queues[host] and busy[host] == timing.per_host - 1:
            heapq.heappush(ready, (-work[host], host))


def _bounds(m: Model, placed: list[PGuest], timing: Timing) -> tuple[float, ...]:
    """Per tier, the least time any layout of ``placed`` on the usable hosts can take."""
    tiers: dict[int, list[float]] = {}
    for g in placed:
        tiers.setdefault(g.tier, []).append(timing.seconds(g.name))
    return tuple(round(lower_bound(tiers[t], len(m.usable), timing), 6) for t in sorted(tiers))


def lower_bound(durations: list[float], hosts: int, timing: Timing) -> float:
    """No layout of these starts on ``hosts`` hosts ends a tier sooner than this."""
    if not durations or hosts <= 0:
        return 0.0
    work = sum(durations)
    slots = min(hosts * timing.per_host, timing.in_flight)
    return max(max(durations), work / slots)


def optimise(m: Model, st: State, why: dict[int, str], timing: Timing) -> tuple[State, list[int]]:
    """The placed guests laid out for the objective (policy.objective), the same guests placed.

    ``all-up``: the earliest expected all-up, tier by tier, then the most guests on their last
    owner. ``last-owner``: every guest the layout put on its last owner stays; the others are
    laid out for time. Guests on a preferred host or placed by relaxing a soft rule stay where
    they are. Returns the state (``st`` itself when nothing better was found) and the guests
    moved, whose ``why`` is rewritten.
    """
    placed = [g for g in m.guests if st.where[g.idx] is not None]
    if len(placed) < 2 or len(m.usable) < 2:
        return st, []
    last_owner = m.policy.objective == "last-owner"

    def stays(g: PGuest) -> bool:
        h = st.where[g.idx]
        return (
            h in g.prefer
            or g.idx in st.relaxed
            or (last_owner and g.last_owner is not None and h == g.last_owner)
        )

    free = [g for g in placed if not stays(g)]
    if not free:
        return st, []

    # Already as fast as any layout can be (each tier at its lower bound, e.g. the global cap
    # binds): nothing to gain in time, and greedy already put back every last owner it could.
    now, bounds = objective(m, st, timing), _bounds(m, placed, timing)
    if all(a <= b + 1e-6 for a, b in zip(now, bounds, strict=True)):
        return st, []
    # Layouts whose tiers end within a step of each other are equally fast: the estimates are
    # medians of noisy starts, and a last owner is worth more than a fraction of a second.
    grid = tuple(max(MIN_STEP_S, STEP * b) for b in bounds)

    def score(state: State) -> tuple:
        time, sticky = steps(objective(m, state, timing), grid), -sticky_count(m, state)
        return (sticky, time) if last_owner else (time, sticky)

    # `pack` keeps whole hosts free: the starts are spread over the hosts it used, no others.
    hosts = m.usable
    if m.policy.strategy == "pack":
        used = {st.where[g.idx] for g in placed}
        hosts = [h for h in m.usable if h in used]
    best, best_score = st, score(st)
    # Ways to favour last owners: first (up to the tier's bound), only among equal ends, or
    # (all-up) keeping every guest already on its last owner, as last-owner does.
    kept = [g for g in free if g.last_owner is None or st.where[g.idx] != g.last_owner]
    tries = [(free, True), (free, False)]
    if not last_owner and len(kept) < len(free):
        tries.append((kept, True))
    for moving, first in tries:
        trial = _rebuild(m, st, moving, timing, hosts, sticky_first=first)
        if trial is not None and score(trial) < best_score:
            best, best_score = trial, score(trial)
        if len(moving) * len(hosts) <= CAPPED_WORK:
            trial = _capped(m, st, moving, timing, hosts, sticky=first)
            if trial is not None and score(trial) < best_score:
                best, best_score = trial, score(trial)
    polished = _polish(m, best, free, timing, hosts, last_owner, grid)
    if score(polished) < best_score:
        best = polished
    if best is st:
        return st, []
    trial = best
    moved = [g.idx for g in placed if trial.where[g.idx] != st.where[g.idx]]
    times = (objective(m, st, timing), objective(m, trial, timing))
    for idx in moved:
        why[idx] = _moved_text(m, st, trial, m.guests[idx], times)
    return trial, moved


def _rebuild(
    m: Model,
    st: State,
    free: list[PGuest],
    timing: Timing,
    hosts: list[int],
    *,
    sticky_first: bool,
) -> State | None:
    """``free`` taken off and placed again tier by tier, longest start first, each where its
    start ends soonest; a guest goes back to its last owner when that ends no later than the
    tier's bound (``sticky_first``: those guests before the others) or than any other host.
    None when one of them no longer fits anywhere."""
    trial = st.copy()
    for g in free:
        trial.remove(g)
    free_ids = {g.idx for g in free}
    for tier in sorted({g.tier for g in free}):
        # Each host's start slots, already holding the tier's guests that stay.
        slots: dict[int, list[float]] = {h: [0.0] * timing.per_host for h in hosts}
        stay = [
            g
            for g in m.guests
            if g.tier == tier and trial.where[g.idx] is not None and g.idx not in free_ids
        ]
        for g in sorted(stay, key=lambda g: (-timing.seconds(g.name), g.name)):
            h = trial.where[g.idx]
            if h in slots:
                heapq.heapreplace(slots[h], slots[h][0] + timing.seconds(g.name))
        mine = sorted(
            (g for g in free if g.tier == tier),
            key=lambda g: (-timing.seconds(g.name), -g.mem, -g.vcpus, g.name),
        )
        durations = [timing.seconds(g.name) for g in (*mine, *stay)]
        target = lower_bound(durations, len(hosts), timing)
        target = max(target, max((max(s) for s in slots.values()), default=0.0))
        later = []
        for g in mine:
            lo = g.last_owner
            d = timing.seconds(g.name)
            if (
                lo is not None
                and lo in slots
                and slots[lo][0] + d <= target + 1e-9
                and g.ok(lo)
                and trial.fits(g, lo)
                and sticky_first
            ):
                trial.place(g, lo)
                heapq.heapreplace(slots[lo], slots[lo][0] + d)
            else:
                later.append(g)
        # Hosts by when their next slot frees, then the most room (worst fit: big guests go
        # first, to the roomy hosts, and leave the small hosts the small guests), then rank.
        heap = [(slots[h][0], -trial.room_mib[h], m.rank[h], h) for h in hosts]
        heapq.heapify(heap)
        for g in later:
            d = timing.seconds(g.name)
            host = _earliest(m, trial, g, heap, slots)
            if host is None:
                return None
            lo = g.last_owner
            # Its last owner when it ends there no later than on the host found.
            if (
                lo is not None
                and lo != host
                and lo in slots
                and slots[lo][0] <= slots[host][0] + 1e-9
                and g.ok(lo)
                and trial.fits(g, lo)
            ):
                heapq.heappush(heap, _entry(trial, slots, m, host))
                host = lo
            trial.place(g, host)
            heapq.heapreplace(slots[host], slots[host][0] + d)
            heapq.heappush(heap, _entry(trial, slots, m, host))
    return trial


# The capped packing's size limit (guests x hosts) and its targets: the tier's lower bound, then
# 2% more at a time.
CAPPED_WORK = 400_000
CAPPED_STEPS = 26


def _capped(
    m: Model, st: State, free: list[PGuest], timing: Timing, hosts: list[int], *, sticky: bool
) -> State | None:
    """``free`` placed again for a target time per tier, the lowest that works: largest guest
    first, to its last owner (``sticky``) or the roomiest host whose slots still end by the
    target. RAM binds where start slots are plenty, so the order is by size here."""
    trial = st.copy()
    for g in free:
        trial.remove(g)
    free_ids = {g.idx for g in free}
    for tier in sorted({g.tier for g in free}):
        mine = sorted((g for g in free if g.tier == tier), key=lambda g: (-g.mem, -g.vcpus, g.name))
        stay = [
            g
            for g in m.guests
            if g.tier == tier and trial.where[g.idx] is not None and g.idx not in free_ids
        ]
        durations = [timing.seconds(g.name) for g in (*mine, *stay)]
        low = lower_bound(durations, len(hosts), timing)
        for step in range(CAPPED_STEPS):
            target = low * (1 + 0.02 * step) + 1e-9
            attempt = _fill(m, trial, mine, stay, timing, hosts, target, sticky)
            if attempt is not None:
                trial = attempt
                break
        else:
            return None
    return trial


def _fill(
    m: Model,
    base: State,
    mine: list[PGuest],
    stay: list[PGuest],
    timing: Timing,
    hosts: list[int],
    target: float,
    sticky: bool,
) -> State | None:
    trial = base.copy()
    slots: dict[int, list[float]] = {h: [0.0] * timing.per_host for h in hosts}
    for g in sorted(stay, key=lambda g: (-timing.seconds(g.name), g.name)):
        h = trial.where[g.idx]
        if h in slots:
            heapq.heapreplace(slots[h], slots[h][0] + timing.seconds(g.name))
    for g in mine:
        d = timing.seconds(g.name)
        lo = g.last_owner
        if sticky and lo in slots and slots[lo][0] + d <= target and g.ok(lo) and trial.fits(g, lo):
            host = lo
        else:
            host, room = None, -1
            for h in hosts:
                fast = slots[h][0] + d <= target and trial.room_mib[h] > room
                if fast and g.ok(h) and trial.fits(g, h):
                    host, room = h, trial.room_mib[h]
            if host is None:
                return None
        trial.place(g, host)
        heapq.heapreplace(slots[host], slots[host][0] + d)
    return trial


# Equally fast: tier times within the same step of STEP x the tier's lower bound (at least
# MIN_STEP_S seconds).
STEP = 0.02
MIN_STEP_S = 0.1
# Moves and swaps the polish step may try (deterministic work, not wall time).
# Each try rescans the hosts, so the count shrinks with them: 20,000 on 20 hosts, 2,000 on 200.
POLISH_TRIES = 20_000
POLISH_WORK = 400_000


def steps(times: tuple[float, ...], grid: tuple[float, ...]) -> tuple[int, ...]:
    """Each tier's time in steps of its grid (equal steps: equally fast)."""
    return tuple(math.floor(t / q + 1e-9) for t, q in zip(times, grid, strict=True))


def _polish(
    m: Model,
    start: State,
    free: list[PGuest],
    timing: Timing,
    hosts: list[int],
    last_owner: bool,
    grid: tuple[float, ...],
) -> State:
    """Local search from ``start``: move a guest off a host that ends its tier last, or swap it
    with a shorter one, while the objective improves (the tier's time, then how many hosts
    end it last, then last owners), then moves and swaps onto last owners that cost no time;
    at most POLISH_TRIES tries, fewer on many hosts (POLISH_WORK / hosts)."""
    st = start.copy()
    free_ids = {g.idx for g in free}
    allowed = set(hosts)
    cap, glob = timing.per_host, max(timing.in_flight, 1)
    sec = {g.idx: timing.seconds(g.name) for g in m.guests}
    on: dict[int, dict[int, list[int]]] = {}  # tier -> host -> guests
    for g in m.guests:
        h = st.where[g.idx]
        if h is not None:
            on.setdefault(g.tier, {}).setdefault(h, []).append(g.idx)
    tiers = sorted(on)
    span = {t: {h: makespan([sec[i] for i in gs], cap) for h, gs in on[t].items()} for t in tiers}
    work = {t: sum(sec[i] for gs in on[t].values() for i in gs) / glob for t in tiers}
    sticky = [sticky_count(m, st)]
    limit = max(500, min(POLISH_TRIES, POLISH_WORK // max(len(hosts), 1)))

    def tier_key(t: int) -> tuple[float, int, float]:
        # The tier's time, then how many hosts end it, then their work: moving a start off such
        # a host is progress even before its makespan drops (k and k - 1 starts may end alike).
        top = max(span[t].values(), default=0.0)
        if top <= work[t] + 1e-9:
            return (round(work[t], 6), 0, 0.0)
        last = [h for h, v in span[t].items() if v >= top - 1e-9]
        load = sum(sec[i] for h in last for i in on[t][h])
        return (round(top, 6), len(last), round(load, 6))

    def key() -> tuple:
        times = tuple(tier_key(t) for t in tiers)
        return (-sticky[0], times) if last_owner else (times, -sticky[0])

    def shift(g: PGuest, frm: int, to: int) -> None:
        st.remove(g)
        st.place(g, to)
        on[g.tier][frm].remove(g.idx)
        on[g.tier].setdefault(to, []).append(g.idx)
        for h in (frm, to):
            span[g.tier][h] = makespan([sec[i] for i in on[g.tier][h]], cap)
        sticky[0] += (to == g.last_owner) - (frm == g.last_owner)

    def can(g: PGuest, h: int) -> bool:
        return h in allowed and g.ok(h) and st.fits(g, h)

    def better(moves: list[tuple[PGuest, int, int]], score: Callable[[], tuple], now: tuple):
        """Make ``moves`` (guest, from, to); kept and the new score when it beats ``now``, else
        undone (in reverse) and None."""
        for g, frm, to in moves:
            shift(g, frm, to)
        new = score()
        if new < now:
            return new
        for g, frm, to in reversed(moves):
            shift(g, to, frm)
        return None

    tries = 0
    current = key()
    improved = True
    while improved and tries < limit:
        improved = False
        for t in tiers:
            top = max(span[t].values(), default=0.0)
            if top <= work[t] + 1e-9:
                continue  # the global cap, not a host, sets this tier's time
            crit = sorted(
                (h for h, v in span[t].items() if v >= top - 1e-9), key=m.rank.__getitem__
            )
            others = sorted(allowed, key=lambda h: (span[t].get(h, 0.0), m.rank[h]))
            for h in crit:
                mine = sorted(
                    (i for i in on[t][h] if i in free_ids),
                    key=lambda i: (-sec[i], m.guests[i].name),
                )
                for i in mine:
                    g = m.guests[i]
                    for h2 in others:
                        if h2 == h or tries >= limit:
                            continue
                        tries += 1
                        if _move_fits(st, can, g, h, h2):
                            new = better([(g, h, h2)], key, current)
                            if new is not None:
                                current, improved = new, True
                                break
                        # A swap with a shorter guest of the tier there.
                        for j in sorted(
                            on[t].get(h2, ()), key=lambda j: (sec[j], m.guests[j].name)
                        ):
                            if j not in free_ids or sec[j] >= sec[i] or tries >= limit:
                                continue
                            tries += 1
                            g2 = m.guests[j]
                            if not _swap_fits(st, can, g, h, g2, h2):
                                continue
                            new = better([(g, h, h2), (g2, h2, h)], key, current)
                            if new is not None:
                                current, improved = new, True
                                break
                        if improved:
                            break
                    if improved:
                        break
                if improved:
                    break
            if improved:
                break

    # Then last owners: a guest moved to its last owner, or swapped with a guest there that is
    # not on its own, as long as no tier ends later (the key says so).
    def key2() -> tuple:
        times = steps(tuple(max(tier_key(t)[0], work[t]) for t in tiers), grid)
        return (-sticky[0], times) if last_owner else (times, -sticky[0])

    current = key2()
    tries = 0  # its own budget: the search for time may have spent the first
    for g in sorted((m.guests[i] for i in free_ids), key=lambda g: g.name):
        h, lo = st.where[g.idx], g.last_owner
        if lo is None or h == lo or lo not in allowed or tries >= limit:
            continue
        tries += 1
        if _move_fits(st, can, g, h, lo):
            new = better([(g, h, lo)], key2, current)
            if new is not None:
                current = new
                continue
        mates = sorted(
            (j for j in on[g.tier].get(lo, ()) if j in free_ids),
            key=lambda j: (abs(sec[j] - sec[g.idx]), m.guests[j].name),
        )
        for j in mates:
            g2 = m.guests[j]
            if g2.last_owner == lo or tries >= limit:
                continue
            tries += 1
            if not _swap_fits(st, can, g, h, g2, lo):
                continue
            new = better([(g, h, lo), (g2, lo, h)], key2, current)
            if new is not None:
                current = new
                break
    return st


def _move_fits(st: State, can: Callable[[PGuest, int], bool], g: PGuest, h: int, h2: int) -> bool:
    """Whether ``g`` (on ``h``) may move to ``h2``; ``st`` is left as it was."""
    st.remove(g)
    ok = can(g, h2)
    st.place(g, h)
    return ok


def _swap_fits(
    st: State, can: Callable[[PGuest, int], bool], g: PGuest, h: int, g2: PGuest, h2: int
) -> bool:
    """Whether ``g`` (on ``h``) and ``g2`` (on ``h2``) may trade hosts; ``st`` is left as it was."""
    st.remove(g)
    st.remove(g2)
    ok = can(g, h2)
    if ok:
        st.place(g, h2)
        ok = can(g2, h)
        st.remove(g)
    st.place(g, h)
    st.place(g2, h2)
    return ok


def _entry(trial: State, slots: dict, m: Model, h: int) -> tuple[float, int, int, int]:
    return (slots[h][0], -trial.room_mib[h], m.rank[h], h)


def _earliest(
    m: Model, trial: State, g: PGuest, heap: list[tuple[float, int, int, int]], slots: dict
) -> int | None:
    """The host whose next free slot comes first (then the roomiest) that takes ``g``."""
    popped: list[tuple[float, int, int, int]] = []
    found = None
    while heap:
        item = heapq.heappop(heap)
        h = item[3]
        if item != _entry(trial, slots, m, h) or any(p[3] == h for p in popped):
            continue  # stale (the host's slots or room changed since), or seen already
        popped.append(item)
        if g.ok(h) and trial.fits(g, h):
            found = h
            break
    for item in popped:
        if item[3] != found:
            heapq.heappush(heap, item)
    return found


def _moved_text(
    m: Model, st: State, trial: State, g: PGuest, times: tuple[tuple[float, ...], ...]
) -> str:
    """Why the time pass moved ``g``: from where, what its tier's expected time became."""
    was, to = st.where[g.idx], trial.where[g.idx]
    assert was is not None and to is not None
    # Figures of the new host before g is charged there (as every why says them).
    trial.remove(g)
    fit = trial.placed_text(g, to)
    trial.place(g, to)
    if to == g.last_owner:
        return f"last owner ({fit})"
    tiers = sorted({x.tier for x in m.guests if st.where[x.idx] is not None})
    before, after = (dict(zip(tiers, t, strict=True)) for t in times)
    whose = "its last owner" if was == g.last_owner else "the first layout's"
    said = (
        f"tier {g.tier} all up in {after[g.tier]:g} s, not {before[g.tier]:g} s"
        if after[g.tier] < before[g.tier]
        else "an earlier tier ends sooner"
        if after != before
        else "more guests on their last owner"
    )
    return f"time to all-up: moved from {m.host_name(was)} ({whose}): {said} ({fit})"
