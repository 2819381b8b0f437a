"""xenfab: bring a Xen cluster's guests back safely, fast, and in a layout that respects its rules.

The flow is config -> gather -> parse -> snapshot -> plan -> show or start. The parsers and the
planner are pure and importable without Fabric; ``xenfab.ns`` is the Invoke collection of tasks.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_PARSE_API = (
    "ParseError",
    "fencing_verdicts",
    "parse_clustat",
    "parse_clusvcadm",
    "parse_cman_nodes",
    "parse_fence_tool_ls",
    "parse_group_tool_ls",
    "parse_guest_config",
    "parse_xe_error",
    "parse_xe_map",
    "parse_xe_records",
    "parse_xentop",
    "parse_xl_info",
    "parse_xl_list",
)
_LAZY = {name: "xenfab.parse" for name in _PARSE_API}
_LAZY.update(
    {
        "ns": "xenfab.tasks",
        "Snapshot": "xenfab.snapshot",
        "plan": "xenfab.plan",
        "Policy": "xenfab.plan",
        "policy_from_dict": "xenfab.plan",
        "gather": "xenfab.gather",
        "XenfabError": "xenfab.errors",
    }
)

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    # Lazy, so that `from xenfab import parse_xl_info` does not import Fabric and paramiko.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xenfab' has no attribute {name!r}")
