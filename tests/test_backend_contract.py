"""The cluster-manager contract: the same scenarios over every registered backend (pure, no I/O).

A new backend registers itself and adds one entry to FIXTURES (how its state read shows a guest
down or running, what its start command prints on success and failure); every test here then
runs over it. A registered backend without fixtures fails ``test_every_backend_has_fixtures``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from xenfab.cluster import (
    ClusterBackend,
    ClusterState,
    Output,
    UnsafeName,
    backend,
    check_options,
    names,
)
from xenfab.errors import ConfigError
from xenfab.start.checks import confirm, precheck
from xenfab.start.schedule import Job

HOSTS = ["xen01", "xen02", "xen03"]
CONFIG = "/etc/xen/web01.cfg"


def _clustat_xml(down: list[str], running: dict[str, str]) -> dict[str, Output]:
    nodes = "".join(
        f'<node name="{h}" state="1" local="0" estranged="0" rgmanager="1" '
        f'rgmanager_master="0" qdisk="0" nodeid="0x0{i}"/>'
        for i, h in enumerate(HOSTS)
    )
    groups = "".join(
        f'<group name="vm:{g}" state="119" state_str="disabled" flags="0" flags_str="" '
        f'owner="none" last_owner="none" restarts="0" last_transition="0" '
        f'last_transition_str="x"/>'
        for g in down
    ) + "".join(
        f'<group name="vm:{g}" state="112" state_str="started" flags="0" flags_str="" '
        f'owner="{h}" last_owner="{h}" restarts="0" last_transition="0" '
        f'last_transition_str="x"/>'
        for g, h in running.items()
    )
    xml = (
        '<?xml version="1.0"?>\n<clustat version="4.1.1">\n'
        '<cluster name="c" id="1" generation="1"/>\n<quorum quorate="1" groupmember="1"/>\n'
        f"<nodes>{nodes}</nodes>\n<groups>{groups}</groups>\n</clustat>\n"
    )
    return {"clustat-x": Output(xml, 0)}


def _rg_read(b: ClusterBackend, down: list[str], running: dict[str, str]) -> ClusterState:
    return b.parse_state(_clustat_xml(down, running), source="xen01")


def _xl_read(b: ClusterBackend, down: list[str], running: dict[str, str]) -> ClusterState:
    domains: dict[str, set[str]] = {h: {"Domain-0"} for h in HOSTS}
    for g, h in running.items():
        domains[h].add(g)
    state = b.live_state(domains, [*down, *running])
    assert state is not None
    return state


def _xe_record(fields: list[tuple[str, str, str]]) -> str:
    """One record in xe's layout: the first key left-aligned, the rest right-aligned."""
    keys = [f"{k} {ann}" for k, ann, _ in fields]
    width = 4 + max(len(k) for k in keys)
    lines = [f"{keys[0].ljust(width)}: {fields[0][2]}"]
    lines += [f"{k.rjust(width)}: {v}" for k, (_, _, v) in zip(keys[1:], fields[1:], strict=True)]
    return "\n".join(lines) + "\n\n\n"


def _xe_read(b: ClusterBackend, down: list[str], running: dict[str, str]) -> ClusterState:
    pool = _xe_record([("uuid", "( RO)", "p1"), ("master", "( RO)", HOSTS[0])])
    hosts = "".join(
        _xe_record(
            [
                ("uuid", "( RO)", h),
                ("name-label", "( RW)", f"host {h}"),
                ("enabled", "( RO)", "true"),
                ("memory-total", "( RO)", str(64 << 30)),
                ("memory-free", "( RO)", str(32 << 30)),
                ("host-metrics-live", "( RO)", "true"),
            ]
        )
        for h in HOSTS
    )
    vms = "".join(
        _xe_record(
            [
                ("uuid", "( RO)", g),
                ("name-label", "( RW)", "same label"),
                ("is-control-domain", "( RO)", "false"),
                ("power-state", "( RO)", "running" if g in running else "halted"),
                ("memory-static-max", "( RW)", str(1 << 30)),
                ("resident-on", "( RO)", running.get(g, "<not in database>")),
                ("other-config", "(MRW)", "auto_poweron: true; import_task: x"),
            ]
        )
        for g in [*down, *running]
    )
    outputs = {"pool": Output(pool, 0), "hosts": Output(hosts, 0), "vms": Output(vms, 0)}
    return b.parse_state(outputs, source="xen01")


@dataclass
class Fixture:
    """How one backend's state read shows guests, and what its start command prints."""

    read: Callable[[ClusterBackend, list[str], dict[str, str]], ClusterState]
    ok: Output
    fails: Output
    already: Output
    options: dict


FIXTURES = {
    "rgmanager": Fixture(
        _rg_read,
        Output(
            "Member xen02 trying to enable vm:web01...Success\nvm:web01 is now running on xen02\n",
            0,
        ),
        Output("Member xen02 trying to enable vm:web01...Failure\n", 1),
        Output("Member xen02 trying to enable vm:web01...Service is already running\n", 0),
        {},
    ),
    "xl": Fixture(
        _xl_read,
        Output("Parsing config from /etc/xen/web01.cfg\n", 0),
        Output(
            "Parsing config from /etc/xen/web01.cfg\n"
            "libxl: error: libxl_dom.c:1234:libxl__build_pv: failed to build domain\n",
            1,
        ),
        Output("XENFAB-GUARD-REFUSED running-here\n", 3),
        {"auto_dir": "/etc/xen/auto", "guests": ["web*"]},
    ),
    "xe": Fixture(
        _xe_read,
        Output("", 0),
        Output(
            "You attempted to run a VM on a host which doesn't have access to an SR needed by "
            "the VM. The VM has at least one VBD attached to a VDI in the SR.\n"
            "vm: 0b1e2c4d-0000-4000-8000-000000000001 (web 01)\n"
            "sr: 5d6e7f80-0000-4000-8000-000000000002 (NFS store)\n",
            1,
        ),
        Output(
            "You attempted an operation on a VM that was not in an appropriate power state at "
            "the time; for example, you attempted to start a VM that was already running. The "
            "parameters returned are the VM's handle, and the expected and actual VM state at "
            "the time of the call.\nvm: 0b1e2c4d-0000-4000-8000-000000000001 (web 01)\n"
            "expected: halted\nactual: running\n",
            1,
        ),
        {"guests": ["web*"]},
    ),
}

