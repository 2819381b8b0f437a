"""Tests for parse_xentop: batch and interactive output, built from xentop's printf formats."""

from __future__ import annotations

import pytest

from xenfab.parse import ParseError, Xentop, parse_xentop

# do_header(): each name right-aligned in its default width, one space between.
HEADER = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
    "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID"
)
# Before Xen 4.0 there were no VBD_RSECT/VBD_WSECT columns (17 columns).
HEADER_OLD = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
    "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR SSID"
)
DOM0 = (
    "  Domain-0 -----r     183404    0.0    2097152   12.5   no limit       n/a     4    0 "
    "       0        0    0        0        0        0          0          0    0"
)
WEB = (
    "     web01 --b---       1234    0.0    1048576    6.2    1049600       6.3     2    1 "
    "   12345    67890    1        0     4432    12009     352272    1231920    0"
)
# A name of exactly 10 characters has no leading space.
DB = (
    "db01.exmpl --b---      99999    0.0    4194304   25.0    4195328      25.0     4    1 "
    "  123456  7654321    2        0   100000   200000   10000000   20000000    0"
)
DOM0_OLD = (
    "  Domain-0 -----r      18340    0.3     524288    3.1   no limit       n/a     2    4 "
    "  834534  1734541    0        0        0        0    0"
)
WEB_OLD = (
    "     web01 --b---        123    0.1     262144    1.6     262144       1.6     1    1 "
    "     121       87    1        0      559      342    0"
)
BATCH_1 = "\n".join([HEADER, DOM0, WEB, DB]) + "\n"

SUMMARY = (
    "xentop - 10:11:12   Xen 4.4.4OVM\n"
    "3 domains: 1 running, 2 blocked, 0 paused, 0 crashed, 0 dying, 0 shutdown \n"
    "Mem: 16760812k total, 7390316k used, 9370496k free    CPUs: 8 @ 2533MHz\n"
)


def names(top: Xentop) -> list[str]:
    return [d.name for d in top.domains]


def test_batch_single_iteration_has_no_summary() -> None:
    top = parse_xentop(BATCH_1)
    assert names(top) == ["Domain-0", "web01", "db01.exmpl"]
    assert top.total_kib is None and top.free_kib is None and top.cpus is None
    dom0, web, db = top.domains
    assert dom0.maxmem_kib is None and dom0.state == "-----r" and dom0.vcpus == 4
    assert dom0.mem_kib == 2097152
    assert web.maxmem_kib == 1049600 and web.mem_kib == 1048576 and web.state == "--b---"
    assert db.vcpus == 4 and db.mem_kib == 4194304


def test_record_mapping_style() -> None:
    top = parse_xentop(BATCH_1, source="h1")
    assert top["domains"][1]["name"] == "web01"
    assert top.as_dict()["domains"][0]["maxmem_kib"] is None


def test_interactive_summary() -> None:
    top = parse_xentop(SUMMARY + BATCH_1)
    assert (top.total_kib, top.free_kib, top.cpus) == (16760812, 9370496, 8)
    assert len(top.domains) == 3


def test_summary_without_trailing_space_and_extra_spacing() -> None:
    text = (
        "xentop - 01:02:03   Xen 3.3.2-rc1-xvm\n"
        "2 domains: 1 running, 1 blocked, 0 paused, 0 crashed, 0 dying, 0 shutdown\n"
        "Mem: 8388608k total,  1048576k used,   7340032k free     CPUs: 2 @ 3000MHz\n"
        + "\n".join([HEADER, DOM0, WEB])
    )
    top = parse_xentop(text)
    assert (top.total_kib, top.free_kib, top.cpus) == (8388608, 7340032, 2)


def test_interactive_multiple_iterations_takes_last_summary() -> None:
    second = SUMMARY.replace("9370496k free", "1000k free").replace("10:11:12", "10:11:15")
    text = SUMMARY + BATCH_1 + second + "\n".join([HEADER, WEB, DOM0])
    top = parse_xentop(text)
    assert top.free_kib == 1000
    # Interactive mode sorts by CPU(%): dom0 need not come first.
    assert names(top) == ["web01", "Domain-0"]


