"""Parser for the ``xl list`` / ``xm list`` table, and the meaning of its state flags."""

from __future__ import annotations

import re

from xenfab.parse._util import dec_int, normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import ListedDomain

_STATE_RE = re.compile(r"[-a-zA-Z?]{6}")
_TIME_RE = re.compile(r"[0-9]+(?:\.[0-9]*)?")
# `xl list -v`/`-Z` append UUID, reason code and security label after Time(s).
_LONG_ROW_RE = re.compile(
    r"^(?P<name>.*?\S)\s+(?P<id>[0-9]+)\s+(?P<mem>[0-9]+)\s+(?P<vcpus>[0-9]+)\s+"
    r"(?P<state>[-a-zA-Z?]{6})\s+(?P<time>[0-9]+(?:\.[0-9]*)?)(?:\s+\S.*)?$"
)
# Lines the toolstack may mix into its stdout that are not rows.
_NOISE_RE = re.compile(r"^\s*(?:libxl|libxc|xc|xl|xend|warning|error)\b", re.IGNORECASE)

_LIST_FLAGS = ("running", "blocked", "paused", "shutdown", "crashed", "dying")


def _is_header(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 3 and tokens[0] == "Name" and tokens[1] == "ID"


def _row(name: str, domid: str, mem: str, vcpus: str, state: str, time: str) -> ListedDomain | None:
    if not _STATE_RE.fullmatch(state) or not _TIME_RE.fullmatch(time):
        return None
    n_id, n_mem, n_vcpus = dec_int(domid), dec_int(mem), dec_int(vcpus)
    name = name.strip()
    if n_id is None or n_mem is None or n_vcpus is None or not name:
        return None
    return ListedDomain(name=name, domid=n_id, mem_mib=n_mem, vcpus=n_vcpus, state=state)


def _parse_row(line: str) -> ListedDomain | None:
    # Names may overflow their 40 columns and big domids/times shift columns: go from the right.
    parts = line.rsplit(None, 5)
    if len(parts) == 6:
        row = _row(*parts)
        if row is not None:
            return row
    m = _LONG_ROW_RE.match(line.strip())
    if m:
        return _row(*m.group("name", "id", "mem", "vcpus", "state", "time"))
    return None


def parse_xl_list(text: str, source: str | None = None) -> list[ListedDomain]:
    """Parse the ``xl list``/``xm list`` table into one record per domain, in printed order."""
    lines = normalize_text(text, source).split("\n")
    domains: list[ListedDomain] = []
    seen_header = False
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if _is_header(line):
            seen_header = True
            continue
        row = _parse_row(line)
        if row is not None:
            domains.append(row)
            continue
        if not seen_header and not domains:
            # Anything before the table (a banner, an echoed command) is not ours to judge.
            continue
        if _NOISE_RE.match(line):
            continue
        # A damaged row would silently hide a running guest: refuse instead.
        raise ParseError(f"not an xl/xm list row: {line.strip()[:80]!r}", source, lineno)
    if not seen_header and not domains:
        raise ParseError("no xl/xm list table found", source)
    return domains


def domain_flags(state: str) -> set[str]:
    """Interpret an xl/xm list state (positions r b p s c d) as a set of flag names."""
    state = state.strip()
    flags: set[str] = set()
    if len(state) == 6:
        for pos, ch in enumerate(state):
            if ch in "-? ":
                continue
            if pos == 4:
                # xm: 'c' crashed. xl: the shutdown reason, where 'c' means crash.
                if ch == "c":
                    flags.add("crashed")
                continue
            flags.add(_LIST_FLAGS[pos])
        return flags
    # Not the 6-column form: read letters by meaning rather than position.
    letters = {"r": "running", "b": "blocked", "p": "paused", "s": "shutdown", "c": "crashed"}
    letters["d"] = "dying"
    for ch in state:
        if ch in letters:
            flags.add(letters[ch])
    return flags
