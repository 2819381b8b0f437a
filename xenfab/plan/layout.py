"""The planner's result: which guest goes where, what was skipped or left down, and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Assignment:
    """One guest to start on one host, with the reason this host was chosen."""

    guest: str
    host: str
    memory_mib: int
    vcpus: int
    tier: int
    why: str
    # The service state the plan was made from: the start command depends on it (a guest taken
    # over from a dead owner is still `started` there). ``takeover_from``: that dead owner.
    state: str | None = None
    takeover_from: str | None = None
    # Expected seconds (plan.timing): from the start command to ready, and from the run's first
    # start command to this guest ready under the start caps (the schedule the engine follows).
    expected_boot_s: float | None = None
    expected_start_s: float | None = None  # when its start command is expected to be sent
    expected_ready_s: float | None = None


@dataclass
class Skipped:
    """A guest the planner did not consider, e.g. already started or running somewhere."""

    guest: str
    state: str
    reason: str


@dataclass
class Unplaced:
    """A guest to start for which no host was found; ``per_host`` says which limit failed where."""

    guest: str
    memory_mib: int
    reason: str
    per_host: dict[str, str] = field(default_factory=dict)
    tier: int = 0
    vcpus: int = 0
    # Why it stays down: "no-room" (the planner found no host), "cannot-plan" (its facts are
    # missing or unusable: config, size, name), "liveness-unknown" (it may still run on an
    # unreachable owner). Capacity reasoning counts only "no-room".
    kind: str = "no-room"
    # host -> the rules that refused it there, with their figures (rules.Refusal.to_dict)
    refusals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class HostUse:
    """One host's room before and after the plan (free RAM as measured, before any reserve)."""

    name: str
    status: str
    free_mib_before: int
    free_mib_after: int
    vcpus_before: int
    vcpus_after: int
    vcpu_cap: float | None
    guests: list[str] = field(default_factory=list)
    # policy.reserve_mib: the host's room is its free RAM less this (0: room and free agree).
    reserve_mib: int = 0


@dataclass
class Layout:
    """A placement of the guests to start; ``complete`` when every one of them has a host."""

    assignments: list[Assignment] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)
    hosts: list[HostUse] = field(default_factory=list)
    strategy: str = "round-robin"
    method: str = "greedy"
    proven_optimal: bool | None = None
    warnings: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)
    # "time" when the search's wall-clock safety stop ended it (the layout may then depend on
    # the machine's load), else None.
    search_stopped: str | None = None
    # Expected seconds from the first start command to the last planned guest ready, and to each
    # tier's last (plan.timing); where the guests' figures came from (history, size class,
    # estimate: counts) and the start caps the schedule assumed.
    expected_all_up_s: float | None = None
    expected_tiers_s: dict[int, float] = field(default_factory=dict)
    expected_sources: dict[str, int] = field(default_factory=dict)
    start_caps: dict[str, float] = field(default_factory=dict)
    # The plan id (see plan_id), or how to compute it on first use: hashing the facts costs
    # more than a greedy plan, and the N+k analysis plans thousands of layouts nobody shows.
    _plan_id: str | None = field(default=None, repr=False, compare=False)
    _id_of: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    @property
    def plan_id(self) -> str | None:
        """A short hash of the facts, the policy and this layout (plan.saved.plan_id)."""
        if self._plan_id is None and self._id_of is not None:
            self._plan_id = self._id_of()
        return self._plan_id

    @plan_id.setter
    def plan_id(self, value: str | None) -> None:
        self._plan_id, self._id_of = value, None

    @property
    def complete(self) -> bool:
        """True when every guest to start got a host."""
        return not self.unplaced

    def for_host(self, name: str) -> list[Assignment]:
        """The assignments to host ``name``, in plan order."""
        return [a for a in self.assignments if a.host == name]

    def assignment(self, guest: str) -> Assignment | None:
        """The assignment of ``guest``, or None."""
        return next((a for a in self.assignments if a.guest == guest), None)

    def to_dict(self, with_id: bool = True) -> dict[str, Any]:
        """The layout as the documented JSON object (``with_id``: its plan id too)."""
        data = {
            "assignments": [asdict(a) for a in self.assignments],
            "skipped": [asdict(s) for s in self.skipped],
            "unplaced": [asdict(u) for u in self.unplaced],
            "hosts": [asdict(h) for h in self.hosts],
            "strategy": self.strategy,
            "method": self.method,
            "complete": self.complete,
            "proven_optimal": self.proven_optimal,
            "warnings": list(self.warnings),
            "without": list(self.without),
            "search_stopped": self.search_stopped,
            "expected_all_up_s": self.expected_all_up_s,
            "expected_tiers_s": {str(t): s for t, s in sorted(self.expected_tiers_s.items())},
            "expected_sources": dict(sorted(self.expected_sources.items())),
            "start_caps": dict(self.start_caps),
        }
        if with_id:
            data["plan_id"] = self.plan_id
        return data
