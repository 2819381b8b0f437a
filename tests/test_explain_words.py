"""Words that must not contradict themselves (issue 23): capacity's counts agree with what its
warnings list, and xl output never speaks of a master or a quorum."""

from __future__ import annotations

import re
from dataclasses import replace

from planfixtures import guest, host, snap

from xenfab.cluster import backend
from xenfab.plan import plan, policy_from_dict
from xenfab.plan.capacity import capacity
from xenfab.show import capacity_text, cluster_read_line, layout_text
from xenfab.show.script import script_text
from xenfab.snapshot import Domain, Guest


def _cluster():
    running = Guest("app01", 1024, 1, "started", owner="xen01", running_on=["xen01"])
    hosts = [
        host("xen01", 7000, domains=[Domain("Domain-0", 1024, 2), Domain("app01", 1024, 1)]),
        host("xen02", 8000),
    ]
    down = guest("db01", 2048, config_file="/etc/xen/db01.cfg", last_owner="xen02")
    # Cannot be planned whatever fails: capacity names it in a warning, not in its sums.
    unknown = guest("legacy07", 0, config_file="/etc/xen/legacy07.cfg")
    return snap(hosts, [running, down, unknown])


def test_capacity_header_counts_the_down_guest_its_warning_names():
    report = capacity(_cluster(), policy_from_dict({}))
    assert (report.guests_running, report.guests_down, report.guests_not_counted) == (1, 1, 1)
    text = capacity_text(report)
    head = text.splitlines()[0]
    assert "1 running + 2 down guests (1 not counted)" in head
    assert "warning: 1 down guest not counted: it stays down whatever fails: legacy07:" in text
    data = report.to_dict()
    assert data["guests_not_counted"] == 1 and data["guests_counted"] == 2


def test_capacity_header_with_nothing_left_out_says_no_more():
    s = _cluster()
    s.guests = s.guests[:2]
    text = capacity_text(capacity(s, policy_from_dict({})))
    assert "1 running + 1 down guest;" in text.splitlines()[0]
    assert "not counted" not in text


def test_capacity_summary_says_the_rules_bounds():
    text = capacity_text(capacity(_cluster(), policy_from_dict({})))
    assert "by the rules' bounds alone." in text
    assert "sums alone" not in text


def _xl(s):
    return replace(s, backend="xl", quorate=None)


MASTER_OR_QUORUM = re.compile(r"master|quor", re.IGNORECASE)


def test_xl_output_never_names_a_master_or_a_quorum():
    s = _xl(_cluster())
    xl = backend("xl")
    layout = plan(s, policy_from_dict({}))
    texts = {
        "show-layout": layout_text(layout.to_dict(), s, xl, explain=True),
        "script": script_text(layout, s, xl),
        "capacity": capacity_text(capacity(s, policy_from_dict({}))),
        "check": cluster_read_line(s),
    }
    for what, text in texts.items():
        assert not MASTER_OR_QUORUM.search(text), (what, MASTER_OR_QUORUM.findall(text), text)
    assert texts["check"] == "cluster: xl, no cluster manager (each host read on its own)"


def test_rgmanager_check_line_still_says_master_and_quorum():
    assert cluster_read_line(_cluster()) == "cluster read on xen01: quorate yes"
