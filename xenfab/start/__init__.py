"""The start engine: bring a planned layout's guests up, in parallel, capped, and safely.

``start_guests`` is the one entry point the Fabric tasks call; see docs/start.md.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, TextIO

from .engine import DEFAULT_PARALLEL, Engine
from .report import OUTCOMES, GuestResult, StartReport

if TYPE_CHECKING:
    from ..config import Environment, StartPolicy, XenfabConfig
    from ..plan import Layout, Policy
    from ..snapshot import Snapshot


def start_guests(
    cfg: XenfabConfig,
    env: Environment,
    snapshot: Snapshot,
    layout: Layout,
    policy: Policy,
    *,
    base_config: object | None = None,
    only_hosts: Collection[str] | None = None,
    parallel: int | None = None,
    dry_run: bool = False,
    step: bool = False,
    break_lock: bool = False,
    out: TextIO | None = None,
    prompt: Callable[[str], str] | None = None,
    confirm_timeout_s: float | None = None,
    start_policy: StartPolicy | None = None,
) -> StartReport:
    """Start ``layout``'s guests; raises StartRefused (before any start) when it is not safe."""
    engine = Engine(
        cfg,
        env,
        snapshot,
        layout,
        policy,
        base_config=base_config,
        only_hosts=only_hosts,
        parallel=parallel,
        dry_run=dry_run,
        step=step,
        break_lock=break_lock,
        out=out,
        prompt=prompt,
        confirm_timeout_s=confirm_timeout_s,
        start_policy=start_policy,
    )
    return engine.run()


__all__ = ["DEFAULT_PARALLEL", "OUTCOMES", "GuestResult", "StartReport", "start_guests"]
