"""Placement rules, one module each: every rule owns its figures, counters, texts, rows and bound.

Like a scheduler filter, a rule decides and explains in the same place (the protocol is
``base.Rule``; docs/architecture-rules.md describes it). Greedy and repair ask ``State.fits``
(every rule's ``fits``), the exact search builds its program from every rule's ``rows``,
``--explain`` and the JSON ``per_host`` text come from every rule's ``refusal`` (a structured
:class:`Refusal` carrying the rule object), and capacity's quick test asks every rule's
``cannot_hold``.

Adding a rule is adding a module here: every module of this package is imported, and every
:class:`Rule` subclass it defines with an ``order`` takes part, cheapest test first.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from .base import NO_LIMIT, Demand, Kind, ModelView, Refusal, Row, Rule, StateView

__all__ = [
    "NO_LIMIT",
    "RULES",
    "Demand",
    "Kind",
    "Refusal",
    "Row",
    "Rule",
    "rules_of",
    "solver_rows",
]


def _discover() -> tuple[type[Rule], ...]:
    """Every rule class of this package's modules, in ``order``."""
    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Rule)
                and value is not Rule
                and value.__module__ == module.__name__
                and hasattr(value, "order")
            ):
                found[value.__qualname__] = value
    return tuple(sorted(found.values(), key=lambda cls: (cls.order, cls.__qualname__)))


# Every rule class, cheapest test first (greedy asks them in this order; RAM is first: the
# strategies index the hosts by its counters).
RULES: tuple[type[Rule], ...] = _discover()


def rules_of(model: ModelView, classes: Iterable[type[Rule]] = RULES) -> list[Rule]:
    """Every rule instance for ``model``, in order, each told its position."""
    out: list[Rule] = []
    for cls in classes:
        for rule in cls.build(model):
            rule.index = len(out)
            out.append(rule)
    return out


def solver_rows(
    rules: list[Rule],
    base: StateView,
    kinds: list[Kind],
    columns: list[tuple[int, int]],
    relaxed: bool,
) -> list[Row]:
    """The exact search's constraints: every rule's rows, on top of ``base``."""
    return [row for rule in rules for row in rule.rows(base, kinds, columns, relaxed)]