def test_interactive_with_curses_bottom_line_and_ansi() -> None:
    text = (
        "\x1b[H\x1b[2J"
        + SUMMARY
        + "\x1b[7m"
        + HEADER
        + "\x1b[0m\n"
        + DOM0
        + "\n"
        + WEB
        + "\n  Delay  Networks  vBds  VCPUs  Repeat header  Sort order  Quit\n"
    )
    top = parse_xentop(text)
    assert names(top) == ["Domain-0", "web01"] and top.cpus == 8


def test_keeps_last_batch_iteration() -> None:
    second_web = WEB.replace("1048576", "2097152")
    text = BATCH_1 + "\n".join([HEADER, DOM0, second_web, DB]) + "\n"
    top = parse_xentop(text)
    assert len(top.domains) == 3
    assert top.domains[1].mem_kib == 2097152


def test_last_iteration_may_have_different_domains() -> None:
    text = BATCH_1 + "\n".join([HEADER, DOM0, DB]) + "\n"
    assert names(parse_xentop(text)) == ["Domain-0", "db01.exmpl"]


def test_truncated_last_iteration_falls_back_to_previous() -> None:
    # Output cut right after the second header: the first iteration is complete.
    text = BATCH_1 + HEADER + "\n"
    assert names(parse_xentop(text)) == ["Domain-0", "web01", "db01.exmpl"]


def test_repeat_header_mode_one_iteration() -> None:
    text = "\n".join([HEADER, DOM0, HEADER, WEB, HEADER, DB]) + "\n"
    assert names(parse_xentop(text)) == ["Domain-0", "web01", "db01.exmpl"]


def test_repeat_header_mode_two_iterations() -> None:
    web2 = WEB.replace("1048576", "999")
    it1 = [HEADER, DOM0, HEADER, WEB, HEADER, DB]
    it2 = [HEADER, DOM0, HEADER, web2, HEADER, DB]
    top = parse_xentop("\n".join(it1 + it2))
    assert names(top) == ["Domain-0", "web01", "db01.exmpl"]
    assert top.domains[1].mem_kib == 999


def test_repeat_header_mode_domain_count_changes() -> None:
    it1 = [HEADER, DOM0, HEADER, WEB, HEADER, DB]
    it2 = [HEADER, DOM0, HEADER, WEB]
    assert names(parse_xentop("\n".join(it1 + it2))) == ["Domain-0", "web01"]


def test_repeat_header_without_dom0_splits_on_repeated_name() -> None:
    it = [HEADER, WEB, HEADER, DB]
    assert names(parse_xentop("\n".join(it + it))) == ["web01", "db01.exmpl"]


def test_truncated_names_may_repeat_within_one_iteration() -> None:
    # Two guests whose names share the first 10 characters print identically.
    a = WEB.replace("     web01", "scas22dv05")
    b = DB.replace("db01.exmpl", "scas22dv05")
    top = parse_xentop("\n".join([HEADER, DOM0, a, b]))
    assert names(top) == ["Domain-0", "scas22dv05", "scas22dv05"]
    assert top.domains[1].mem_kib != top.domains[2].mem_kib


def test_vcpu_network_vbd_detail_lines_are_skipped() -> None:
    extra = [
        "VCPUs(sec):   0:      12345s  1:       2345s",
        "Net0 RX:  1234567bytes     1234pkts        0err        0drop  "
        "TX:   234567bytes      234pkts        0err        0drop",
        "VBD BlkBack 51712 [ca: 0]  OO:        0   RD:     4432   WR:    12009",
        "VBD BlkBack 51728 [ca:10]  OO:        0   RD:        0   WR:        0  "
        "RSECT:          0 WSECT:          0",
    ]
    text = "\n".join([HEADER, DOM0, *extra, WEB, *extra, DB, *extra])
    assert names(parse_xentop(text)) == ["Domain-0", "web01", "db01.exmpl"]


def test_full_names_with_spaces_and_grown_columns() -> None:
    # -f prints the whole name (and Xen >= 4.5 grows columns to fit their values).
    row = (
        "my guest with spaces.example.com --b---   12345678    0.0   16777216   50.0   16778240"
        "      50.0    16    2 123456789012 987654321098    4        0 123456789 987654321 "
        "12345678901 98765432109    0"
    )
    top = parse_xentop("\n".join([HEADER, DOM0, row]))
    guest = top.domains[1]
    assert guest.name == "my guest with spaces.example.com"
    assert (guest.mem_kib, guest.maxmem_kib, guest.vcpus) == (16777216, 16778240, 16)


