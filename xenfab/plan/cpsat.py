"""Optional exact search with OR-tools CP-SAT (``pip install xenfab[optimal]``), for comparison.

Not the default (HiGHS is: see docs/policy.md for the measurements). It solves the same program
as plan/mip.py (guest kinds x hosts, rows from the rules), so the two cannot disagree on a rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .mip import _assign, _start_counts, build
from .model import Model, State

if TYPE_CHECKING:
    from .budget import Budget


def available() -> bool:
    """True when ortools' CP-SAT can be imported."""
    try:
        from ortools.sat.python import cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def solve(
    m: Model, incumbent: State, budget: Budget, threads: int = 1
) -> tuple[list[int | None] | None, bool] | None:
    """(better layout or None, proven) from CP-SAT; None when it cannot be used here.

    Bounded by CP-SAT's deterministic time (budget.CPSAT_DETERMINISTIC_S), not wall time; with
    one worker and a fixed seed its answer is the same at any load. The budget's safety stop
    is its wall-clock limit.
    """
    from .budget import CPSAT_DETERMINISTIC_S

    try:
        from ortools.sat.python import cp_model
    except ImportError:
        return None
    base = State(m)
    base.relaxed = set(incumbent.relaxed)
    prog = build(m, base, list(m.guests), list(m.usable), bool(incumbent.relaxed))
    weights = m.weights()
    if sum(weights.values()) * (len(m.guests) + 1) >= 1 << 60:
        return None  # CP-SAT coefficients are 64-bit integers
    model = cp_model.CpModel()
    y = [model.NewIntVar(0, ub, f"y{i}") for i, ub in enumerate(prog.upper)]
    for row in prog.rows:
        model.Add(sum(coef * y[col] for col, coef in row.terms) <= row.upper)
    start = _start_counts(prog, incumbent)
    for var, value in zip(y, start, strict=True):
        model.AddHint(var, value)
    model.Maximize(
        sum(weights[prog.kinds[k].example.tier] * y[i] for i, (k, _h) in enumerate(prog.columns))
    )
    left = budget.left()
    if left <= 0.05:
        budget.stopped = "time"
        return None
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = left
    solver.parameters.max_deterministic_time = CPSAT_DETERMINISTIC_S
    solver.parameters.num_workers = max(1, threads)
    solver.parameters.random_seed = 15
    status = solver.Solve(model)
    if status != cp_model.OPTIMAL:
        budget.out_of_time()  # a wall-clock end is the safety stop's: the budget records it
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    counts = [int(solver.Value(v)) for v in y]
    where = _assign(m, prog, counts, incumbent, base)
    got = sum(weights[g.tier] for g in m.guests if where[g.idx] is not None)
    now = sum(weights[g.tier] for g in m.guests if incumbent.where[g.idx] is not None)
    return (where if got > now else None), status == cp_model.OPTIMAL
