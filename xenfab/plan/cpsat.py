"""Optional exact search with OR-tools CP-SAT (``pip install xenfab[optimal]``).

Used only when ortools is importable and the built-in branch and bound did not prove its result
within its share of the budget. Same rules, same objective (tier-weighted guests placed), with
"keep the greedy host" as a tie-breaker inside the objective.
"""

from __future__ import annotations

import math
import time

from .model import Model, State

# CP-SAT objective coefficients are 64-bit integers.
_MAX_COEF = 1 << 60


def available() -> bool:
    """True when ortools' CP-SAT can be imported."""
    try:
        from ortools.sat.python import cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def solve(
    m: Model, incumbent: State, deadline: float, threads: int = 2
) -> tuple[list[int | None] | None, bool] | None:
    """(better layout or None, proven) from CP-SAT; None when it cannot be used here."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        return None
    left = deadline - time.monotonic()
    if left <= 0.05:
        return None
    weights = m.weights()
    n = len(m.guests)
    scale = n + 1  # one more weighted guest beats keeping every guest on its greedy host
    if max(weights.values(), default=1) * scale * (n + 1) >= _MAX_COEF:
        return None
    relaxed = bool(incumbent.relaxed)
    inc = incumbent.where
    model = cp_model.CpModel()
    x: dict[tuple[int, int], object] = {}
    for g in m.guests:
        for h in m.usable:
            cap = m.vcap[h]
            if cap is not None and m.vused0[h] + g.vcpus > cap:
                continue
            if g.ok(h) and g.mem <= m.cap[h]:
                x[g.idx, h] = model.NewBoolVar(f"x{g.idx}_{h}")
    by_guest: dict[int, list] = {}
    by_host: dict[int, list[tuple[int, object]]] = {}
    for (gi, h), var in x.items():
        by_guest.setdefault(gi, []).append(var)
        by_host.setdefault(h, []).append((gi, var))
    for vars_ in by_guest.values():
        model.Add(sum(vars_) <= 1)
    for h, pairs in by_host.items():
        model.Add(sum(m.guests[gi].mem * v for gi, v in pairs) <= m.cap[h])
        cap = m.vcap[h]
        if cap is not None:
            room = math.floor(cap - m.vused0[h] + 1e-9)
            model.Add(sum(m.guests[gi].vcpus * v for gi, v in pairs) <= max(room, 0))
    if not relaxed:
        for c, cl in enumerate(m.classes):
            per_unit: dict[int, list] = {}
            for (gi, h), var in x.items():
                if c in m.guests[gi].classes:
                    per_unit.setdefault(cl.unit_of[h], []).append(var)
            for u, vars_ in per_unit.items():
                model.Add(sum(vars_) <= max(cl.limit - len(cl.running[u]), 0))
    terms = []
    for (gi, h), var in x.items():
        g = m.guests[gi]
        terms.append((weights[g.tier] * scale + (1 if inc[gi] == h else 0)) * var)
        if inc[gi] == h:
            model.AddHint(var, 1)
        else:
            model.AddHint(var, 0)
    model.Maximize(sum(terms))
    # Building the model took part of the budget; the solver gets what is left, minus a margin
    # for its own start-up and for reading the answer back.
    left = deadline - time.monotonic() - 0.05
    if left <= 0.05:
        return None
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = left
    solver.parameters.num_workers = threads
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    where: list[int | None] = [None] * n
    for (gi, h), var in x.items():
        if solver.Value(var):
            where[gi] = h
    primary = sum(weights[g.tier] for g in m.guests if where[g.idx] is not None)
    current = sum(weights[g.tier] for g in m.guests if inc[g.idx] is not None)
    proven = status == cp_model.OPTIMAL
    return (where if primary > current else None), proven
