"""How one start run is to go: the options the tasks (and tests) hand the engine, in one value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ..config import StartPolicy
    from .interrupts import Interrupts


@dataclass(frozen=True)
class StartOptions:
    """A start run's options; every default is the plain ``fab start-all`` run.

    ``only_hosts``: start only the guests planned on these hosts (start-host), None for all.
    ``parallel``: starts in flight at once (None: the environment's start policy).
    ``dead_hosts``: declared dead for this run (audited): their domain lists are not waited for
    and a service the cluster shows running there is moved. ``out`` (progress, prompts)
    defaults to stderr. ``prompt``: how step mode asks (None: the terminal).
    ``liveness_wait_s``: how long a host that does not list its domains is waited for before
    the guests still queued are not started. ``base_config``: the Fabric config to connect with.
    ``interrupts``: the run's signal count when the caller keeps it (run.multi: one for every
    cluster's engine, raised by a Ctrl-C its main thread receives); None: the engine's own.
    """

    only_hosts: frozenset[str] | None = None
    parallel: int | None = None
    dry_run: bool = False
    step: bool = False
    break_lock: bool = False
    prompt: Callable[[str], str] | None = None
    confirm_timeout_s: float | None = None
    start_policy: StartPolicy | None = None
    dead_hosts: frozenset[str] = field(default_factory=frozenset)
    liveness_wait_s: float | None = None
    base_config: object | None = None
    out: TextIO | None = None
    # A dry run lists each start in plain words; verbose lists the exact remote commands.
    verbose: bool = False
    # The layout's plan id (plan.saved.plan_id): the audit log records it with every action.
    plan_id: str | None = None
    interrupts: Interrupts | None = None

    def __post_init__(self) -> None:
        # Callers pass any collection of names (a list from the command line, a set).
        if self.only_hosts is not None and not isinstance(self.only_hosts, frozenset):
            object.__setattr__(self, "only_hosts", frozenset(self.only_hosts))
        if not isinstance(self.dead_hosts, frozenset):
            object.__setattr__(self, "dead_hosts", frozenset(self.dead_hosts))
