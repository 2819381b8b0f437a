"""The exact search: a mixed-integer program over guest *kinds*, solved by HiGHS (highspy).

Guests that are alike for every rule (same size, vCPUs, tier, classes, pin and avoid) are one
kind, and the program counts how many of each kind go on each host: y[kind, host] integer. That
removes the symmetry between identical guests that made the guest-by-guest branch and bound
miss layouts that exist. The constraints come from the rule objects themselves (each rule's
``rows`` and ``kind_key``), so the program and the greedy pass cannot disagree on what fits.
HiGHS starts from the greedy layout (a feasible solution), and its answer is proven optimal when
its status says so.

Objective: the tier-weighted number of guests placed (one guest of a tier outweighs all of the
later tiers). When those weights would lose precision in floating point, the tiers are solved
one after the other instead (each at its best, the next maximised under it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import Model, PGuest, State
from .rules import Kind, Row, solver_rows

if TYPE_CHECKING:
    from .budget import Budget

# The keep-greedy-hosts tie-break's solver nodes once the guests placed are optimal; 0 = off.
# Off by default: HiGHS's root node alone took up to 10 s on the benchmark's tight instances
# (and node counts are the only work limit HiGHS has); the planner's settle step (search._adopt)
# moves guests back to their greedy hosts instead.
KEEP_NODES = 0
# HiGHS's own random seed, fixed: with one thread and node limits its path is then the same in
# every run (HiGHS has no wall-clock decisions besides time_limit, our safety stop).
RANDOM_SEED = 15
HIGHS_OPTIONS: dict[str, object] = {}
# Floats hold integers exactly up to 2**53; keep a margin for the solver's own arithmetic.
_EXACT_FLOAT = 1 << 40


@dataclass
class Program:
    """Kinds of guests, the (kind, host) columns that may be non-zero, and the rules' rows."""

    kinds: list[Kind]
    columns: list[tuple[int, int]]  # (kind index, host index)
    upper: list[int]  # per column: most guests of that kind the host can take alone
    rows: list[Row] = field(default_factory=list)


