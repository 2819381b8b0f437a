"""The placement policy: the ``policy`` config key, typed as a :class:`Policy`.

Each key's type, default and meaning is declared once, on its field below (``xenfab.schema``
validates into it and docs/policy.md's key table is generated from it). Environments override
keys before validation (the config module merges), so the merged mapping is validated as a
whole. The start engine's caps are not here: they are the start policy (``config.StartPolicy``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from .errors import ConfigError
from .schema import (
    Bool,
    Check,
    Core,
    HostPattern,
    HostPatterns,
    MiB,
    Name,
    NonNegFloat,
    PosFloat,
    PosInt,
    doc,
    field_type,
    one_or_many,
    option,
    validate,
)

STRATEGIES = ("round-robin", "most-free", "balanced", "pack")
AFFINITY_MODES = ("hard", "soft")
SPREADS = ("host", "domain")
OBJECTIVES = ("all-up", "last-owner")

Members = Annotated[tuple[Name, ...], Core(min_length=1)]
NonEmptyHosts = Annotated[list[HostPattern], Core(min_length=1), Check(one_or_many, before=True)]
# The start caps moved to the start policy (`start:`); an old config says where they went.
MOVED = {
    "max_starts_per_host": "start.max_starts_per_host",
    "max_starts_in_flight": "start.max_starts_in_flight",
    "tier_timeout_s": "start.tier_timeout_s",
}


@dataclass(frozen=True)
class AntiAffinityClass:
    """Guests (names or fnmatch patterns) that must not share a host or failure domain."""

    __pydantic_config__ = {"extra": "forbid"}

    name: Name
    members: Members
    spread: Literal[SPREADS] = "host"

    def matches(self, guest: str) -> bool:
        """True when ``guest`` is a member of this class."""
        return matcher(self.members)(guest)


def _classes(value: Any) -> Any:
    # The YAML spells a class as `name: [members]` or `name: {members, spread}`; the class
    # object also carries its name.
    if not isinstance(value, Mapping):
        return value
    out = {}
    for name, spec in value.items():
        if isinstance(spec, (list, str)):
            spec = {"members": spec}
        if isinstance(spec, Mapping):
            if "name" in spec:
                raise ValueError(f"{name}.name: unknown key")
            spec = {**spec, "name": name}
        out[name] = spec
    return out


def _run_only(value: Any) -> Any:
    raise ValueError("set for one run by --expect SNAPSHOT.json, not in the config")


def _from_history(value: Any) -> Any:
    raise ValueError("read from the history for one run's --dead hosts, not in the config")


def _from_audit(value: Any) -> Any:
    raise ValueError("read from the audit log and the start policy for one run, not in the config")


@dataclass
class Policy:
    """How to place guests; every field is a documented ``policy`` key."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    strategy: Literal[STRATEGIES] = doc(
        "round-robin",
        "how the greedy pass picks a host: " + ", ".join(f"`{s}`" for s in STRATEGIES),
    )
    reserve_mib: MiB = doc(0, "RAM (MiB) kept free on every host")
    overhead_mib: MiB = doc(0, "RAM (MiB) added to every guest's configured size")
    vcpu_ratio: PosFloat | None = doc(
        None, "at most this many vCPUs (running + placed) per physical CPU; `null` = no cap"
    )
    max_guests_per_host: PosInt | None = doc(
        None, "at most this many guests (running + placed) per host; `null` = no limit"
    )
    anti_affinity: Annotated[dict[Name, AntiAffinityClass], Check(_classes, before=True)] = doc(
        {}, "classes whose members never share a host (or failure domain)"
    )
    anti_affinity_mode: Literal[AFFINITY_MODES] = doc(
        "hard", "`hard`: never broken; `soft`: broken only when a guest would otherwise stay down"
    )
    pin: dict[Name, NonEmptyHosts] = doc({}, "guest or pattern -> the only hosts it may use")
    prefer: dict[Name, NonEmptyHosts] = doc({}, "guest or pattern -> hosts tried first")
    exclude: HostPatterns = doc(
        [], "hosts never used (maintenance); `--exclude` on the command line adds to it"
    )
    prefer_last_owner: Bool = doc(
        True, "put a guest back on its last owner when that host passes every rule"
    )
    objective: Literal[OBJECTIVES] = doc(
        "all-up",
        "after the most guests placed (by tier): `all-up` = the earliest expected time every "
        "placed guest is ready, last owner breaking ties; `last-owner` = most guests on their "
        "last owner, then time (docs/policy.md, Time to all-up)",
    )
    priority: dict[Name, PosInt] = doc({}, "guest or pattern -> tier, 1 = most important")
    default_tier: PosInt = doc(3, "tier of guests no `priority` pattern matches")
    exact_search_s: NonNegFloat = doc(
        60.0,
        "safety stop (seconds of wall time) of the search when greedy leaves guests down; "
        "the search's budget is counted in work, so this is never its normal end; 0 = greedy only",
    )
    # This run's --expect (plan.expect.Expectation): no help text, so not a documented key;
    # on the policy so that every plan of the run, the engine's replans too, reads it.
    expect: Annotated[Any, Check(_run_only, before=True)] = dataclasses.field(
        default=None, repr=False, compare=False
    )
    # This run's memory of its --dead hosts (plan.recall.Recall, from the history); the same.
    recall: Annotated[Any, Check(_from_history, before=True)] = dataclasses.field(
        default=None, repr=False, compare=False
    )

    # This run's start caps and expected start times (plan.timing.Timing, from the audit log and
    # the start policy); None: the start policy's defaults and start.boot_estimate_s's default.
    timing: Annotated[Any, Check(_from_audit, before=True)] = dataclasses.field(
        default=None, repr=False, compare=False
    )

    def tier_of(self, guest: str, backend_tier: int | None = None) -> int:
        """The guest's tier: an exact name entry wins, else the most important matching pattern.

        No entry matching: ``backend_tier`` (the cluster manager's own start order, e.g. XAPI's
        ``order``) when there is one, else ``default_tier``.
        """
        tier = self.priority_tier(guest)
        if tier is not None:
            return tier
        return self.default_tier if backend_tier is None else backend_tier

    def priority_tier(self, guest: str) -> int | None:
        """The tier ``priority`` gives the guest (exact name first, then patterns), or None."""
        if guest in self.priority:
            return self.priority[guest]
        tiers = [tier for pattern, tier in self.priority.items() if _match(guest, pattern)]
        return min(tiers) if tiers else None

    def pin_entries(self, guest: str) -> list[list[str]]:
        """Every pin entry that matches the guest; a host must satisfy all of them."""
        return [hosts for pattern, hosts in self.pin.items() if _match(guest, pattern)]

    def preferred_hosts(self, guest: str) -> list[str]:
        """Host names/patterns tried first for the guest, in config order."""
        out: list[str] = []
        for pattern, hosts in self.prefer.items():
            if _match(guest, pattern):
                out.extend(h for h in hosts if h not in out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The policy as the config mapping that ``policy_from_dict`` reads back."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del data["expect"], data["recall"], data["timing"]  # run options, not config keys
        data["anti_affinity"] = {
            name: (
                list(c.members)
                if c.spread == "host"
                else {"members": list(c.members), "spread": c.spread}
            )
            for name, c in self.anti_affinity.items()
        }
        data["pin"] = {k: list(v) for k, v in self.pin.items()}
        data["prefer"] = {k: list(v) for k, v in self.prefer.items()}
        data["exclude"] = list(self.exclude)
        data["priority"] = dict(self.priority)
        return data


@functools.lru_cache(maxsize=4096)
def matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """A fast test "is this name one of these names or fnmatch patterns" (case-sensitive).

    One compiled regular expression per pattern list: planning 5,000 guests against many
    classes would otherwise spend its time in fnmatch.
    """
    exact = frozenset(patterns)
    globs = [p for p in patterns if any(c in p for c in "*?[")]
    if not globs:
        return exact.__contains__
    rx = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in globs))
    return lambda name: name in exact or rx.match(name) is not None


