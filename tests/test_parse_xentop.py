"""Tests for parse_xentop (batch and interactive xentop output)."""

from __future__ import annotations

import pytest

from xenfab.parse import ParseError, parse_xentop

HEADER = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
    "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID"
)
DOM0 = (
    "  Domain-0 -----r     183404    0.0    2097152   12.5   no limit       n/a     4    0 "
    "       0        0    0        0        0        0          0          0    0"
)
WEB = (
    "     web01 --b---       1234    0.0    1048576    6.2    1049600       6.3     2    1 "
    "   12345    67890    1        0     4432    12009     352272    1231920    0"
)
# Exactly 10 characters: no leading space at all.
DB = (
    "db01.exmpl --b---      99999    0.0    4194304   25.0    4195328      25.0     4    1 "
    "  123456  7654321    2        0   100000   200000   10000000   20000000    0"
)
BATCH_1 = "\n".join([HEADER, DOM0, WEB, DB]) + "\n"


def test_batch_single_iteration_has_no_summary() -> None:
    top = parse_xentop(BATCH_1)
    assert [d.name for d in top.domains] == ["Domain-0", "web01", "db01.exmpl"]
    assert top.total_kib is None and top.free_kib is None and top.cpus is None
    dom0, web, db = top.domains
    assert dom0.maxmem_kib is None and dom0.state == "-----r" and dom0.vcpus == 4
    assert dom0.mem_kib == 2097152
    assert web.maxmem_kib == 1049600 and web.mem_kib == 1048576 and web.state == "--b---"
    assert db.vcpus == 4


def test_interactive_summary() -> None:
    text = (
        "xentop - 10:11:12   Xen 4.4.4OVM\n"
        "3 domains: 1 running, 2 blocked, 0 paused, 0 crashed, 0 dying, 0 shutdown \n"
        "Mem: 16760812k total, 7390316k used, 9370496k free    CPUs: 8 @ 2533MHz\n" + BATCH_1
    )
    top = parse_xentop(text)
    assert (top.total_kib, top.free_kib, top.cpus) == (16760812, 9370496, 8)
    assert len(top.domains) == 3


def test_keeps_last_iteration() -> None:
    second_web = WEB.replace("1048576", "2097152")
    text = BATCH_1 + "\n".join([HEADER, DOM0, second_web, DB]) + "\n"
    top = parse_xentop(text)
    assert len(top.domains) == 3
    assert top.domains[1].mem_kib == 2097152


def test_no_rows_is_an_error() -> None:
    with pytest.raises(ParseError):
        parse_xentop(HEADER + "\n", source="h1")
