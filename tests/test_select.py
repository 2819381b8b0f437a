"""Which guests are down and ours, and why each one that stays down stays down (issue 11, 14).

No SSH: synthetic snapshots and raw outputs through assemble(); the lab tests are in
lab/test_select_lab.py.
"""

from __future__ import annotations

import pytest
from planfixtures import guest, host, snap
from test_assemble import CLUSTAT_X, _host

from xenfab import show
from xenfab.cluster import Output, backend
from xenfab.config import HostEntry
from xenfab.errors import ConfigError
from xenfab.gather.assemble import HostReport, assemble
from xenfab.plan import Policy, plan
from xenfab.snapshot import Snapshot

RG = backend("rgmanager")


# --- the state vocabulary belongs to the backend ----------------------------------------------


def test_rgmanager_states_down_running_transition():
    kinds = {s: RG.states.kind(s) for s in RG.states.down | RG.states.transition}
    assert {s for s, k in kinds.items() if k == "down"} == {
        "disabled",
        "failed",
        "stopped",
        "recoverable",
    }
    assert {"starting", "stopping", "recovering", "migrating"} <= RG.states.transition
    assert RG.states.kind("started") == "running"
    assert RG.states.kind("uninitialized") == "unknown"


def test_snapshot_reads_states_through_its_backend():
    s = snap([host("xen01", 8000)], [guest("a", 1000, state="recoverable")])
    assert s.is_down(s.guests[0])
    s.backend = "pacemaker"
    with pytest.raises(ConfigError, match="pacemaker"):
        s.is_down(s.guests[0])


def test_stopped_and_recoverable_are_planned_transitions_are_reported():
    s = snap(
        [host("xen01", 8000), host("xen02", 8000)],
        [
            guest("st", 1000, state="stopped"),
            guest("rc", 1000, state="recoverable"),
            guest("mig", 1000, state="migrating", owner="xen01"),
            guest("stp", 1000, state="stopping", owner="xen02"),
        ],
    )
    layout = plan(s, Policy())
    assert sorted(a.guest for a in layout.assignments) == ["rc", "st"]
    assert {k.guest: k.reason for k in layout.skipped} == {
        "mig": "migrating on xen01",
        "stp": "stopping on xen02",
    }
    assert layout.complete


# --- a bad guest fails alone, and stays down with why ------------------------------------------


def test_unsafe_name_is_still_down_and_every_other_guest_is_planned():
    s = snap(
        [host("xen01", 8000), host("xen02", 8000)],
        [guest("web 03", 1000), guest("web01", 1000), guest("db01", 1000, state="failed")],
    )
    layout = plan(s, Policy())
    assert sorted(a.guest for a in layout.assignments) == ["db01", "web01"]
    (u,) = layout.unplaced
    assert (u.guest, u.kind) == ("web 03", "cannot-plan")
    assert u.reason == "name 'web 03' has characters xenfab will not send to a shell"
    assert layout.skipped == []
    # The preview shows it (no UnsafeName escapes planning or display)...
    text = show.layout_text(layout.to_dict(), s, RG, verbose=True)  # with the exact commands
    assert "clusvcadm -e vm:web01" in text
    assert "enable web01 on " in show.layout_text(layout.to_dict(), s, RG)
    # ... and every planned command can be built.
    for a in layout.assignments:
        RG.start_command(a.guest, a.host, a.state)


def _assembled(files, clustat=CLUSTAT_X, configs=None, file_errors=None):
    extra = {"clustat-x": Output(clustat, 0)}
    if configs is not None:
        extra["configs"] = configs
    master = _host("xen01", "db01", extra)
    master.files = files
    if file_errors:
        master.file_errors = file_errors
    reports = {
        "xen01": master,
        "xen02": HostReport("xen02", error="xen02 (127.0.0.12:2222): connection refused"),
        "xen03": _host("xen03", "other"),
    }
    entries = [HostEntry("xen01"), HostEntry("xen02"), HostEntry("xen03")]
    return assemble("t", "2026-11-23T19:00:00Z", entries, reports, "xen01", RG, "/x")


GOOD = {
    "/x/web01.cfg": "name = 'web01'\nmemory = 2048\n",
    "/x/db.cfg": 'name = "db01"\nmemory = 8192\n',
    "/x/ghost.cfg": 'name = "ghost"\nmemory = 512\n',
}
LEGACY = '# xm\nvmid = 7\nname = "calc%02d" % vmid\nmemory = 1024\n'