def _match(name: str, pattern: str) -> bool:
    # Case-sensitive: guest and host names are case-sensitive in rgmanager and xl.
    return matcher((pattern,))(name)


def host_matches(host: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """True when ``host`` is named by one of ``patterns`` (names or fnmatch patterns)."""
    return matcher(tuple(patterns))(host)


def policy_from_dict(
    data: Mapping[str, Any] | None, where: str = "policy", base: Policy | None = None
) -> Policy:
    """Validate a ``policy`` mapping (over ``base``'s keys); ConfigError names the key path."""
    if data is None and base is None:
        return Policy()
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of policy keys")
    for key in data or ():
        if key in MOVED:
            raise ConfigError(f"{where}.{key}: moved to {MOVED[key]} (the start policy)")
    merged = {**(base.to_dict() if base else {}), **(data or {})}
    return validate(Policy, merged, "", prefix=where)


def with_run_options(
    policy: Policy, strategy: str | None = None, exclude: list[str] | None = None
) -> Policy:
    """``policy`` with this run's ``--strategy`` and ``--exclude`` (added to its own), checked."""
    changes: dict[str, Any] = {}
    if strategy is not None:
        changes["strategy"] = option("--strategy", strategy, field_type(Policy, "strategy"))
    if exclude:
        extra = option("--exclude", list(exclude), field_type(Policy, "exclude"))
        changes["exclude"] = sorted(set(policy.exclude) | set(extra))
    return dataclasses.replace(policy, **changes)
