"""Tests for parse_xl_list (xl and xm) and domain_flags."""

from __future__ import annotations

import pytest

from xenfab.parse import ListedDomain, ParseError, domain_flags, parse_xl_list

# xl: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f" with a TAB-separated header tail.
XL_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
XM_HEADER = "Name                                        ID   Mem VCPUs      State   Time(s)"


def row(name: str, domid: int, mem: int, vcpus: int, state: str, time: float) -> str:
    return f"{name:<40} {domid:5d} {mem:5d} {vcpus:5d}     {state}  {time:8.1f}"


XL = "\n".join(
    [
        XL_HEADER,
        row("Domain-0", 0, 2048, 4, "r-----", 154706.1),
        row("web01", 3, 1024, 2, "-b----", 167.2),
        row("db01", 12, 8192, 8, "------", 5.0),
    ]
)


def tuples(doms: list[ListedDomain]) -> list[tuple]:
    return [(d.name, d.domid, d.mem_mib, d.vcpus, d.state) for d in doms]


def test_xl_list_with_tabs() -> None:
    assert tuples(parse_xl_list(XL + "\n")) == [
        ("Domain-0", 0, 2048, 4, "r-----"),
        ("web01", 3, 1024, 2, "-b----"),
        ("db01", 12, 8192, 8, "------"),
    ]


def test_xm_list_spaces_and_unordered_ids() -> None:
    text = "\n".join(
        [
            XM_HEADER,
            row("Domain-0", 0, 1023, 1, "r-----", 121152.6),
            row("server01.example.com", 1, 1024, 1, "-b----", 167643.2),
            row("web3106215069.example.com", 3, 4096, 1, "-b----", 466690.9),
            row("testinstance.example.com", 2, 2048, 2, "r-----", 244443.0),
        ]
    )
    doms = parse_xl_list(text)
    assert [d.domid for d in doms] == [0, 1, 3, 2]
    assert doms[2].name == "web3106215069.example.com" and doms[2].mem_mib == 4096


def test_tabs_expanded_by_terminal_paste() -> None:
    assert tuples(parse_xl_list(XL.expandtabs())) == tuples(parse_xl_list(XL))


def test_overflowing_columns_null_name_and_odd_characters() -> None:
    text = "\n".join(
        [
            XM_HEADER,
            row(
                "a-very-long-domain-name-that-overflows-forty.example.com",
                28441,
                789,
                1,
                "--psc-",
                2145201.6,
            ),
            row("(null)", 28442, 0, 1, "--psc-", 1.2),
            row("abcd#43", 43, 512, 1, "-b----", 10.0),
            row("big", 123456, 123456, 128, "r-----", 123456789.5),
        ]
    )
    doms = parse_xl_list(text)
    assert doms[0].name == "a-very-long-domain-name-that-overflows-forty.example.com"
    assert doms[0].domid == 28441 and doms[0].state == "--psc-"
    assert doms[1].name == "(null)"
    assert doms[2].name == "abcd#43"
    assert (doms[3].domid, doms[3].mem_mib, doms[3].vcpus) == (123456, 123456, 128)


def test_name_with_spaces_is_kept_whole() -> None:
    text = XL_HEADER + "\n" + row("my guest", 7, 256, 1, "-b----", 1.0)
    assert parse_xl_list(text)[0].name == "my guest"


def test_crlf_trailing_whitespace_no_final_newline() -> None:
    text = "\r\n".join(line + " \t " for line in XL.split("\n"))
    assert tuples(parse_xl_list(text)) == tuples(parse_xl_list(XL))


def test_blank_lines_and_header_repeated() -> None:
    text = "\n" + XL + "\n\n" + XL + "\n\n"
    assert len(parse_xl_list(text)) == 6


def test_verbose_columns_after_time() -> None:
    # `xl list -v` appends UUID, reason code and security label.
    header = XL_HEADER + "   UUID                                Reason-Code\tSecurity Label"
    r = row("web01", 3, 1024, 2, "-b----", 167.2)
    r += "  5b1f3f4e-5a3b-4f6e-9a2b-2d0c3a9b1e11     -                -"
    doms = parse_xl_list(header + "\n" + r)
    assert tuples(doms) == [("web01", 3, 1024, 2, "-b----")]


def test_numa_affinity_column() -> None:
    header = XL_HEADER + "         NODE Affinity"
    r = row("web01", 3, 1024, 2, "-b----", 167.2) + " all"
    assert parse_xl_list(header + "\n" + r)[0].domid == 3


def test_header_only_is_an_empty_list() -> None:
    assert parse_xl_list(XL_HEADER + "\n") == []


def test_rows_without_header() -> None:
    assert len(parse_xl_list("\n".join(XL.split("\n")[1:]))) == 3


def test_noise_before_table_is_ignored() -> None:
    assert len(parse_xl_list("$ xl list\n" + XL)) == 3


def test_damaged_row_is_refused_with_line_number() -> None:
    with pytest.raises(ParseError) as exc:
        parse_xl_list(XL + "\nweb02    4  1024\n", source="h1:xl list")
    assert exc.value.line == 5 and exc.value.source == "h1:xl list"
    assert str(exc.value).startswith("h1:xl list: 5: ")


def test_non_numeric_domid_is_refused() -> None:
    bad = XL.replace("    3  1024", "    x  1024")
    with pytest.raises(ParseError):
        parse_xl_list(bad)


@pytest.mark.parametrize("text", ["", "   \n", "Error: Unable to connect to xend!\n"])
def test_no_table(text: str) -> None:
    with pytest.raises(ParseError):
        parse_xl_list(text)


def test_stderr_noise_inside_table_is_tolerated() -> None:
    text = XL + "\nlibxl: warning: libxl_domain_info: something odd\n"
    assert len(parse_xl_list(text)) == 3


@pytest.mark.parametrize(
    ("state", "flags"),
    [
        ("r-----", {"running"}),
        ("-b----", {"blocked"}),
        ("--p---", {"paused"}),
        ("-bp---", {"blocked", "paused"}),
        ("--psc-", {"paused", "shutdown", "crashed"}),
        ("---sr-", {"shutdown"}),  # xl: shutdown for reboot
        ("---ss-", {"shutdown"}),  # xl: suspended ("s" in 5th place is a reason)
        ("---sw-", {"shutdown"}),
        ("----c-", {"crashed"}),  # xm: crashed flag
        ("-----d", {"dying"}),
        ("------", set()),
        (" r---- ", {"running"}),
        ("rb", {"running", "blocked"}),
        ("", set()),
    ],
)
def test_domain_flags(state: str, flags: set[str]) -> None:
    assert domain_flags(state) == flags
