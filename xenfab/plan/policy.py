"""The placement policy: the ``policy`` config key, validated into a :class:`Policy`.

Every error names the key path in one line, so a typo in the YAML file is fixed without a
traceback. Environments override keys before validation (the config module merges), so this
module validates the merged mapping as a whole.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

STRATEGIES = ("round-robin", "most-free", "balanced", "pack")
AFFINITY_MODES = ("hard", "soft")
SPREADS = ("host", "domain")

# Documented defaults, in the order docs/policy.md lists them: key -> (default, meaning).
POLICY_KEYS: dict[str, tuple[Any, str]] = {
    "strategy": ("round-robin", "how greedy placement picks a host: " + ", ".join(STRATEGIES)),
    "reserve_mib": (0, "RAM kept free on every host (MiB)"),
    "overhead_mib": (0, "RAM added to every guest's size (MiB)"),
    "vcpu_ratio": (None, "cap on vCPUs (running + placed) per physical CPU; null = no cap"),
    "anti_affinity": ({}, "classes: name -> guest names/patterns, or {members, spread}"),
    "anti_affinity_mode": ("hard", "hard: never broken; soft: broken only to avoid leaving down"),
    "pin": ({}, "guest or pattern -> the only hosts it may use"),
    "prefer": ({}, "guest or pattern -> hosts tried first"),
    "exclude": ([], "hosts never used (maintenance); the CLI adds to it"),
    "prefer_last_owner": (True, "put a guest back on its last owner when that host fits"),
    "priority": ({}, "guest or pattern -> tier (1 = most important)"),
    "default_tier": (3, "tier of guests no priority pattern matches"),
    "max_starts_per_host": (2, "concurrent starts per host (read by the start engine)"),
    "max_starts_in_flight": (8, "concurrent starts in the cluster (start engine; --parallel)"),
    "tier_timeout_s": (600, "how long a tier may take before the next starts (start engine)"),
    "exact_search_s": (2.0, "time budget of the exact search when greedy leaves guests down"),
}


@dataclass(frozen=True)
class AntiAffinityClass:
    """Guests (names or fnmatch patterns) that must not share a host or failure domain."""

    name: str
    members: tuple[str, ...]
    spread: str = "host"

    def matches(self, guest: str) -> bool:
        """True when ``guest`` is a member of this class."""
        return matcher(self.members)(guest)


@dataclass
class Policy:
    """How to place guests; every field is a documented ``policy`` key (see POLICY_KEYS)."""

    strategy: str = "round-robin"
    reserve_mib: int = 0
    overhead_mib: int = 0
    vcpu_ratio: float | None = None
    anti_affinity: dict[str, AntiAffinityClass] = field(default_factory=dict)
    anti_affinity_mode: str = "hard"
    pin: dict[str, list[str]] = field(default_factory=dict)
    prefer: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    prefer_last_owner: bool = True
    priority: dict[str, int] = field(default_factory=dict)
    default_tier: int = 3
    max_starts_per_host: int = 2
    max_starts_in_flight: int = 8
    tier_timeout_s: float = 600
    exact_search_s: float = 2.0

    def tier_of(self, guest: str) -> int:
        """The guest's tier: an exact name entry wins, else the most important matching pattern."""
        if guest in self.priority:
            return self.priority[guest]
        tiers = [tier for pattern, tier in self.priority.items() if _match(guest, pattern)]
        return min(tiers) if tiers else self.default_tier

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
        return {
            "strategy": self.strategy,
            "reserve_mib": self.reserve_mib,
            "overhead_mib": self.overhead_mib,
            "vcpu_ratio": self.vcpu_ratio,
            "anti_affinity": {
                name: (
                    list(c.members)
                    if c.spread == "host"
                    else {"members": list(c.members), "spread": c.spread}
                )
                for name, c in self.anti_affinity.items()
            },
            "anti_affinity_mode": self.anti_affinity_mode,
            "pin": {k: list(v) for k, v in self.pin.items()},
            "prefer": {k: list(v) for k, v in self.prefer.items()},
            "exclude": list(self.exclude),
            "prefer_last_owner": self.prefer_last_owner,
            "priority": dict(self.priority),
            "default_tier": self.default_tier,
            "max_starts_per_host": self.max_starts_per_host,
            "max_starts_in_flight": self.max_starts_in_flight,
            "tier_timeout_s": self.tier_timeout_s,
            "exact_search_s": self.exact_search_s,
        }


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


