"""Tests for parse_xl_list and domain_flags."""

from __future__ import annotations

import pytest

from xenfab.parse import ParseError, domain_flags, parse_xl_list

XL_TABS = (
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    "Domain-0                                     0  2048     4     r-----  154706.1\n"
    "web01                                        3  1024     2     -b----     167.2\n"
)


def test_xl_list_with_tabs() -> None:
    doms = parse_xl_list(XL_TABS)
    assert [(d.name, d.domid, d.mem_mib, d.vcpus, d.state) for d in doms] == [
        ("Domain-0", 0, 2048, 4, "r-----"),
        ("web01", 3, 1024, 2, "-b----"),
    ]


def test_overflowing_columns_and_null_name() -> None:
    text = (
        "Name                                        ID   Mem VCPUs      State   Time(s)\n"
        "a-very-long-domain-name-that-overflows-forty.example.com 28441   789     1     --psc-"
        " 2145201.6\n"
        "(null)                                   28442     0     1     --psc-      1.2\n"
    )
    doms = parse_xl_list(text)
    assert doms[0].name == "a-very-long-domain-name-that-overflows-forty.example.com"
    assert doms[0].domid == 28441
    assert doms[1].name == "(null)"


def test_damaged_row_is_refused() -> None:
    with pytest.raises(ParseError) as exc:
        parse_xl_list(XL_TABS + "web02    4  1024\n", source="h1")
    assert exc.value.line == 4


def test_no_table() -> None:
    with pytest.raises(ParseError):
        parse_xl_list("")


@pytest.mark.parametrize(
    ("state", "flags"),
    [
        ("r-----", {"running"}),
        ("-b----", {"blocked"}),
        ("--psc-", {"paused", "shutdown", "crashed"}),
        ("---sr-", {"shutdown"}),
        ("-----d", {"dying"}),
        ("------", set()),
    ],
)
def test_domain_flags(state: str, flags: set[str]) -> None:
    assert domain_flags(state) == flags
