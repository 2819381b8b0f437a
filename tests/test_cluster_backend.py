"""The rgmanager backend: commands built safely, outcomes read correctly (no SSH)."""

from __future__ import annotations

import pytest

from xenfab.cluster import Output, UnsafeName, backend

RG = backend("rgmanager")


def test_start_command_quotes_and_prefixes():
    assert RG.start_command("web01", "xen03") == "clusvcadm -e vm:web01 -m xen03"
    assert RG.start_command("web01", "xen03", "failed") == (
        "clusvcadm -d vm:web01 && clusvcadm -e vm:web01 -m xen03"
    )


@pytest.mark.parametrize("name", ["web01;reboot", "$(id)", "a b", "", "-rf", "x`y`", "a'b"])
def test_unsafe_names_never_reach_a_shell(name):
    with pytest.raises(UnsafeName):
        RG.start_command(name, "xen01")
    with pytest.raises(UnsafeName):
        RG.start_command("web01", name)


def test_success_on_the_member_asked():
    out = RG.parse_start(
        "web01", "xen03", Output("Member xen03 trying to enable vm:web01...Success\n", 0)
    )
    assert out.ok and out.acted_on == "xen03" and out.running_on == "xen03"


def test_closest_match_is_reported():
    text = (
        "'xen3' not in membership list\nClosest match: 'xen03'\n"
        "Member xen03 trying to enable vm:web01...Success\n"
    )
    out = RG.parse_start("web01", "xen3", Output(text, 0))
    assert out.ok and out.acted_on == "xen03"
    assert "chose member xen03" in out.message


def test_started_elsewhere_records_where_it_runs():
    text = "Member xen03 trying to enable vm:web01...Success\nWarning: vm:web01 is now running on xen05\n"
    out = RG.parse_start("web01", "xen03", Output(text, 0))
    assert out.ok and out.running_on == "xen05"


def test_failure_and_disable_chain():
    out = RG.parse_start(
        "web01", "xen03", Output("Member xen03 trying to enable vm:web01...Failure\n", 255)
    )
    assert not out.ok and out.exit_code == 255
    chained = "Local machine disabling vm:web01...Success\nMember xen03 trying to enable vm:web01...Success\n"
    assert RG.parse_start("web01", "xen03", Output(chained, 0)).acted_on == "xen03"
    refused = RG.parse_start(
        "web01", "xen03", Output("Local machine disabling vm:web01...Failure\n", 255)
    )
    assert not refused.ok


def test_already_running_is_not_a_start():
    text = "Member xen03 trying to enable vm:web01...Service is already running\n"
    out = RG.parse_start("web01", "xen03", Output(text, 0))
    assert out.ok and out.already_running