def test_config_that_computes_its_name_is_still_down_with_file_and_line():
    s = _assembled({**GOOD, "/x/legacy-vm.cfg": LEGACY})
    calc = s.guest("calc")
    assert not calc.plannable
    assert "/x/legacy-vm.cfg: 3: name is computed" in calc.reason
    layout = plan(s, Policy())
    (u,) = [u for u in layout.unplaced if u.guest == "calc"]
    assert u.kind == "cannot-plan" and "legacy-vm.cfg: 3" in u.reason
    assert "calc" not in {k.guest for k in layout.skipped}
    assert {"web01", "ghost"} <= {a.guest for a in layout.assignments}


def test_two_configs_for_one_name_name_both_files_and_plan_neither():
    files = {
        **GOOD,
        "/x/calc.cfg": 'name = "calc"\nmemory = 8192\n',
        "/x/calc.bak": 'name = "calc"\nmemory = 1024\n',
    }
    s = _assembled(files)
    calc = s.guest("calc")
    assert calc.memory_mib == 0 and not calc.plannable
    assert calc.reason == "2 config files give name 'calc': /x/calc.bak, /x/calc.cfg"
    layout = plan(s, Policy())
    assert [(u.guest, u.reason) for u in layout.unplaced] == [("calc", calc.reason)]
    assert {"web01", "ghost"} <= {a.guest for a in layout.assignments}
    assert any("/x/calc.bak" in w and "/x/calc.cfg" in w for w in s.warnings)


def test_missing_config_directory_leaves_every_down_guest_still_down():
    s = _assembled({}, configs=Output("no such directory: /x\n", 1))
    layout = plan(s, Policy())
    down = {"web01", "ghost", "calc"}
    assert {u.guest for u in layout.unplaced} == down and not layout.complete
    for u in layout.unplaced:
        assert u.reason == "guest configs not read: xen01: no such directory: /x"
    assert layout.assignments == []


def test_empty_config_directory_says_so():
    s = _assembled({}, configs=Output("", 0))
    assert s.guest("web01").reason == "guest config directory /x has no config files"
    assert {u.guest for u in plan(s, Policy()).unplaced} == {"web01", "ghost", "calc"}


def test_a_file_the_batch_refused_is_that_guests_reason():
    s = _assembled(GOOD, file_errors={"/x/calc.cfg": "larger than 1 MiB: not read"})
    assert s.guest("calc").reason == "config unreadable: /x/calc.cfg: larger than 1 MiB: not read"
    assert s.guest("web01").plannable


# --- liveness: proven dead, or unknown ----------------------------------------------------------


def _owner_gone(member, quorate=True):
    hosts = [
        host("xen01", 8000, member="online"),
        host("xen02", 8000, member="online"),
        host("xen03", 8000, reachable=False, member=member),
    ]
    s = snap(hosts, [guest("auth01", 1000, state="started", owner="xen03"), guest("a", 1000)])
    s.quorate = quorate
    return s


WAY_OUT = (
    "owner xen03 unreachable, liveness unknown: fence or power off xen03, "
    "or declare it dead: --dead xen03"
)


def test_ssh_timeout_alone_is_no_proof_the_guest_is_still_down_with_the_way_out():
    for member in ("online", None):
        layout = plan(_owner_gone(member), Policy())
        assert [(u.guest, u.kind, u.reason) for u in layout.unplaced] == [
            ("auth01", "liveness-unknown", WAY_OUT)
        ]
        assert [a.guest for a in layout.assignments] == ["a"]


def test_an_inquorate_view_of_an_offline_member_is_no_proof():
    for member in ("offline", "fenced"):
        layout = plan(_owner_gone(member, quorate=False), Policy())
        assert [u.kind for u in layout.unplaced] == ["liveness-unknown"]


def test_offline_without_a_fence_is_no_proof_the_guest_is_still_down_with_the_remedy():
    layout = plan(_owner_gone("offline"), Policy())
    assert [(u.guest, u.kind, u.reason) for u in layout.unplaced] == [
        (
            "auth01",
            "liveness-unknown",
            "liveness unknown: xen03 is offline but not fenced: fence it (fence_node xen03), "
            "or power it off and declare it dead: --dead xen03",
        )
    ]
    assert not layout.complete and [a.guest for a in layout.assignments] == ["a"]


def test_cluster_says_fenced_is_proof_the_guest_is_replanned_with_its_state():
    layout = plan(_owner_gone("fenced"), Policy())
    a = layout.assignment("auth01")
    assert a is not None and a.host in ("xen01", "xen02")
    assert (a.state, a.takeover_from) == ("started", "xen03")
    assert layout.complete


