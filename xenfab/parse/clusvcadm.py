"""Interpret the output and exit status of one ``clusvcadm`` call."""

from __future__ import annotations

import re

from xenfab.parse._util import normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import ClusvcadmResult

# clusvcadm exits with the negative RG_E* code as an 8-bit status (rgmanager STABLE3).
RG_ERRORS: dict[int, tuple[str, str]] = {
    255: ("RG_EFAIL", "Failure"),
    254: ("RG_EABORT", "Aborted; service failed"),
    253: ("RG_EFORWARD", "Service not mastered locally"),
    252: ("RG_ENOSERVICE", "Service does not exist"),
    251: ("RG_EDEADLCK", "Operation would cause a deadlock"),
    250: ("RG_EAGAIN", "Temporary failure; try again"),
    249: ("RG_EDEPEND", "Operation violates dependency rule"),
    248: ("RG_EINVAL", "Invalid operation for resource"),
    247: ("RG_EQUORUM", "Operation requires quorum"),
    246: ("RG_ERUN", "Service is already running"),
    245: ("RG_EFROZEN", "Failure: Service is frozen"),
    244: ("RG_ENODE", "Target node dead / nonexistent"),
    243: ("RG_EFENCE", "Fencing operation pending; try again later"),
    242: ("RG_ESCRIPT", "S/Lang Script Error"),
    241: ("RG_EDOMAIN", "Service not runnable"),
    240: ("RG_EEXCL", "Service is exclusive; cannot run with others"),
    239: ("RG_ERELO", "Service relocated"),
    238: ("RG_EPERM", "Permission denied"),
}

_ALREADY_RUNNING = "service is already running"
# Results that mean failure even if the exit status were 0.
_FAILURE_TEXTS = frozenset(
    {desc.lower() for code, (_, desc) in RG_ERRORS.items() if code != 246}
    | {
        "permissing denied",
        "could not connect to resource group manager",
        "could not connect to cluster service",
    }
)

_ACTION_RE = re.compile(
    r"^(?:Member\s+(?P<member>\S+)\s+\S.*?|Local machine\s+\S.*?"
    r"|Trying to\s+\S+\s+\S+?(?:\s+to\s+(?P<target>\S+?))?)\.\.\.(?P<result>.*)$"
)
_RUNNING_ON_RE = re.compile(r"^(?:Warning:\s*)?(?P<svc>\S+)\s+is now running on\s+(?P<node>\S+)")
_CLOSEST_RE = re.compile(r"^Closest match:\s*'(?P<node>[^']*)'")


def _describe(code: int) -> str | None:
    entry = RG_ERRORS.get(code % 256) if code < 0 else RG_ERRORS.get(code)
    return f"{entry[0]}: {entry[1]}" if entry else None


def parse_clusvcadm(text: str, exit_code: int, source: str | None = None) -> ClusvcadmResult:
    """Turn clusvcadm's output and exit status into ok/member/message/running_on."""
    if isinstance(exit_code, bool) or not isinstance(exit_code, int):
        raise ParseError(f"exit code must be an integer, got {exit_code!r}", source)
    lines = [ln.strip() for ln in normalize_text(text, source).split("\n")]
    lines = [ln for ln in lines if ln]

    member: str | None = None
    closest: str | None = None
    result: str | None = None
    action_line: str | None = None
    running_on: str | None = None
    other: list[str] = []
    for i, line in enumerate(lines):
        m = _CLOSEST_RE.match(line)
        if m:
            closest = m.group("node") or None
            continue
        m = _RUNNING_ON_RE.match(line)
        if m:
            running_on = None if m.group("node") in ("(null)", "unknown") else m.group("node")
            continue
        m = _ACTION_RE.match(line)
        if m:
            # With chained calls (`clusvcadm -d X && clusvcadm -e X`) the last report decides.
            action_line = line
            running_on = None
            member = m.group("member") or m.group("target")
            result = m.group("result").strip()
            if not result and i + 1 < len(lines):
                # The result is printed after the request returns; a stray newline
                # (stderr merged in) can push it to the next line.
                nxt = lines[i + 1]
                if nxt.lower() in _FAILURE_TEXTS or nxt.lower() in ("success", _ALREADY_RUNNING):
                    result = nxt
            continue
        other.append(line)

    if member is None and closest is not None:
        member = closest

    if result:
        message = result
    elif action_line is not None:
        message = f"{action_line} [no result printed]"
    elif other:
        # Nothing was attempted: "Could not connect ...", "No matches for ...", usage text.
        message = other[-1] if exit_code != 0 else " ".join(other)
    else:
        message = ""
    meaning = None if result or exit_code == 0 else _describe(exit_code)
    if meaning is not None:
        explained = f"exit {exit_code} = {meaning}"
        message = f"{message} ({explained})" if message else explained

    lowered = (result or "").lower()
    already = lowered == _ALREADY_RUNNING
    if exit_code != 0:
        ok = False
    elif result:
        ok = lowered not in _FAILURE_TEXTS
    else:
        # Exit 0 is printed only after success (or with -q, which prints nothing): trust it
        # unless the output carries a failure line of its own.
        ok = not any(t.lower() in _FAILURE_TEXTS for t in other)
    return ClusvcadmResult(
        ok=ok,
        member=member,
        message=message,
        exit_code=exit_code,
        running_on=running_on,
        already_running=already,
    )