def test_name_containing_no_limit_with_full_names() -> None:
    row = WEB.replace("     web01", "no limit vm")
    top = parse_xentop("\n".join([HEADER, row]))
    assert top.domains[0].name == "no limit vm" and top.domains[0].maxmem_kib == 1049600


def test_old_17_column_layout() -> None:
    top = parse_xentop("\n".join([HEADER_OLD, DOM0_OLD, WEB_OLD]) + "\n")
    assert names(top) == ["Domain-0", "web01"]
    assert top.domains[1].maxmem_kib == 262144 and top.domains[1].vcpus == 1


@pytest.mark.parametrize("rows", [[DOM0, WEB], [DOM0_OLD, WEB_OLD]])
def test_rows_without_header_are_recognised(rows: list[str]) -> None:
    assert names(parse_xentop("\n".join(rows))) == ["Domain-0", "web01"]


def test_ovm_dom0_has_numeric_maxmem() -> None:
    row = DOM0.replace("  no limit       n/a", "   2097152     12.5")
    assert parse_xentop("\n".join([HEADER, row])).domains[0].maxmem_kib == 2097152


def test_dom0_not_first_in_batch() -> None:
    assert names(parse_xentop("\n".join([HEADER, WEB, DOM0]))) == ["web01", "Domain-0"]


def test_crlf_trailing_spaces_and_tabs() -> None:
    text = "\r\n".join(line + "   " for line in [HEADER, DOM0.replace(" ", "\t", 3), WEB])
    assert names(parse_xentop(text)) == ["Domain-0", "web01"]


@pytest.mark.parametrize(
    "state", ["--b---", "-----r", "---c--", "-s----", "d-----", "----p-", "------"]
)
def test_state_flags_are_kept_as_printed(state: str) -> None:
    row = WEB.replace("--b---", state)
    assert parse_xentop("\n".join([HEADER, row])).domains[0].state == state


def test_invalid_state_row_is_not_a_domain() -> None:
    row = WEB.replace("--b---", "--x---")
    with pytest.raises(ParseError):
        parse_xentop("\n".join([HEADER, row]))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        HEADER + "\n",
        "xentop: Failed to initialize xenstat library\n",
        SUMMARY,
    ],
)
def test_no_rows_is_an_error(text: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_xentop(text, source="h1")
    assert exc.value.source == "h1"


# An interactive screen cut by the terminal width: the first 8 columns, header included (issue
# 11 item 10). The columns come from the header line, not from a fixed list.
FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "parse"


@pytest.mark.parametrize("width", [74, 78])
def test_interactive_screen_cut_to_eight_columns(width):
    text = (FIXTURES / f"xentop-interactive-cut{width}.txt").read_text()
    top = parse_xentop(text, source=f"cut{width}")
    rows = {d.name: d for d in top.domains}
    assert list(rows) == ["Domain-0", "web01", "db01.exmpl"]
    assert rows["web01"].mem_kib == 1048576 and rows["web01"].maxmem_kib == 1049600
    assert rows["Domain-0"].maxmem_kib is None  # "no limit"
    assert all(d.vcpus is None for d in top.domains)  # VCPUS was cut away
    assert (top.total_kib, top.free_kib, top.cpus) == (16776848, 7339664, 8)


def test_cut_after_vcpus_keeps_vcpus():
    text = "\n".join(line[:80] for line in (HEADER, DOM0, WEB)) + "\n"
    rows = {d.name: d.vcpus for d in parse_xentop(text).domains}
    assert rows == {"Domain-0": 4, "web01": 2}


def test_a_partial_value_under_a_partial_column_name_is_ignored():
    # Cut at 79: header ends "VCPU", a wide row keeps one digit of its VCPUS.
    text = "\n".join([HEADER[:79], WEB[:79], DOM0[:79]]) + "\n"
    rows = {d.name: (d.mem_kib, d.vcpus) for d in parse_xentop(text).domains}
    assert rows == {"web01": (1048576, None), "Domain-0": (2097152, None)}
