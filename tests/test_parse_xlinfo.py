"""Tests for parse_xl_info (xl info / xm info)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenfab.parse import ParseError, parse_xl_info

FIXTURES = Path(__file__).parent / "fixtures" / "parse"

XM_INFO = (FIXTURES / "xminfo-4.0.txt").read_text()

XL_INFO = """\
host                   : xen2
release                : 5.10.0-21-amd64
machine                : x86_64
nr_cpus                : 12
max_cpu_id             : 143
nr_nodes               : 1
cpu_mhz                : 2533.431
hw_caps                : bfebfbff:77fefbff:2c100800:00000121:0000000f:009c6fbf:00000000:00000100
virt_caps              : pv hvm hvm_directio pv_directio hap shadow gnttab-v1 gnttab-v2
total_memory           : 65401
free_memory            : 12
sharing_freed_memory   : 0
sharing_used_memory    : 0
outstanding_claims     : 0
free_cpus              : 0
xen_major              : 4
xen_minor              : 14
xen_extra              : .6
xen_version            : 4.14.6
xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64
xen_scheduler          : credit2
xen_commandline        : placeholder dom0_mem=4096M,max:4096M
xend_config_format     : 4
"""


def test_xm_info() -> None:
    info = parse_xl_info(XM_INFO, source="node1")
    assert info.total_mib == 32758
    assert info.free_mib == 1024
    assert info.cpus == 8
    assert info.xen_version == "4.0.1"
    assert info.toolstack == "xm"


def test_xl_info() -> None:
    info = parse_xl_info(XL_INFO)
    assert (info.total_mib, info.free_mib, info.cpus) == (65401, 12, 12)
    assert info.xen_version == "4.14.6"
    assert info.toolstack == "xl"
    assert info["cpus"] == 12


def test_crlf_no_final_newline_and_stripped_empty_values() -> None:
    text = XL_INFO.replace("virt_caps              : pv", "virt_caps              :pv")
    text = text.rstrip("\n").replace("\n", "\r\n")
    info = parse_xl_info(text)
    assert info.total_mib == 65401


def test_toolstack_unknown_without_markers() -> None:
    text = "total_memory : 100\nfree_memory : 50\nnr_cpus : 2\n"
    info = parse_xl_info(text)
    assert info.toolstack is None and info.xen_version is None


@pytest.mark.parametrize("missing", ["total_memory", "free_memory", "nr_cpus"])
def test_missing_required_key(missing: str) -> None:
    text = "\n".join(ln for ln in XL_INFO.splitlines() if not ln.startswith(missing))
    with pytest.raises(ParseError) as exc:
        parse_xl_info(text, source="h1")
    assert missing in str(exc.value) and exc.value.source == "h1"


def test_non_integer_value_names_line() -> None:
    text = XL_INFO.replace("total_memory           : 65401", "total_memory           : lots")
    with pytest.raises(ParseError) as exc:
        parse_xl_info(text, source="h1")
    assert exc.value.line == 10


def test_empty_text() -> None:
    with pytest.raises(ParseError):
        parse_xl_info("")


def test_colons_in_values_and_empty_values() -> None:
    text = (
        "host                   : a:b:c\n"
        "nr_cpus                : 2\n"
        "virt_caps              :\n"
        "node_to_cpu            : node0:0-1\n"
        "total_memory           : 4096\n"
        "free_memory            : 100\n"
    )
    info = parse_xl_info(text)
    assert (info.total_mib, info.free_mib, info.cpus) == (4096, 100, 2)
    assert info.toolstack == "xm"


def test_ovm_xm_with_free_cpus_is_still_xm() -> None:
    text = XM_INFO.replace("max_node_id", "free_cpus              : 0\nmax_node_id")
    assert parse_xl_info(text).toolstack == "xm"


def test_xm_version_without_extra() -> None:
    text = "\n".join(ln for ln in XM_INFO.splitlines() if not ln.startswith("xen_extra"))
    assert parse_xl_info(text).xen_version == "4.0"


def test_first_occurrence_wins_and_noise_lines_are_ignored() -> None:
    text = "WARNING: something odd happened\nnot a key value line\n" + XL_INFO
    text += "total_memory           : 1\n"
    assert parse_xl_info(text).total_mib == 65401


@pytest.mark.parametrize("value", ["-1", "1.5", "12 MB", "", "9" * 60])
def test_bad_integers(value: str) -> None:
    text = XL_INFO.replace("nr_cpus                : 12", f"nr_cpus                : {value}")
    with pytest.raises(ParseError):
        parse_xl_info(text)


def test_bytes_input_is_decoded() -> None:
    assert parse_xl_info(XL_INFO.encode()).cpus == 12


def test_non_text_input() -> None:
    with pytest.raises(ParseError):
        parse_xl_info(None)  # type: ignore[arg-type]
