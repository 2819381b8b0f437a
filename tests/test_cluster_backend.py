"""The rgmanager backend: commands built safely, outcomes read correctly (no SSH)."""

from __future__ import annotations

import pytest

from xenfab.cluster import Output, UnsafeName, backend

RG = backend("rgmanager")


def test_start_command_quotes_and_prefixes():
    assert RG.start_command("web01", "xen03") == "clusvcadm -e vm:web01 -m xen03"
    failed = RG.start_command("web01", "xen03", "failed")
    # -d only behind a guard that re-reads the service in the same command.
    assert failed.startswith("s=$(clustat -x -s vm:web01 2>&1)")
    assert failed.index("clustat -x -s") < failed.index("clusvcadm -d vm:web01")
    assert "clusvcadm -d vm:web01 && clusvcadm -e vm:web01 -m xen03" in failed


GROUP = (
    '<?xml version="1.0"?>\n<clustat version="4.1.1">\n  <groups>\n'
    '    <group name="vm:web01" state="{code}" state_str="{state}" flags="0" flags_str="" '
    'owner="{owner}" last_owner="{last}" restarts="0" last_transition="0" '
    'last_transition_str="x"/>\n  </groups>\n</clustat>\n'
)


def _guarded_run(tmp_path, command, state, owner="none", last="none", local=""):
    """Run ``command`` in sh with stub clustat/clusvcadm/xl; the clusvcadm calls it made."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "group.xml").write_text(GROUP.format(code=0, state=state, owner=owner, last=last))
    log = tmp_path / "calls"
    log.write_text("")
    stubs = {
        "clustat": f"cat {tmp_path}/group.xml",
        "clusvcadm": f'echo "$*" >> {log}; echo "Member xen03 trying to enable $2...Success"',
        "xl": f'[ "$1" = list ] && [ -n "$2" ] && [ "$2" = "{local}" ]',
    }
    for name, body in stubs.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    res = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env)
    return res, log.read_text().splitlines()


@pytest.mark.parametrize(
    ("state", "owner", "last", "local", "sent"),
    [
        ("failed", "none", "xen02", "", True),
        ("started", "xen02", "xen02", "", False),  # started behind the run's back
        ("starting", "xen02", "none", "", False),
        ("disabled", "none", "none", "", False),
        ("failed", "none", "none", "web01", False),  # the master itself runs a domain of it
    ],
)
def test_guard_sends_disable_only_for_a_service_still_failed(
    tmp_path, state, owner, last, local, sent
):
    command = RG.start_command("web01", "xen03", "failed")
    res, calls = _guarded_run(tmp_path, command, state, owner, last, local)
    if sent:
        assert calls == ["-d vm:web01", "-e vm:web01 -m xen03"]
        assert RG.parse_start("web01", "xen03", Output(res.stdout, res.returncode)).ok
        return
    assert calls == []  # nothing at all was sent: no -d, no -e
    out = RG.parse_start("web01", "xen03", Output(res.stdout, res.returncode))
    assert not out.ok and out.refused and out.message.startswith("not disabled")
    assert out.already_running == (state in ("started", "starting") or bool(local))


def test_dead_owner_sequence_is_disable_then_enable_guarded_on_that_owner(tmp_path):
    command = RG.start_command("web01", "xen03", "started", dead_owner="xen02")
    res, calls = _guarded_run(tmp_path, command, "started", "xen02", "xen01")
    assert calls == ["-d vm:web01", "-e vm:web01 -m xen03"]
    # Another owner than the dead one (the service moved meanwhile): nothing is sent. A
    # last_owner equal to the dead host does not count as its owner.
    res, calls = _guarded_run(tmp_path, command, "started", "xen04", "xen02")
    assert calls == [] and RG.parse_start("web01", "xen03", Output(res.stdout, 3)).already_running
    with pytest.raises(ValueError):
        RG.start_command("web01", "xen03", "disabled", dead_owner="xen02")


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
