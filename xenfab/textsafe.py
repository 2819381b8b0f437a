"""Text that came from a host, made safe to show on a terminal.

A guest name, a clustat message or a remote error can hold escape sequences that set colours, move
the cursor or retitle the window when printed raw. Everything from a host that reaches a terminal
goes through ``printable`` first.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and the C1 controls (U+0080-U+009F: a lone CSI, U+009B,
# starts an escape sequence on many terminals just as ESC [ does).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """``text`` with every control character shown as ``\\xNN``; newlines kept only if asked."""
    s = str(text)
    if not newlines:
        s = s.replace("\n", "\\n")
    return _CONTROL.sub(_escape, s)


def format_duration(seconds: float) -> str:
    """``75.4`` -> ``1m15s``; under a minute, one decimal (``4.2s``)."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"
