"""Tests for the fence-state parsers (cman_tool nodes, fence_tool ls, group_tool ls) and verdicts.

Fixtures in tests/fixtures/fencing (SOURCES.md says which are real pastes and which are written
from the grammar). The property tests feed mutated and random text: only ParseError may escape.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_parse_fuzz import FUZZ, _mutate

from xenfab.parse import (
    CmanNode,
    FenceDomain,
    GroupdGroup,
    ParseError,
    fencing_verdicts,
    parse_clustat,
    parse_cman_nodes,
    parse_fence_tool_ls,
    parse_group_tool_ls,
)

FIXTURES = Path(__file__).parent / "fixtures" / "fencing"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


# --- cman_tool nodes ------------------------------------------------------------------------


def test_cman_nodes_man_page_partition_rows():
    nodes = parse_cman_nodes(fixture("cman-nodes-manpage-partition.txt"), source="man")
    assert [(n.node_id, n.status, n.incarnation, n.name) for n in nodes] == [
        (1, "M", 2372, "node-01.example.com"),
        (2, "d", 2376, "node-02.example.com"),
        (3, "d", 2376, "node-03.example.com"),
        (4, "M", 2376, "node-04.example.com"),
        (5, "M", 2376, "node-05.example.com"),
    ]
    assert nodes[0].joined == "2007-11-05 02:58:55" and nodes[0].member
    assert not nodes[1].member


def test_cman_nodes_rhel5_and_rhel6_addresses():
    (one,) = parse_cman_nodes(fixture("cman-nodes-rhel5-single.txt"))
    assert (one.name, one.status, one.joined, one.addresses) == (
        "appserv35",
        "M",
        "2008-12-15 13:53:25",
        [],
    )
    nodes = parse_cman_nodes(fixture("cman-nodes-rhel6-a.txt"))
    assert [(n.name, n.addresses) for n in nodes] == [
        ("node1.example.com", ["10.4.10.60"]),
        ("node2.example.com", ["10.4.10.61"]),
        ("node3.example.com", ["10.4.10.62"]),
    ]


def test_cman_nodes_rhel5_f_lines_belong_to_the_row_above():
    nodes = {n.name: n for n in parse_cman_nodes(fixture("cman-nodes-rhel5-f.txt"))}
    two = nodes["xen02.example.com"]
    assert (two.status, two.joined, two.last_fenced, two.last_fenced_by) == (
        "X",
        None,
        "2009-03-02 11:40:07",
        "apc-pdu1",
    )
    assert not two.unfenced_since_down
    three = nodes["xen03.example.com"]
    assert three.unfenced_since_down and three.last_fenced_by == "ilo-xen03"
    assert nodes["xen04.example.com"].incarnation == 0
    assert nodes["xen01.example.com"].last_fenced == "2009-03-01 09:00:01"


@pytest.mark.parametrize(
    "text, says",
    [
        ("cman_tool: unknown option: f\n", "not cman_tool nodes output"),
        ("", "no header"),
        ("Node  Sts   Inc   Joined               Name\n   1   Q      8   x\n", "unknown node"),
        (
            "Node  Sts   Inc   Joined               Name\n       Addresses: 10.0.0.1\n",
            "not a cman_tool nodes row",
        ),
        (
            "Node  Sts   Inc   Joined               Name\n   1   M  8  a\n   1   X  8  b\n",
            "listed twice",
        ),
        ("Node  Sts   Inc   Joined               Name\n   1   M  a  b\n", "not a cman_tool"),
    ],
)
def test_cman_nodes_refuses_what_it_cannot_trust(text, says):
    with pytest.raises(ParseError, match=says) as err:
        parse_cman_nodes(text, source="xen01: cman_tool nodes")
    assert err.value.source == "xen01: cman_tool nodes"


def test_rhel6_refuses_f_and_that_is_a_parse_error():
    with pytest.raises(ParseError, match="unknown option"):
        parse_cman_nodes(fixture("cman-nodes-f-rhel6.txt"))


# --- fence_tool ls --------------------------------------------------------------------------


def test_fence_tool_ls_n_on_the_master():
    d = parse_fence_tool_ls(fixture("fence-tool-ls-n-master.txt"), source="xen01")
    assert (d.member_count, d.victim_count, d.victim_now, d.master_nodeid, d.wait_state) == (
        2,
        1,
        3,
        1,
        "fencing",
    )
    assert d.members == [1, 4]
    assert d.nodes is not None
    assert [(n.node_id, n.member, n.victim, n.last_fence_master, n.how) for n in d.nodes] == [
        (1, 1, False, 0, "none"),
        (2, 0, False, 1, "agent"),
        (3, 0, True, 0, "none"),
        (4, 1, False, 1, "member"),
        (5, 0, False, 4, "override"),
        (6, 0, False, 0, "none"),
    ]


def test_fence_tool_ls_without_n_has_no_node_records():
    d = parse_fence_tool_ls(fixture("fence-tool-ls.txt"))
    assert d.nodes is None and d.victim_count == 1 and d.wait_state == "none"


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "empty"),
        ("fenced not running\n", "not fence_tool ls output"),
        ("fence domain\nerror\n", "could not query"),
        ("fence domain\nmember count  2\n", "without victim count"),
        ("fence domain\nmember count  x\n", "not a number"),
        ("fence domain\nwait state    dozing\n", "unknown wait state"),
        ("fence domain\nmember count  1\nmember count  1\n", "twice"),
        ("fence domain\nmembers       1 a\n", "not a list of node ids"),
        ("fence domain\nbogus 1\n", "not a fence_tool ls line"),
    ],
)
def test_fence_tool_ls_refuses_what_it_cannot_trust(text, says):
    with pytest.raises(ParseError, match=says):
        parse_fence_tool_ls(text, source="xen01: fence_tool ls -n")


def test_fence_tool_ls_n_refuses_a_damaged_node_row():
    good = fixture("fence-tool-ls-n-master.txt")
    for bad in (
        good.replace("how agent", "how teleport"),
        good.replace("victim 1 last", "victim 2 last"),
        good.replace("nodeid 2 member", "nodeid x member"),
        good.replace("nodeid 3 member", "nodeid 2 member"),
        good.replace("member 0 victim 0 last fence master 1 how agent", "member 7 victim 0"),
    ):
        with pytest.raises(ParseError):
            parse_fence_tool_ls(bad)


# --- group_tool ls --------------------------------------------------------------------------


def test_group_tool_ls_rhel5_real_paste_with_trailing_blanks():
    groups = parse_group_tool_ls(fixture("group-tool-rhel5-none.txt"))
    assert [(g.type, g.level, g.name, g.id, g.state, g.members) for g in groups] == [
        ("fence", 0, "default", "00010001", "none", [1]),
        ("dlm", 1, "gfs1", "00050001", "none", [1]),
        ("gfs", 2, "gfs1", "00040001", "none", [1]),
    ]


def test_group_tool_ls_fencing_in_progress():
    groups = parse_group_tool_ls(fixture("group-tool-rhel5-fail.txt"))
    assert [(g.type, g.state, g.members) for g in groups] == [
        ("fence", "FAIL_START_WAIT", [1, 2]),
        ("dlm", "FAIL_ALL_STOPPED", [1, 2]),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fence domain\nmember count  2\n",  # RHEL 6 group_tool ls prints fence_tool's
        "type level name id state\n[1]\n",
        "type level name id state\nfence 0 default 0001 none\n",
    ],
)
def test_group_tool_ls_refuses_what_it_cannot_trust(text):
    with pytest.raises(ParseError):
        parse_group_tool_ls(text)


# --- the verdict ----------------------------------------------------------------------------


def test_rhel6_verdicts_fenced_only_with_a_real_fencing_and_no_victim():
    d = parse_fence_tool_ls(fixture("fence-tool-ls-n-master.txt"))
    v = fencing_verdicts(
        {"xen02": 2, "xen03": 3, "xen04": 4, "xen05": 5, "xen06": 6, "xen07": 7, "x": None},
        domain=d,
    )
    assert {k: x.fenced for k, x in v.items()} == {
        "xen02": True,
        "xen03": False,
        "xen04": False,
        "xen05": True,
        "xen06": False,
        "xen07": False,
        "x": False,
    }
    assert "in progress" in v["xen03"].why and "how agent" in v["xen02"].why
    assert "member 1" in v["xen04"].why and "how none" in v["xen06"].why
    assert "no record" in v["xen07"].why and "no node id" in v["x"].why


def test_rhel6_a_victim_on_a_non_master_is_still_pending():
    text = fixture("fence-tool-ls-n-master.txt").replace("victim now    3", "victim now    0")
    v = fencing_verdicts({"xen03": 3}, domain=parse_fence_tool_ls(text))
    assert not v["xen03"].fenced and "victim 1" in v["xen03"].why
    v = fencing_verdicts({"xen02": 2}, domain=parse_fence_tool_ls(fixture("fence-tool-ls.txt")))
    assert not v["xen02"].fenced and "without -n" in v["xen02"].why


def test_rhel5_verdicts_from_cman_and_the_fence_group():
    nodes = parse_cman_nodes(fixture("cman-nodes-rhel5-f.txt"))
    gone = {"xen02": None, "xen03": None, "xen04": None, "xen01.example.com": 1, "xen09": None}
    v = fencing_verdicts(gone, cman_nodes=nodes)
    assert {k: x.fenced for k, x in v.items()} == {
        "xen02": True,
        "xen03": False,
        "xen04": False,
        "xen01.example.com": False,
        "xen09": False,
    }
    assert "2009-03-02 11:40:07 by apc-pdu1" in v["xen02"].why
    assert "not fenced since it went down" in v["xen03"].why
    busy = parse_group_tool_ls(fixture("group-tool-rhel5-fail.txt"))
    v = fencing_verdicts({"xen02": None}, cman_nodes=nodes, groups=busy)
    assert not v["xen02"].fenced and "FAIL_START_WAIT" in v["xen02"].why
    calm = parse_group_tool_ls(fixture("group-tool-rhel5-none.txt"))
    assert fencing_verdicts({"xen02": None}, cman_nodes=nodes, groups=calm)["xen02"].fenced


def test_nothing_read_proves_nothing():
    v = fencing_verdicts({"xen02": 2})
    assert not v["xen02"].fenced and "not read" in v["xen02"].why


def test_clustat_offline_member_alone_is_no_fence_record():
    # The real paste of an Offline member: clustat carries no fencing; the verdict needs more.
    c = parse_clustat(fixture("clustat-offline-member.txt"))
    gone = {m.name: m.node_id for m in c.members if not m.online}
    assert gone == {"DB2_Heart": 2}
    assert not fencing_verdicts(gone)["DB2_Heart"].fenced
    x = parse_clustat(fixture("clustat-x-deimos.xml"))
    assert {m.name: m.node_id for m in x.members}["node3.deimos.fr"] == 3


# --- property tests -------------------------------------------------------------------------

SEEDS = {
    "cman": [
        fixture(n)
        for n in (
            "cman-nodes-manpage-partition.txt",
            "cman-nodes-rhel5-single.txt",
            "cman-nodes-rhel6-a.txt",
            "cman-nodes-rhel5-f.txt",
        )
    ],
    "fence": [fixture("fence-tool-ls-n-master.txt"), fixture("fence-tool-ls.txt")],
    "group": [fixture("group-tool-rhel5-none.txt"), fixture("group-tool-rhel5-fail.txt")],
}


def _check(kind: str, text: str) -> None:
    try:
        if kind == "cman":
            nodes = parse_cman_nodes(text, source="fuzz")
            assert all(isinstance(n, CmanNode) and n.name and n.status in "MXd?" for n in nodes)
            assert len({n.node_id for n in nodes}) == len(nodes)
            gone = {n.name: n.node_id for n in nodes}
            verdicts = fencing_verdicts(gone, cman_nodes=nodes)
        elif kind == "fence":
            d = parse_fence_tool_ls(text, source="fuzz")
            assert isinstance(d, FenceDomain) and d.wait_state
            verdicts = fencing_verdicts({str(i): i for i in range(8)}, domain=d)
            for n in d.nodes or ():
                # Proof never comes from a node still a victim or never really fenced.
                if verdicts.get(str(n.node_id)) and verdicts[str(n.node_id)].fenced:
                    assert not n.victim and n.how in ("agent", "override", "external")
        else:
            groups = parse_group_tool_ls(text, source="fuzz")
            assert all(isinstance(g, GroupdGroup) and len(g.id) == 8 for g in groups)
            verdicts = {}
        assert all(isinstance(v.fenced, bool) and v.why for v in verdicts.values())
    except ParseError as exc:
        assert exc.source == "fuzz" and str(exc)


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_mutated_fence_outputs_raise_only_parse_error(data):
    kind = data.draw(st.sampled_from(sorted(SEEDS)))
    text = data.draw(st.sampled_from(SEEDS[kind]))
    for _ in range(data.draw(st.integers(1, 3))):
        text = _mutate(data.draw, text)
    _check(kind, text)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.text(max_size=300))
def test_random_text_raises_only_parse_error(kind, text):
    _check(kind, text)


@FUZZ
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(
        st.sampled_from(
            [
                "fence domain",
                "all nodes",
                "members       1 2 ",
                "victim count  0",
                "nodeid 2 member 0 victim 0 last fence master 1 how agent",
                "Node  Sts   Inc   Joined               Name",
                "   2   X     20                        xen02",
                "       Last fenced:   2009-03-02 11:40:07 by apc",
                "       Node has not been fenced since it went down",
                "type             level name     id       state",
                "fence            0     default  00010001 none",
                "[1 2]",
                "",
                "\t",
                "9" * 50,
            ]
        ),
        max_size=12,
    ),
)
def test_token_soup_raises_only_parse_error(kind, lines):
    _check(kind, "\n".join(lines))
