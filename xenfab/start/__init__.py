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
    dead_hosts: Collection[str] = (),
    liveness_wait_s: float | None = None,
) -> StartReport:
    """Start ``layout``'s guests; raises StartRefused (before any start) when it is not safe.

    ``dead_hosts``: hosts declared dead for this run (audited with the operator's name): their
    domain lists are not waited for and a service the cluster shows running there is moved.
    ``out`` (progress, prompts) defaults to stderr. ``liveness_wait_s``: how long the run waits
    for a host that does not list its domains before the guests still queued are not started.
    """
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
        dead_hosts=dead_hosts,
        liveness_wait_s=liveness_wait_s,
    )
    return engine.run()


__all__ = ["DEFAULT_PARALLEL", "OUTCOMES", "GuestResult", "StartReport", "start_guests"]