def available() -> bool:
    """True when highspy can be imported (it is a dependency of xenfab)."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


def kinds_of(model: Model, guests: list[PGuest], relaxed: bool) -> list[Kind]:
    """Group ``guests`` into kinds that every rule treats alike, in an order of their own.

    Kinds and their members are sorted by name, not by the snapshot's order, so that the same
    cluster gives the same program (and the same layout) whatever order its lists come in.
    """
    by_key: dict[tuple, list[PGuest]] = {}
    for guest in sorted(guests, key=lambda g: g.name):
        key = (guest.tier, *(rule.kind_key(guest, relaxed) for rule in model.rules))
        by_key.setdefault(key, []).append(guest)

    def order(members: list[PGuest]) -> tuple:
        first = members[0]
        return (first.tier, -first.mem, -first.vcpus, first.name)

    groups = sorted(by_key.values(), key=order)
    return [Kind(i, members[0], [g.idx for g in members]) for i, members in enumerate(groups)]


def build(
    model: Model, base: State, free: list[PGuest], hosts: list[int], relaxed: bool
) -> Program:
    """The program placing the ``free`` guests on ``hosts`` on top of ``base``.

    ``base`` holds the guests that stay where they are (none for the whole problem): the rules
    read their room from it. ``relaxed``: anti-affinity dropped (soft mode's second pass).
    """
    kinds = kinds_of(model, free, relaxed)
    columns: list[tuple[int, int]] = []
    upper: list[int] = []
    for kind in kinds:
        for host in sorted(hosts, key=lambda h: model.rank[h]):
            if not base.fits(kind.example, host):
                continue
            columns.append((kind.index, host))
            upper.append(min(len(kind.members), base.max_copies(kind.example, host)))
    # Each kind has as many guests as it has members, wherever they go.
    per_kind: dict[int, list[tuple[int, int]]] = {}
    for col, (k, _h) in enumerate(columns):
        per_kind.setdefault(k, []).append((col, 1))
    rows = [Row(terms, len(kinds[k].members)) for k, terms in per_kind.items()]
    rows += solver_rows(model.rules, base, kinds, columns, relaxed)
    return Program(kinds, columns, upper, rows)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints its banner on fd 1 when a solver object is made; stdout may carry JSON.

    Fd 1 itself, whatever ``sys.stdout`` is now: a caller capturing sys.stdout in a buffer
    (several environments' JSON) still has the C library writing to the real fd 1.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = 1
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def solve(
    m: Model,
    incumbent: State,
    budget: Budget,
    *,
    threads: int = 1,
    hosts: list[int] | None = None,
    warm_start: bool = True,
    max_nodes: int | None = None,
) -> tuple[list[int | None] | None, bool] | None:
    """(better layout or None, proven optimal) within ``max_nodes``; None when HiGHS is absent.

    The returned layout places strictly more (tier-weighted) than ``incumbent``. With ``hosts``
    (a neighbourhood), only the guests on those hosts and the guests left down may move; the
    proof then covers that neighbourhood only. ``warm_start``: give HiGHS the incumbent first.
    ``budget``: its safety stop becomes HiGHS's time_limit; reaching it marks the budget.
    """
    try:
        import highspy
        import numpy as np
    except ImportError:
        return None
    relaxed = bool(incumbent.relaxed)
    base = State(m)
    base.relaxed = set(incumbent.relaxed)
    if hosts is None:
        hosts = list(m.usable)
        free = list(m.guests)
    else:
        chosen = set(hosts)
        free = []
        for g in m.guests:
            h = incumbent.where[g.idx]
            if h is None or h in chosen:
                free.append(g)
            else:
                base.place(g, h)
    prog = build(m, base, free, hosts, relaxed)
    weights = m.weights()
    n_cols = len(prog.columns)
    placed_now = sum(weights[g.tier] for g in free if incumbent.where[g.idx] is not None)
    if n_cols == 0:
        return None, True
    start = _start_counts(prog, incumbent)
    kept = [c for c in range(n_cols) if start[c] > 0]
    n_all = n_cols + len(kept)
    total = sum(weights[g.tier] for g in free)
    # First the guests placed (tier-weighted in one objective, or tier by tier when the weights
    # would lose precision), then, in what time is left, as many guests as possible kept on
    # their greedy host: the keep columns z_j <= y_j count those.
    zeros = [0.0] * len(kept)
    if total < _EXACT_FLOAT:
        stages = [[float(weights[prog.kinds[k].example.tier]) for k, _ in prog.columns] + zeros]
    else:
        tiers = sorted({k.example.tier for k in prog.kinds})
        stages = [
            [1.0 if prog.kinds[k].example.tier == t else 0.0 for k, _ in prog.columns] + zeros
            for t in tiers
        ]
    keep_stage = [0.0] * n_cols + [1.0] * len(kept)
    rows = list(prog.rows)
    for j, col in enumerate(kept):
        rows.append(Row([(n_cols + j, 1), (col, -1)], 0))
    with _quiet_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", max(1, threads))
    h.setOptionValue("random_seed", RANDOM_SEED)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.5)  # the objective is integral: 0.5 short is optimal
    for key, val in HIGHS_OPTIONS.items():
        h.setOptionValue(key, val)
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = n_all
    lp.num_row_ = len(rows)
    lp.col_cost_ = np.array(stages[0])
    lp.col_lower_ = np.zeros(n_all)
    lp.col_upper_ = np.array([*map(float, prog.upper), *(float(start[c]) for c in kept)])
    lp.row_lower_ = np.full(len(rows), -inf)
    lp.row_upper_ = np.array([float(r.upper) for r in rows])
    starts, index, value = _colwise(rows, n_all)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_cols + [
        highspy.HighsVarType.kContinuous
    ] * len(kept)
    lp.sense_ = highspy.ObjSense.kMaximize
    h.passModel(lp)
    proven = True
    best = start + [float(start[c]) for c in kept]
    all_idx = np.arange(n_all, dtype=np.int32)
    for i, cost in enumerate([*stages, keep_stage] if KEEP_NODES > 0 else stages):
        is_keep = i == len(stages)
        if budget.out_of_time():
            proven = proven and is_keep
            break
        if i > 0:
            h.changeColsCost(n_all, all_idx, np.array(cost))
        # The keep stage is a tie-break: a short look, never the whole budget.
        nodes = KEEP_NODES if is_keep else max_nodes
        h.setOptionValue("mip_max_nodes", nodes if nodes is not None else 2**31 - 1)
        h.setOptionValue("time_limit", max(budget.left(), 0.001))
        if warm_start:
            sol = highspy.HighsSolution()
            sol.col_value = [float(x) for x in best]
            h.setSolution(sol)
        h.run()
        status = h.getModelStatus()
        budget.nodes += max(int(h.getInfo().mip_node_count), 0)
        if status == highspy.HighsModelStatus.kTimeLimit:
            budget.stopped = "time"
        values = h.getSolution().col_value
        if len(values) == n_all and h.getInfo().primal_solution_status == 2:
            found = [round(v) for v in values]
            # HiGHS 1.16 can report an optimum found from a MIP start yet hand back the start's
            # values (seen: objective 5, values worth 4). A proof must rest on the layout we
            # adopt, so values short of the reported objective are not trusted: solve again cold.
            worth = sum(a * b for a, b in zip(cost, found, strict=True))
            if warm_start and worth < h.getInfo().objective_function_value - 0.5:
                return solve(
                    m,
                    incumbent,
                    budget,
                    threads=threads,
                    hosts=hosts,
                    warm_start=False,
                    max_nodes=max_nodes,
                )
            best = found
        if is_keep:
            break
        if status != highspy.HighsModelStatus.kOptimal:
            proven = False
            break
        # Keep this stage at its best while the next one is maximised.
        got = sum(a * b for a, b in zip(cost, best, strict=True))
        idx = np.array([c for c in range(n_all) if cost[c]], dtype=np.int32)
        h.addRow(got - 0.5, inf, len(idx), idx, np.array([cost[c] for c in idx]))
    where = _assign(m, prog, [int(x) for x in best[:n_cols]], incumbent, base)
    score = sum(weights[g.tier] for g in free if where[g.idx] is not None)
    return (where if score > placed_now else None), proven


def _colwise(rows: list[Row], n_cols: int) -> tuple:
    import numpy as np

    per_col: list[list[tuple[int, float]]] = [[] for _ in range(n_cols)]
    for r, row in enumerate(rows):
        for col, coef in row.terms:
            per_col[col].append((r, float(coef)))
    starts = [0]
    index: list[int] = []
    value: list[float] = []
    for entries in per_col:
        for r, coef in entries:
            index.append(r)
            value.append(coef)
        starts.append(len(index))
    return (
        np.array(starts, dtype=np.int32),
        np.array(index, dtype=np.int32),
        np.array(value, dtype=float),
    )


def _start_counts(prog: Program, st: State) -> list[int]:
    """The incumbent layout as column values (a feasible start for the solver)."""
    kind_of = {gi: k.index for k in prog.kinds for gi in k.members}
    col_of = {c: i for i, c in enumerate(prog.columns)}
    out = [0] * len(prog.columns)
    for gi, h in enumerate(st.where):
        if h is None or gi not in kind_of:
            continue  # down, or fixed outside the neighbourhood
        col = col_of.get((kind_of[gi], h))
        if col is not None:
            out[col] += 1
    return out


def _assign(
    m: Model, prog: Program, counts: list[int], incumbent: State, base: State
) -> list[int | None]:
    """Turn counts per (kind, host) into guests on hosts, keeping incumbent hosts where it can."""
    where: list[int | None] = list(base.where)  # the guests that stayed put
    slots: dict[int, dict[int, int]] = {}
    for (k, h), c in zip(prog.columns, counts, strict=True):
        if c > 0:
            slots.setdefault(k, {})[h] = c
    for k in prog.kinds:
        left = slots.get(k.index, {})
        rest = []
        for gi in k.members:
            h = incumbent.where[gi]
            if h is not None and left.get(h, 0) > 0:
                where[gi] = h
                left[h] -= 1
            else:
                rest.append(gi)
        free = [h for h, c in sorted(left.items(), key=lambda hc: m.rank[hc[0]]) for _ in range(c)]
        for gi, h in zip(rest, free, strict=False):
            where[gi] = h
    return where
