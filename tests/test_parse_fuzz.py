"""Property tests: whatever text reaches a parser, only ParseError may escape.

Seeds are valid outputs built from the formats; hypothesis mutates them (truncation, line
deletion/duplication, character flips, whitespace changes, huge numbers) and also feeds
random and token-soup text. Runs are derandomized so CI is deterministic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenfab.parse import (
    Clustat,
    ClusvcadmResult,
    GuestConfig,
    HostInfo,
    ListedDomain,
    ParseError,
    Xentop,
    parse_clustat,
    parse_clusvcadm,
    parse_guest_config,
    parse_xe_error,
    parse_xe_map,
    parse_xe_records,
    parse_xentop,
    parse_xl_info,
    parse_xl_list,
)

FIXTURES = Path(__file__).parent / "fixtures" / "parse"

# XENFAB_FUZZ_EXAMPLES=5000 runs a deeper, randomized search locally; CI stays small and fixed.
_DEEP = int(os.environ.get("XENFAB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_DEEP or 120,
    derandomize=not _DEEP,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


XENTOP_HEADER = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
    "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID"
)
XENTOP = "\n".join(
    [
        "xentop - 10:11:12   Xen 4.4.4OVM",
        "2 domains: 1 running, 1 blocked, 0 paused, 0 crashed, 0 dying, 0 shutdown ",
        "Mem: 16760812k total, 7390316k used, 9370496k free    CPUs: 8 @ 2533MHz",
        XENTOP_HEADER,
        "  Domain-0 -----r     183404    0.0    2097152   12.5   no limit       n/a     4    0 "
        "       0        0    0        0        0        0          0          0    0",
        "VCPUs(sec):   0:      12345s",
        XENTOP_HEADER,
        "     web01 --b---       1234    0.0    1048576    6.2    1049600       6.3     2    1 "
        "   12345    67890    1        0     4432    12009     352272    1231920    0",
        "Net0 RX:  1234567bytes     1234pkts        0err        0drop  TX: 1bytes",
    ]
)
XL_LIST = (
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    "Domain-0                                     0  2048     4     r-----  154706.1\n"
    "(null)                                   28441   789     1     --psc-      1.2\n"
    "web01                                        3  1024     2     -b----     167.2\n"
)
XL_INFO = (
    "host                   : xen2\nnr_cpus                : 12\nmax_cpu_id             : 143\n"
    "virt_caps              :\ntotal_memory           : 65401\nfree_memory            : 12\n"
    "xen_major              : 4\nxen_minor              : 14\nxen_extra              : .6\n"
    "xen_version            : 4.14.6\nxend_config_format     : 4\n"
)
GUEST_XL = (
    "name = \"web#01\" # comment\nmemory = '0x100'\nmaxmem = 0400; vcpus = 2\n"
    "disk = [\n  'phy:/dev/vg/web,xvda,w',\n  ',hdc:cdrom,r',\n]\nvif = [ '' ]\n"
    "pci = [ [ '01:00.0', ], ]\nextra = 'a\\'b'\nextra += ' c'\n"
)
CLUSVCADM = (
    "'node2' not in membership list\nClosest match: 'node2.example.com'\n"
    "Member node2.example.com trying to enable vm:web01...Success\n"
    "Warning: vm:web01 is now running on node3.example.com\n"
)


def _seeds(*names: str) -> list[str]:
    return [fixture(n) for n in names]


SEEDS: dict[str, list[str]] = {
    "xl_info": [XL_INFO, fixture("xminfo-4.0.txt")],
    "xentop": [XENTOP],
    "xl_list": [XL_LIST],
    "guest_config": [GUEST_XL]
    + _seeds("xm-python.cfg", "xm-python2.cfg", "xl-xentools.cfg", "ovm-crlf.cfg"),
    "clustat": _seeds(
        "clustat-rhel6-80.txt",
        "clustat-rhel5.txt",
        "clustat-rhcs4.txt",
        "clustat-long.txt",
        "clustat-rg-not-running.txt",
        "clustat-x-rhel6.xml",
        "clustat-x-inquorate.xml",
        "clustat-x-v40.xml",
    ),
    "clusvcadm": [CLUSVCADM, "Member n1 trying to enable vm:a...", "Could not connect\n"],
    "xe_records": [
        (FIXTURES.parent / "xe" / n).read_text()
        for n in (
            "host-param-list-xcpng75.txt",
            "sr-list-two-blank.txt",
            "pool-param-list-xcpng.txt",
        )
    ],
    "xe_error": [
        (FIXTURES.parent / "xe" / n).read_text()
        for n in ("error-sr-backend-failure-47.txt", "error-sr-backend-failure-vm-start.txt")
    ]
    + [
        "Not enough server memory is available to perform this operation.\nneeded: 1\navailable: 0\n"
    ],
}


def _check_clusvcadm(text: str) -> Any:
    for code in (0, 1, 247, 255):
        result = parse_clusvcadm(text, code, source="fuzz")
        assert isinstance(result, ClusvcadmResult)
        assert isinstance(result.message, str) and isinstance(result.ok, bool)
        assert result.exit_code == code
        if code != 0:
            assert result.ok is False
    return result


def _check_xl_info(text: str) -> Any:
    info = parse_xl_info(text, source="fuzz")
    assert isinstance(info, HostInfo)
    assert all(isinstance(v, int) and v >= 0 for v in (info.total_mib, info.free_mib, info.cpus))
    assert info.toolstack in (None, "xl", "xm")
    return info


def _check_xentop(text: str) -> Any:
    top = parse_xentop(text, source="fuzz")
    assert isinstance(top, Xentop) and top.domains
    for d in top.domains:
        assert d.name and d.name == d.name.strip()
        assert re.fullmatch(r"[-dsbcpr]{6}", d.state)
        assert isinstance(d.mem_kib, int) and isinstance(d.vcpus, int)
        assert d.maxmem_kib is None or isinstance(d.maxmem_kib, int)
    return top


def _check_xl_list(text: str) -> Any:
    doms = parse_xl_list(text, source="fuzz")
    for d in doms:
        assert isinstance(d, ListedDomain) and d.name and len(d.state) == 6
        assert min(d.domid, d.mem_mib, d.vcpus) >= 0
    return doms


def _check_guest_config(text: str) -> Any:
    cfg = parse_guest_config(text, source="fuzz")
    assert isinstance(cfg, GuestConfig)
    assert cfg.name.strip()
    assert cfg.memory_mib > 0 and cfg.maxmem_mib > 0 and cfg.vcpus > 0
    return cfg


def _check_clustat(text: str) -> Any:
    c = parse_clustat(text, source="fuzz")
    assert isinstance(c, Clustat) and c.quorate in (None, True, False)
    assert isinstance(c.rgmanager_running, bool)
    for m in c.members:
        assert m.name and isinstance(m.online, bool) and isinstance(m.local, bool)
        assert m.node_id is None or isinstance(m.node_id, int)
    for name, s in c.services.items():
        assert name and isinstance(s.state, str)
        assert s.owner is None or s.owner.strip()
        assert s.last_owner is None or s.last_owner.strip()
    return c


def _check_xe_records(text: str) -> Any:
    records = parse_xe_records(text, source="fuzz")
    for record in records:
        assert record and all(k == k.strip() and k for k in record)
        assert all(v == v.strip() for v in record.values())
        for v in record.values():
            try:
                assert all(isinstance(x, str) for x in parse_xe_map(v, source="fuzz").values())
            except ParseError as exc:
                assert exc.source == "fuzz"
    return records


def _check_xe_error(text: str) -> Any:
    for code in (0, 1):
        err = parse_xe_error(text, code, source="fuzz")
        assert err.ok is (code == 0) and isinstance(err.message, str)
        assert err.code is None or (err.code and err.code == err.code.strip())
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in err.params.items())
    return err


CHECKS: dict[str, Callable[[str], Any]] = {
    "xl_info": _check_xl_info,
    "xentop": _check_xentop,
    "xl_list": _check_xl_list,
    "guest_config": _check_guest_config,
    "clustat": _check_clustat,
    "clusvcadm": _check_clusvcadm,
    "xe_records": _check_xe_records,
    "xe_error": _check_xe_error,
}


def only_parse_errors(kind: str, text: str) -> None:
    """Run one parser; a ParseError is fine, any other exception fails the test."""
    try:
        CHECKS[kind](text)
    except ParseError as exc:
        assert exc.source == "fuzz"
        assert str(exc)


# --- strategies ---------------------------------------------------------------------------


def _mutate(draw: st.DrawFn, text: str) -> str:
    op = draw(
        st.sampled_from(
            [
                "truncate",
                "delete_line",
                "duplicate_line",
                "swap_lines",
                "flip_char",
                "insert_text",
                "delete_char",
                "whitespace",
                "crlf",
                "huge_number",
                "strip_trailing",
            ]
        )
    )
    lines = text.split("\n")
    if op == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if op == "delete_line" and lines:
        del lines[draw(st.integers(0, len(lines) - 1))]
        return "\n".join(lines)
    if op == "duplicate_line" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        return "\n".join(lines)
    if op == "swap_lines" and len(lines) > 1:
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if op == "flip_char" and text:
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + draw(st.characters()) + text[i + 1 :]
    if op == "insert_text":
        i = draw(st.integers(0, len(text)))
        return text[:i] + draw(st.text(max_size=20)) + text[i:]
    if op == "delete_char" and text:
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + text[i + 1 :]
    if op == "whitespace":
        ws = draw(st.sampled_from(["\t", "  ", "", " \t ", "\n", "\r", "\x0b"]))
        return re.sub(r"[ \t]+", ws, text, count=draw(st.integers(0, 50)))
    if op == "crlf":
        return text.replace("\n", "\r\n")
    if op == "huge_number":
        digits = draw(st.sampled_from(["9" * 25, "1" * 400, "7" * 5000, "0", "00", "-1"]))
        numbers = list(re.finditer(r"[0-9]+", text))
        if numbers:
            m = numbers[draw(st.integers(0, len(numbers) - 1))]
            return text[: m.start()] + digits + text[m.end() :]
        return text + digits
    if op == "strip_trailing":
        return "\n".join(line.rstrip() for line in lines).rstrip("\n")
    return text


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> str:
    text = draw(st.sampled_from(SEEDS[kind]))
    for _ in range(draw(st.integers(1, 4))):
        text = _mutate(draw, text)
    return text


TOKENS = [
    "Member",
    "Name",
    "ID",
    "Status",
    "Online,",
    "Offline",
    "Local,",
    "rgmanager",
    "Quorum",
    "Disk",
    "Service",
    "Owner",
    "(Last)",
    "State",
    "(none)",
    "(unknown)",
    "none",
    "vm:web01",
    "started",
    "started[Z]",
    "disabled",
    "Member Status:",
    "Quorate",
    "Inquorate",
    "------",
    "----",
    "Resource Group Manager not running",
    "0x0000000000000002",
    "<clustat>",
    "</clustat>",
    "<group",
    'name="vm:a"',
    'state_str="started"',
    "/>",
    "<nodes>",
    "NAME",
    "STATE",
    "MEM(k)",
    "MAXMEM(k)",
    "VCPUS",
    "no",
    "limit",
    "n/a",
    "-----r",
    "--b---",
    "Domain-0",
    "(null)",
    "r-----",
    "--psc-",
    "Time(s)",
    "Mem",
    "Mem:",
    "k total,",
    "CPUs:",
    "xentop -",
    "total_memory",
    "free_memory",
    "nr_cpus",
    ":",
    "=",
    "+=",
    "[",
    "]",
    ",",
    ";",
    "#",
    "'",
    '"',
    "\\",
    "name",
    "memory",
    "maxmem",
    "vcpus",
    "0100",
    "0x100",
    "'256'",
    "def",
    "%",
    "True",
    "...",
    "Success",
    "Failure",
    "Trying to relocate",
    "Local machine",
    "trying to enable",
    "is now running on",
    "Closest match:",
    "'n1'",
    "9" * 30,
    "0",
    "\t",
    "\n",
    " ",
    "\r\n",
]


@st.composite
def token_soup(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(TOKENS), max_size=60))
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\n", "\t", ""]), min_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, seps, strict=False))


KINDS = sorted(CHECKS)


# --- properties -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_seeds_parse(kind: str) -> None:
    for text in SEEDS[kind]:
        CHECKS[kind](text)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_mutated_outputs_raise_only_parse_error(kind: str, data: st.DataObject) -> None:
    only_parse_errors(kind, data.draw(mutated(kind)))


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(text=st.text(max_size=400))
def test_random_text_raises_only_parse_error(kind: str, text: str) -> None:
    only_parse_errors(kind, text)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(text=token_soup())
def test_token_soup_raises_only_parse_error(kind: str, text: str) -> None:
    only_parse_errors(kind, text)


@pytest.mark.parametrize("kind", KINDS)
@settings(FUZZ, max_examples=_DEEP or 40)
@given(blob=st.binary(max_size=300))
def test_random_bytes_raise_only_parse_error(kind: str, blob: bytes) -> None:
    only_parse_errors(kind, blob)  # type: ignore[arg-type]


@FUZZ
@given(
    memory=st.integers(1, 2**40),
    fmt=st.sampled_from(["{}", "'{}'", '"{}"', "0x{:x}", "'0x{:x}'", "0{:o}", '"0{:o}"']),
    sep=st.sampled_from(["\n", ";", " ; ", "\r\n", " # c\n"]),
)
def test_guest_config_number_forms_round_trip(memory: int, fmt: str, sep: str) -> None:
    text = f"name = 'x'{sep}memory = {fmt.format(memory)}{sep}vcpus = 1{sep}"
    cfg = parse_guest_config(text)
    assert cfg.memory_mib == memory == cfg.maxmem_mib


@FUZZ
@given(
    name=st.from_regex(r"[A-Za-z0-9_.()#:-]{1,60}", fullmatch=True),
    domid=st.integers(0, 10**6),
    mem=st.integers(0, 10**7),
    vcpus=st.integers(1, 512),
    state=st.from_regex(r"[-r][-b][-p][-s][-rscwS][-d]", fullmatch=True),
    time=st.floats(0, 1e9, allow_nan=False),
    tabs=st.booleans(),
)
def test_xl_list_rows_round_trip(
    name: str, domid: int, mem: int, vcpus: int, state: str, time: float, tabs: bool
) -> None:
    header = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    line = f"{name:<40} {domid:5d} {mem:5d} {vcpus:5d}     {state}  {time:8.1f}"
    text = header + "\n" + line
    if not tabs:
        text = text.expandtabs()
    (dom,) = parse_xl_list(text)
    assert (dom.name, dom.domid, dom.mem_mib, dom.vcpus, dom.state) == (
        name,
        domid,
        mem,
        vcpus,
        state,
    )