def test_declared_dead_hosts_guests_are_replanned_and_the_host_unused():
    s = _owner_gone("online")
    s.hosts[2].reachable = True  # even a host that answers: the operator's word for this run
    layout = plan(s, Policy(), dead=["xen03"])
    a = layout.assignment("auth01")
    assert a is not None and a.host != "xen03" and a.takeover_from == "xen03"
    assert {h.name: h.status for h in layout.hosts}["xen03"] == "dead (declared)"
    assert "xen03" not in {x.host for x in layout.assignments}
    with pytest.raises(ConfigError, match="dead: 'xen3' is not a host"):
        plan(s, Policy(), dead=["xen3"])


def test_without_stays_a_what_if_of_a_failed_and_dead_host():
    layout = plan(_owner_gone("online"), Policy(), without=["xen03"])
    a = layout.assignment("auth01")
    assert a is not None and a.takeover_from == "xen03"
    assert layout.without == ["xen03"]


def test_assemble_records_the_cluster_managers_word_on_each_member():
    s = _assembled(GOOD)
    assert [h.member for h in s.hosts] == ["online", "offline", None]
    again = Snapshot.from_dict(__import__("json").loads(s.to_json()))
    assert [h.member for h in again.hosts] == ["online", "offline", None]


FENCE_LS = (
    "fence domain\nmember count  1\nvictim count  {victims}\nvictim now    0\n"
    "master nodeid 1\nwait state    none\nmembers       1 \n\nall nodes\n"
    "nodeid 1 member 1 victim 0 last fence master 0 how none\n"
    "nodeid 2 member 0 victim {victim} last fence master {master} how {how}\n"
)


@pytest.mark.parametrize(
    "victim, how, member",
    [
        (0, "agent", "fenced"),
        (1, "none", "offline"),
        (0, "none", "offline"),
        (0, "member", "offline"),
    ],
)
def test_assemble_calls_a_member_fenced_only_on_the_fence_record(victim, how, member):
    text = FENCE_LS.format(victims=victim, victim=victim, master=1 if how != "none" else 0, how=how)
    extra = {"clustat-x": Output(CLUSTAT_X, 0), "fence-ls": Output(text, 0)}
    master = _host("xen01", "db01", extra)
    reports = {
        "xen01": master,
        "xen02": HostReport("xen02", error="xen02 (127.0.0.12:2222): connection refused"),
    }
    entries = [HostEntry("xen01"), HostEntry("xen02")]
    s = assemble("t", "2026-11-23T19:00:00Z", entries, reports, "xen01", RG, "/x")
    assert [h.member for h in s.hosts] == ["online", member]
    again = Snapshot.from_dict(__import__("json").loads(s.to_json()))
    assert again.hosts[1].member == member


def test_unreadable_fence_state_proves_nothing():
    for out in (Output("fenced not running\n", 1), Output("garbage\n", 0)):
        state = RG.parse_state({"clustat-x": Output(CLUSTAT_X, 0), "fence-ls": out}, "xen01")
        assert state.fenced == {"xen02": False} and state.error is None
    # RHEL 5: cman's -f record, and the fence group at rest.
    cman = (
        "Node  Sts   Inc   Joined               Name\n"
        "   1   M     16   2009-03-02 10:11:12  xen01\n"
        "   2   X     20                        xen02\n"
        "       Last fenced:   2009-03-02 11:40:07 by apc-pdu1\n"
    )
    groups = "type level name id state\nfence 0 default 00010001 none\n[1]\n"
    outputs = {
        "clustat-x": Output(CLUSTAT_X, 0),
        "fence-ls": Output("fence_tool: unknown command ls\n", 1),
        "cman-nodes": Output(cman, 0),
        "group-ls": Output(groups, 0),
    }
    assert RG.parse_state(outputs, "xen01").fenced == {"xen02": True}
    outputs["group-ls"] = Output("group_tool: cannot connect\n", 1)
    state = RG.parse_state(outputs, "xen01")
    assert state.fenced == {"xen02": False}
    assert "fence group state unknown" in state.extra["fencing"]["xen02"]


def test_the_fence_probes_ride_in_the_masters_one_batch():
    probes = {p.name: p for p in RG.state_probes()}
    assert probes["fence-ls"].command == "fence_tool ls -n"
    assert probes["cman-nodes"].fallback_for == "fence-ls"
    assert probes["group-ls"].fallback_for == "fence-ls"


def test_host_text_in_a_reason_is_kept_raw_for_display_to_escape():
    evil = "web\x1b]0;owned\x07"
    layout = plan(snap([host("xen01", 8000)], [guest(evil, 1000)]), Policy())
    (u,) = layout.unplaced
    assert u.guest == evil and evil in u.reason  # raw: repr() would have doubled the escapes
