"""Tests for parse_clustat: RHEL 6/5 and RHCS 4 text, the -l layout and clustat -x XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenfab.parse import Clustat, ParseError, parse_clustat

FIXTURES = Path(__file__).parent / "fixtures" / "parse"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def member_tuples(c: Clustat) -> list[tuple]:
    return [(m.name, m.online, m.local, m.node_id) for m in c.members]


def svc(c: Clustat, name: str) -> tuple:
    s = c.services[name]
    return (s.state, s.owner, s.last_owner)


# --- RHEL 6 text at any terminal width ------------------------------------------------------


@pytest.mark.parametrize("cols", [80, 160, 52])
def test_rhel6_text_any_width(cols: int) -> None:
    c = parse_clustat(fixture(f"clustat-rhel6-{cols}.txt"), source="node1")
    assert c.quorate is True and c.rgmanager_running is True
    # The quorum disk is not a member; the offline node is, but not online.
    assert [(m.name, m.online, m.local, m.node_id) for m in c.members] == [
        ("node1.example.com", True, True, 1),
        ("node2.example.com", True, False, 2),
        ("node3.example.com", False, False, 3),
    ]
    assert c.services["vm:web01"].state == "started"
    assert c.services["vm:web01"].owner is not None
    assert c.services["vm:web01"].owner.startswith("node1.example.c")
    assert c.services["vm:web01"].last_owner is None
    db = c.services["vm:db01"]
    assert db.state == "disabled" and db.owner is None and db.last_owner.startswith("node2.")
    assert svc(c, "vm:new01") == ("stopped", None, None)
    assert svc(c, "vm:gone01") == ("failed", None, None)
    assert c.services["vm:frozen01"].state == "started"
    assert svc(c, "service:nfs") == ("recovering", None, None)
    assert c.services["vm:mig01"].state == "migrating"
    assert len(c.services) == 8


def test_wide_terminal_keeps_full_names() -> None:
    c = parse_clustat(fixture("clustat-rhel6-160.txt"))
    assert "vm:a-very-long-virtual-machine-name-cut-off" in c.services
    assert c.services["vm:db01"].last_owner == "node2.example.com"


def test_80_columns_truncates_names_as_printed() -> None:
    c = parse_clustat(fixture("clustat-rhel6-80.txt"))
    assert "vm:a-very-long-virtual-machine" in c.services
    assert c.services["vm:a-very-long-virtual-machine"].state == "starting"


def test_frozen_and_partial_flags_with_space() -> None:
    text = fixture("clustat-rhel6-80.txt").replace("started[Z]    ", "started [P]   ")
    assert parse_clustat(text).services["vm:frozen01"].state == "started"


def test_rhel5_layout_without_id_or_cluster_line() -> None:
    c = parse_clustat(fixture("clustat-rhel5.txt"))
    assert c.quorate is True
    assert member_tuples(c) == [
        ("node1.example.com", True, True, None),
        ("node2.example.com", True, False, None),
        ("node3.example.com", False, False, None),
    ]
    # RHEL 5 names have no type prefix: keyed exactly as printed.
    assert svc(c, "web01") == ("started", "node1.example.com", None)
    assert svc(c, "db01") == ("stopped", None, "node3.example.com")


def test_rhcs4_layout() -> None:
    c = parse_clustat(fixture("clustat-rhcs4.txt"))
    assert c.quorate is True
    assert member_tuples(c) == [
        ("tng3-2", True, False, 2),
        ("tng3-1", True, False, 1),
        ("tng3-3", False, False, 3),
    ]
    assert svc(c, "nfssvc") == ("started", "tng3-1", None)
    assert svc(c, "webby") == ("stopped", None, "tng3-3")


def test_rgmanager_not_running_and_inquorate() -> None:
    c = parse_clustat(fixture("clustat-rg-not-running.txt"))
    assert c.quorate is False
    assert c.rgmanager_running is False
    assert c.services == {}
    assert member_tuples(c) == [
        ("node1.example.com", True, True, 1),
        ("node2.example.com", False, False, 2),
    ]


def test_no_service_table_and_no_rgmanager_flags() -> None:
    text = fixture("clustat-rhel6-80.txt").split("\n Service Name")[0]
    text = text.replace(", rgmanager", "")
    c = parse_clustat(text)
    assert c.rgmanager_running is False and c.services == {}


def test_missing_state_column() -> None:
    text = (
        "Cluster Status for cluster1 @ Thu Mar  1 09:45:21 2012\n"
        "Member Status: Quorate\n\n"
        " Member Name                                                     ID   Status\n"
        " ------ ----                                                     ---- ------\n"
        " node2.example.com                                               1 Online, rgmanager\n\n"
        " Service Name                                                     Owner (Last)    "
        "                                                 State\n"
        " ------- ----                                                     ----- ------    "
        "                                                 -----\n"
        " service:websrv                                                   (none)\n"
        " service:other                                                    node2.example.com\n"
        " service:third                                                    started\n"
        " service:lonely\n"
    )
    c = parse_clustat(text)
    assert svc(c, "service:websrv") == ("", None, None)
    assert svc(c, "service:other") == ("", "node2.example.com", None)
    assert svc(c, "service:third") == ("started", None, None)
    assert svc(c, "service:lonely") == ("", None, None)


def test_missing_date_and_truncated_after_quorum() -> None:
    c = parse_clustat("Cluster Status for cluster1\nMember Status: Quorate\n")
    assert c.quorate is True and c.members == [] and c.services == {}


def test_estranged_and_rg_master_flags() -> None:
    text = (
        "Member Status: Quorate\n\n"
        " Member Name   ID   Status\n"
        " ------ ----   ---- ------\n"
        " n1               1 Online, Local, RG-Master\n"
        " n2               2 Online, Estranged, RG-Worker\n"
        " n3             112 Offline, Estranged\n"
    )
    c = parse_clustat(text)
    assert member_tuples(c) == [
        ("n1", True, True, 1),
        ("n2", True, False, 2),
        ("n3", False, False, 112),
    ]
    assert c.rgmanager_running is True


def test_crlf_tabs_and_clear_screen() -> None:
    text = "\x1b[H\x1b[2J" + fixture("clustat-rhel6-80.txt").replace("\n", "\r\n")
    c = parse_clustat(text)
    assert len(c.members) == 3 and len(c.services) == 8


def test_long_layout() -> None:
    c = parse_clustat(fixture("clustat-long.txt"))
    assert c.quorate is True and c.rgmanager_running is True
    assert svc(c, "vm:web01") == ("started", "node1.example.com", "node2.example.com")
    assert svc(c, "vm:db01") == ("disabled", None, "node2.example.com")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Could not connect to CMAN: No such file or directory\n",
        "Could not connect to cluster service\n",
        "usage: clustat <options>\n",
    ],
)
def test_not_clustat_output(text: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_clustat(text, source="node1:clustat")
    assert exc.value.source == "node1:clustat"


# --- clustat -x -------------------------------------------------------------------------------


def test_xml_rhel6() -> None:
    c = parse_clustat(fixture("clustat-x-rhel6.xml"))
    assert c.quorate is True and c.rgmanager_running is True
    assert member_tuples(c) == [("node1", True, True, 1), ("node2", False, False, 2)]
    assert svc(c, "vm:web01") == ("started", "node1", "node2")
    assert svc(c, "vm:db01") == ("disabled", None, "node2")


def test_xml_inquorate_with_newline_inside_tag_and_no_groups() -> None:
    c = parse_clustat(fixture("clustat-x-inquorate.xml"))
    assert c.quorate is False
    assert c.rgmanager_running is False and c.services == {}
    assert member_tuples(c) == [("node1", True, True, 1), ("node2", False, False, 2)]


def test_xml_version_40_without_prolog_or_cluster_element() -> None:
    c = parse_clustat(fixture("clustat-x-v40.xml"))
    assert member_tuples(c) == [("tng3-1", True, True, 1), ("tng3-2", True, False, 2)]
    assert svc(c, "nfssvc") == ("started", "tng3-2", "tng3-1")
    # No state_str: the number is translated.
    assert svc(c, "webby") == ("stopped", None, "tng3-2")
    # A failed service's leftover owner is history, not a current host.
    assert svc(c, "dbsvc") == ("failed", None, "tng3-1")


def test_xml_trailing_stderr_noise() -> None:
    text = fixture("clustat-x-rhel6.xml") + "Timed out waiting for a response\n"
    assert parse_clustat(text).quorate is True


def test_xml_empty_groups_means_rgmanager_running() -> None:
    text = '<clustat version="4.1.1"><quorum quorate="1"/><nodes/><groups/></clustat>'
    c = parse_clustat(text)
    assert c.rgmanager_running is True and c.services == {} and c.members == []


@pytest.mark.parametrize(
    "text",
    [
        "<clustat version='4.1.1'><quorum quorate='1'/>",
        "<?xml version='1.0'?>\n<notclustat/>",
        "<<<",
    ],
)
def test_bad_xml(text: str) -> None:
    with pytest.raises(ParseError):
        parse_clustat(text, source="x")


def test_refreshing_clustat_keeps_only_the_last_screen() -> None:
    first = fixture("clustat-rhel6-80.txt")
    second = first.replace("3 Offline", "3 Online, rgmanager").replace(
        "node1.example.com              started", "node3.example.com              started"
    )
    c = parse_clustat("\x1b[H\x1b[2J" + first + "\x1b[H\x1b[2J" + second)
    assert len(c.members) == 3 and all(m.online for m in c.members)
    assert c.services["vm:web01"].owner == "node3.example.com"
