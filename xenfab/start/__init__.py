"""The start engine: bring a planned layout's guests up, in parallel, capped, and safely.

``start_guests`` is the one entry point the Fabric tasks call; see docs/start.md. The engine
(SSH, Fabric) is imported on first use, so the outcome words and the report stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import StartOptions
from .outcome import Outcome
from .report import OUTCOMES, GuestResult, StartReport

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
    from ..plan import Layout, Policy
    from ..snapshot import Snapshot


def start_guests(
    cfg: XenfabConfig,
    env: Environment,
    snapshot: Snapshot,
    layout: Layout,
    policy: Policy,
    options: StartOptions | None = None,
) -> StartReport:
    """Start ``layout``'s guests as ``options`` say; StartRefused (before any start) if unsafe."""
    from .engine import Engine

    return Engine(cfg, env, snapshot, layout, policy, options or StartOptions()).run()


def __getattr__(name: str) -> Any:
    """``DEFAULT_PARALLEL`` from the engine, imported when first asked for."""
    if name == "DEFAULT_PARALLEL":
        from .engine import DEFAULT_PARALLEL

        return DEFAULT_PARALLEL
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PARALLEL",
    "OUTCOMES",
    "GuestResult",
    "Outcome",
    "StartOptions",
    "StartReport",
    "start_guests",
]
