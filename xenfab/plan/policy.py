"""The placement policy: defined in xenfab.policy, the bottom layer, so that loading the
configuration loads no planner module; the planner imports it from here as before."""

from ..policy import (
    AFFINITY_MODES,
    MOVED,
    SPREADS,
    STRATEGIES,
    AntiAffinityClass,
    Members,
    NonEmptyHosts,
    Policy,
    host_matches,
    matcher,
    policy_from_dict,
    with_run_options,
)

__all__ = [
    "AFFINITY_MODES",
    "MOVED",
    "SPREADS",
    "STRATEGIES",
    "AntiAffinityClass",
    "Members",
    "NonEmptyHosts",
    "Policy",
    "host_matches",
    "matcher",
    "policy_from_dict",
    "with_run_options",
]
