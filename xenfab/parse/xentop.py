"""Parser for ``xentop -b`` (batch) and captured interactive ``xentop``/``xl top`` screens."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xenfab.parse._util import dec_int, normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import Xentop, XentopDomain

# Xen >= 4.0 header; before that VBD_RSECT/VBD_WSECT did not exist.
_COLS_NEW = [
    "NAME",
    "STATE",
    "CPU(sec)",
    "CPU(%)",
    "MEM(k)",
    "MEM(%)",
    "MAXMEM(k)",
    "MAXMEM(%)",
    "VCPUS",
    "NETS",
    "NETTX(k)",
    "NETRX(k)",
    "VBDS",
    "VBD_OO",
    "VBD_RD",
    "VBD_WR",
    "VBD_RSECT",
    "VBD_WSECT",
    "SSID",
]
_COLS_OLD = [c for c in _COLS_NEW if c not in ("VBD_RSECT", "VBD_WSECT")]

# Flags in xentop's fixed order d s b c p r, '-' when unset.
_STATE_RE = re.compile(r"[-dsbcpr]{6}")
_NUM_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?|n/a")
_TOKEN_RE = re.compile(r"\S+")
_MEM_RE = re.compile(
    r"Mem:\s*(\d+)k\s+total,\s*(\d+)k\s+used,\s*(\d+)k\s+free(?:\s+CPUs:\s*(\d+)(?:\s*@\s*(\d+)\s*MHz)?)?"
)


@dataclass
class _Block:
    rows: list[XentopDomain] = field(default_factory=list)
    total_kib: int | None = None
    free_kib: int | None = None
    cpus: int | None = None
    header: bool = False


def _is_header(tokens: list[str]) -> bool:
    return len(tokens) >= 5 and tokens[0] == "NAME" and tokens[1] == "STATE" and "MEM(k)" in tokens


def _header_layouts(tokens: list[str]) -> list[list[str]]:
    """The column layouts a header line allows, most likely first.

    An interactive screen is cut at the terminal width, header included: the columns are the
    header's own (the first 8, say, with no VCPUS). The last name may be cut too (``VCP``);
    its value, right-aligned, is then cut away or left partial, so both layouts are tried.
    """
    known = set(_COLS_NEW)
    if tokens[-1] in known:
        return [tokens]
    whole = tokens[:-1]
    return [whole + ["?"], whole]


def _parse_row(line: str, cols: list[str]) -> XentopDomain | None:
    """Parse one domain row from the right using the column layout; None if it is not a row."""
    if len(cols) < 5 or cols[0] != "NAME" or cols[1] != "STATE" or "MEM(k)" not in cols:
        return None
    toks = list(_TOKEN_RE.finditer(line))
    values: dict[str, str | None] = {}
    pos = len(toks)
    for col in reversed(cols[2:]):
        if col == "MAXMEM(k)" and pos >= 2 and toks[pos - 1].group() == "limit":
            # Dom0's MAXMEM(k) is "no limit": two tokens where a number is expected.
            if toks[pos - 2].group() != "no":
                return None
            values[col] = None
            pos -= 2
            continue
        if pos < 1:
            return None
        pos -= 1
        tok = toks[pos].group()
        if not _NUM_RE.fullmatch(tok):
            return None
        values[col] = tok
    if pos < 2:
        return None
    state_tok = toks[pos - 1]
    if not _STATE_RE.fullmatch(state_tok.group()):
        return None
    # With -f the name is printed in full and may contain spaces: keep everything left.
    name = line[: state_tok.start()].strip()
    mem = dec_int(values["MEM(k)"] or "")
    maxmem = dec_int(values["MAXMEM(k)"] or "") if values.get("MAXMEM(k)") else None
    if "MAXMEM(k)" in values and values["MAXMEM(k)"] is not None and maxmem is None:
        return None
    vcpus = dec_int(values["VCPUS"] or "") if "VCPUS" in values else None
    if not name or mem is None or ("VCPUS" in values and vcpus is None):
        return None
    return XentopDomain(
        name=name, state=state_tok.group(), mem_kib=mem, maxmem_kib=maxmem, vcpus=vcpus
    )


def _split_repeated(rows: list[XentopDomain]) -> list[XentopDomain]:
    """Return the last iteration of ``-r`` output, where a header precedes every row."""
    dom0 = [i for i, r in enumerate(rows) if r.name == "Domain-0"]
    if len(dom0) > 1:
        if len(rows) % len(dom0) == 0:
            # Same number of domains each iteration: equal chunks survive any sort order.
            size = len(rows) // len(dom0)
            return rows[-size:]
        return rows[dom0[-1] :]
    if dom0:
        return rows
    # No dom0 row to anchor on: a repeated name starts the next iteration.
    last: list[XentopDomain] = []
    seen: set[str] = set()
    for r in rows:
        if r.name in seen:
            last, seen = [], set()
        last.append(r)
        seen.add(r.name)
    return last


def parse_xentop(text: str, source: str | None = None) -> Xentop:
    """Parse xentop output (batch or interactive, any -i/-r/-v/-n/-x/-f); keep the last block."""
    lines = normalize_text(text, source).split("\n")
    cols: list[list[str]] | None = None
    blocks: list[_Block] = []
    have_summary = False
    # Per-header row counts, to recognise -r (a header before every row).
    header_rows: list[int] = []

    def fresh(blk_reusable: bool) -> _Block:
        if blocks and blk_reusable:
            return blocks[-1]
        blocks.append(_Block())
        return blocks[-1]

    for line in lines:
        tokens = line.split()
        if not tokens:
            continue
        cur = blocks[-1] if blocks else None
        if line.lstrip().startswith("xentop - "):
            # The first summary line starts every interactive iteration.
            have_summary = True
            fresh(cur is not None and not cur.rows and not cur.header)
            continue
        mem = _MEM_RE.search(line)
        if mem:
            have_summary = True
            blk = fresh(cur is not None and not cur.rows and not cur.header)
            blk.total_kib = dec_int(mem.group(1))
            blk.free_kib = dec_int(mem.group(3))
            blk.cpus = dec_int(mem.group(4)) if mem.group(4) else None
            continue
        if _is_header(tokens):
            cols = _header_layouts(tokens)
            header_rows.append(0)
            if have_summary:
                blk = fresh(cur is not None)
            else:
                # Batch mode: each header starts an iteration (or, with -r, a row).
                blk = fresh(cur is not None and not cur.rows)
            blk.header = True
            continue
        layouts = cols if cols else [_COLS_NEW, _COLS_OLD]
        row = None
        for layout in layouts:
            row = _parse_row(line, layout)
            if row:
                break
        if row is None:
            # -v/-n/-x detail lines, the curses bottom line and noise.
            continue
        fresh(cur is not None).rows.append(row)
        if header_rows:
            header_rows[-1] += 1

    if not have_summary and len(header_rows) > 1 and max(header_rows) <= 1:
        rows = [r for b in blocks for r in b.rows]
        if rows:
            return Xentop(domains=_split_repeated(rows))

    for blk in reversed(blocks):
        if blk.rows:
            return Xentop(
                domains=blk.rows, total_kib=blk.total_kib, free_kib=blk.free_kib, cpus=blk.cpus
            )
    raise ParseError("no xentop domain rows found", source)
