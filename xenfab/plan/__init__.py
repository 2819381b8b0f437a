"""The placement planner: snapshot + policy -> layout. Pure: no SSH, no Fabric, no I/O.

The standard library, plus highspy (HiGHS) for the exact search when greedy leaves guests down.

``plan(snapshot, policy)`` places every down guest (the backend's word) so that it fits (RAM,
vCPU cap, anti-affinity, pin, exclude), explains each choice and each refusal, and says whether
the result is proven best when not everything fits.
"""

from .layout import Assignment, HostUse, Layout, Skipped, Unplaced
from .planner import plan
from .policy import (
    STRATEGIES,
    AntiAffinityClass,
    Policy,
    policy_from_dict,
)

__all__ = [
    "STRATEGIES",
    "AntiAffinityClass",
    "Assignment",
    "HostUse",
    "Layout",
    "Policy",
    "Skipped",
    "Unplaced",
    "plan",
    "policy_from_dict",
]
