"""Parser for ``xl info`` and ``xm info`` (``key : value`` lines, memory in MiB)."""

from __future__ import annotations

import re

from xenfab.parse._util import dec_int, normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import HostInfo

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Keys only xl prints; xm (xend) never had them.
_XL_ONLY = frozenset(
    {
        "max_cpu_id",
        "outstanding_claims",
        "xen_version",
        "sharing_freed_memory",
        "sharing_used_memory",
        "build_id",
    }
)

# Keys only xend's ``xm info`` prints.
_XM_ONLY = frozenset({"node_to_cpu", "node_to_memory", "node_to_dma32_mem"})


def _split_info(text: str) -> dict[str, tuple[str, int]]:
    """Map each key to (value, 1-based line number); the first occurrence of a key wins."""
    out: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        # Values contain colons (node0:0-3, hw_caps): split on the first one only.
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if not _KEY_RE.fullmatch(key) or key in out:
            continue
        out[key] = (value.strip(), lineno)
    return out


def _required_int(info: dict[str, tuple[str, int]], key: str, source: str | None) -> int:
    if key not in info:
        raise ParseError(f"no {key!r} line in xl/xm info output", source)
    value, lineno = info[key]
    number = dec_int(value)
    if number is None:
        raise ParseError(f"{key} is not an integer: {value!r}", source, lineno)
    return number


def parse_xl_info(text: str, source: str | None = None) -> HostInfo:
    """Parse ``xl info``/``xm info`` into host memory (MiB), pCPU count and Xen version."""
    info = _split_info(normalize_text(text, source))
    total = _required_int(info, "total_memory", source)
    free = _required_int(info, "free_memory", source)
    cpus = _required_int(info, "nr_cpus", source)

    version = info.get("xen_version", ("", 0))[0] or None
    if version is None and "xen_major" in info and "xen_minor" in info:
        major, minor = info["xen_major"][0], info["xen_minor"][0]
        if major and minor:
            # xm prints xen_extra with its own leading dot or dash (".1", "-rc1").
            version = f"{major}.{minor}{info.get('xen_extra', ('', 0))[0]}"

    if _XL_ONLY & info.keys():
        toolstack: str | None = "xl"
    elif "xend_config_format" in info or _XM_ONLY & info.keys():
        toolstack = "xm"
    else:
        toolstack = None
    return HostInfo(
        total_mib=total, free_mib=free, cpus=cpus, xen_version=version, toolstack=toolstack
    )