def policy_from_dict(data: Mapping[str, Any] | None, where: str = "policy") -> Policy:
    """Validate the ``policy`` mapping; raise ConfigError naming the key path on the first error."""
    if data is None:
        return Policy()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of policy keys")
    for key in data:
        if key not in POLICY_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key")
    pol = Policy()
    if "strategy" in data:
        pol.strategy = _choice(data["strategy"], STRATEGIES, f"{where}.strategy")
    if "reserve_mib" in data:
        pol.reserve_mib = _int(data["reserve_mib"], f"{where}.reserve_mib", 0, "MiB")
    if "overhead_mib" in data:
        pol.overhead_mib = _int(data["overhead_mib"], f"{where}.overhead_mib", 0, "MiB")
    if "vcpu_ratio" in data and data["vcpu_ratio"] is not None:
        pol.vcpu_ratio = _number(data["vcpu_ratio"], f"{where}.vcpu_ratio", positive=True)
    if "anti_affinity" in data:
        pol.anti_affinity = _classes(data["anti_affinity"], f"{where}.anti_affinity")
    if "anti_affinity_mode" in data:
        pol.anti_affinity_mode = _choice(
            data["anti_affinity_mode"], AFFINITY_MODES, f"{where}.anti_affinity_mode"
        )
    if "pin" in data:
        pol.pin = _host_map(data["pin"], f"{where}.pin")
    if "prefer" in data:
        pol.prefer = _host_map(data["prefer"], f"{where}.prefer")
    if "exclude" in data:
        pol.exclude = _names(data["exclude"], f"{where}.exclude", "host names", allow_empty=True)
    if "prefer_last_owner" in data:
        pol.prefer_last_owner = _bool(data["prefer_last_owner"], f"{where}.prefer_last_owner")
    if "priority" in data:
        pol.priority = _tiers(data["priority"], f"{where}.priority")
    if "default_tier" in data:
        pol.default_tier = _int(data["default_tier"], f"{where}.default_tier", 1, "tier")
    if "max_starts_per_host" in data:
        pol.max_starts_per_host = _int(
            data["max_starts_per_host"], f"{where}.max_starts_per_host", 1, "starts"
        )
    if "max_starts_in_flight" in data:
        pol.max_starts_in_flight = _int(
            data["max_starts_in_flight"], f"{where}.max_starts_in_flight", 1, "starts"
        )
    if "tier_timeout_s" in data:
        pol.tier_timeout_s = _number(data["tier_timeout_s"], f"{where}.tier_timeout_s", True)
    if "exact_search_s" in data:
        pol.exact_search_s = _number(data["exact_search_s"], f"{where}.exact_search_s", False)
    return pol


def _choice(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _int(value: Any, path: str, minimum: int, unit: str) -> int:
    # bool is an int subclass: `reserve_mib: yes` is a typo, not 1 MiB.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{path}: expected a whole number >= {minimum} ({unit}), got {value!r}")
    return value


def _number(value: Any, path: str, positive: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        what = "a number > 0" if positive else "a number >= 0"
        raise ConfigError(f"{path}: expected {what}, got {value!r}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    return value


def _names(value: Any, path: str, what: str, allow_empty: bool = False) -> list[str]:
    # A lone string is accepted for host lists (`exclude: xen03`), the natural YAML spelling.
    if isinstance(value, str) and what == "host names" and value:
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: expected a list of {what}")
    if not value and not allow_empty:
        raise ConfigError(f"{path}: expected a list of {what}, got an empty list")
    return list(value)


def _host_map(value: Any, path: str) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping of guest name or pattern -> list of hosts")
    out: dict[str, list[str]] = {}
    for guest, hosts in value.items():
        if not isinstance(guest, str) or not guest:
            raise ConfigError(f"{path}: {guest!r} is not a guest name or pattern")
        out[guest] = _names(hosts, f"{path}.{guest}", "host names")
    return out


def _tiers(value: Any, path: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping of guest name or pattern -> tier")
    out: dict[str, int] = {}
    for guest, tier in value.items():
        if not isinstance(guest, str) or not guest:
            raise ConfigError(f"{path}: {guest!r} is not a guest name or pattern")
        out[guest] = _int(tier, f"{path}.{guest}", 1, "tier, 1 = most important")
    return out


def _classes(value: Any, path: str) -> dict[str, AntiAffinityClass]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping of class name -> list of guests")
    out: dict[str, AntiAffinityClass] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: {name!r} is not a class name")
        where = f"{path}.{name}"
        spread = "host"
        if isinstance(spec, Mapping):
            for key in spec:
                if key not in ("members", "spread"):
                    raise ConfigError(f"{where}.{key}: unknown key")
            if "members" not in spec:
                raise ConfigError(f"{where}.members: missing (list of guest names or patterns)")
            if "spread" in spec:
                spread = _choice(spec["spread"], SPREADS, f"{where}.spread")
            members = _names(spec["members"], f"{where}.members", "guest names or patterns")
        else:
            members = _names(spec, where, "guest names or patterns")
        out[name] = AntiAffinityClass(name=name, members=tuple(members), spread=spread)
    return out