ALL = names()


def test_both_backends_are_found_and_an_unknown_one_is_refused():
    assert {"rgmanager", "xl"} <= set(ALL)
    with pytest.raises(ConfigError, match="known: .*rgmanager.*xl"):
        backend("pacemaker")


def test_every_backend_has_fixtures():
    assert sorted(FIXTURES) == sorted(ALL)


@pytest.fixture(params=ALL)
def be(request) -> tuple[ClusterBackend, Fixture]:
    fx = FIXTURES[request.param]
    options = check_options(request.param, fx.options, "environments.t")
    return backend(request.param, options), fx


def test_vocabulary_is_consistent(be):
    b, _ = be
    s = b.states
    assert s.down and s.running
    assert not (s.down & s.occupying)
    assert s.failed <= s.down
    for state in s.down:
        assert s.kind(state) == "down"
    for state in s.running:
        assert s.kind(state) == "running"
    assert s.kind("no-such-state-anywhere") == "unknown"
    assert "web01" in b.service_name("web01")
    assert b.start_host("xen01", "xen03") in ("xen01", "xen03")
    assert b.lock_host("xen02", "xen01") in ("xen01", "xen02")


def test_bad_options_are_config_errors(be):
    b, _ = be
    with pytest.raises(ConfigError, match="environments.t"):
        check_options(b.name, {"no_such_option": 1}, "environments.t")


def test_start_command_per_down_state_names_the_guest_and_refuses_unsafe_names(be):
    b, _ = be
    for state in sorted(b.states.down):
        cmd = b.start_command("web01", "xen02", state, config=CONFIG)
        assert "web01" in cmd
    with pytest.raises(UnsafeName):
        b.start_command("web01;reboot", "xen02", sorted(b.states.down)[0], config=CONFIG)
    with pytest.raises(UnsafeName):
        b.start_command("web01", "xen02 -x", sorted(b.states.down)[0], config=CONFIG)


def test_parse_start_reads_success_failure_and_already_running(be):
    b, fx = be
    ok = b.parse_start("web01", "xen02", fx.ok)
    assert ok.ok and not ok.already_running
    bad = b.parse_start("web01", "xen02", fx.fails)
    assert not bad.ok and bad.message and not bad.already_running
    already = b.parse_start("web01", "xen02", fx.already)
    assert already.already_running
    # Garbage never raises.
    junk = b.parse_start("web01", "xen02", Output("\x00\x01 what\n", 42))
    assert not junk.ok


def test_state_read_then_precheck_starts_only_a_down_guest_running_nowhere(be):
    b, fx = be
    state = fx.read(b, ["web01", "web02"], {"db01": "xen03"})
    assert b.states.kind(state.services["web01"].state) == "down"
    assert b.states.kind(state.services["db01"].state) == "running"
    domains = {h: {"Domain-0"} for h in HOSTS}
    domains["xen03"].add("db01")
    domains["xen01"].add("web02")  # started behind the state read's back
    assert precheck("web01", state, domains, backend=b).action == "start"
    db = precheck("db01", state, domains, backend=b)
    assert (db.action, db.host) == ("found running", "xen03")
    assert precheck("web02", state, domains, backend=b).action == "found running"


def test_confirm_after_an_accepted_start(be):
    b, fx = be
    job = Job("web01", "xen02", 1, 0)
    job.command_at, job.returned_at = 0.0, 0.5
    running = fx.read(b, [], {"web01": "xen02"}).services["web01"]
    c = confirm(job, running, 2, 60, 3, b)
    assert (c.status, c.host) == ("started", "xen02")
    elsewhere = fx.read(b, [], {"web01": "xen03"}).services["web01"]
    assert confirm(job, elsewhere, 2, 60, 3, b).host == "xen03"
    down = fx.read(b, ["web01"], {}).services["web01"]
    assert confirm(job, down, 1, 60, 3, b).status == "wait"  # the read may lag a moment
    assert confirm(job, down, 9, 60, 3, b).status == "failed"
    assert confirm(job, None, 2, 60, 3, b).status == "stuck"


def test_quorum_rule_matches_the_state_read(be):
    b, fx = be
    state = fx.read(b, ["web01"], {})
    if b.quorum:
        assert state.quorate is True
    else:
        assert state.quorate is None  # no manager, no quorum: nothing to refuse on


def test_host_probes_read_toolstack_info_and_list(be):
    b, _ = be
    names_ = [p.name for p in b.host_probes()]
    if b.master_only:
        # Its master answers for every host (an XAPI pool): no host is asked on its own.
        assert names_ == [] and b.state_probes()
        return
    assert names_[:3] == ["toolstack", "info", "list"]
