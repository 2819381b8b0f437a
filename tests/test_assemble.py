"""Assembling a snapshot from raw outputs: joins, broken configs, unreachable hosts (no SSH)."""

from __future__ import annotations

from xenfab.cluster import Output, backend
from xenfab.config import HostEntry
from xenfab.gather.assemble import HostReport, assemble
from xenfab.snapshot import Snapshot

XL_INFO = """host                   : {name}
release                : 4.19.0
nr_cpus                : {cpus}
total_memory           : {total}
free_memory            : {free}
xen_major              : 4
xen_minor              : 11
xen_extra              : .4
xen_version            : 4.11.4
"""
XL_LIST = (
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    "Domain-0                                     0  2048     4     r-----     100.0\n"
    "{dom}                                     7  1024     1     -b----      10.0\n"
)
CLUSTAT_X = """<?xml version="1.0"?>
<clustat version="4.1.1">
  <quorum quorate="1" groupmember="1"/>
  <nodes>
    <node name="xen01" state="1" local="1" estranged="0" rgmanager="1" rgmanager_master="0" qdisk="0" nodeid="0x00000001"/>
    <node name="xen02" state="0" local="0" estranged="0" rgmanager="0" rgmanager_master="0" qdisk="0" nodeid="0x00000002"/>
  </nodes>
  <groups>
    <group name="vm:web01" state="119" state_str="disabled" flags="0" flags_str="" owner="none" last_owner="xen02" restarts="0" last_transition="0" last_transition_str="x"/>
    <group name="vm:db01" state="112" state_str="started" flags="0" flags_str="" owner="xen01" last_owner="xen01" restarts="0" last_transition="0" last_transition_str="x"/>
    <group name="vm:ghost" state="114" state_str="failed" flags="0" flags_str="" owner="none" last_owner="none" restarts="0" last_transition="0" last_transition_str="x"/>
    <group name="vm:calc" state="114" state_str="failed" flags="0" flags_str="" owner="none" last_owner="xen01" restarts="0" last_transition="0" last_transition_str="x"/>
    <group name="service:nfs" state="112" state_str="started" flags="0" flags_str="" owner="xen01" last_owner="xen01" restarts="0" last_transition="0" last_transition_str="x"/>
  </groups>
</clustat>
"""


def _host(name, dom, extra=None):
    outputs = {
        "toolstack": Output("xl\n", 0),
        "info": Output(XL_INFO.format(name=name, cpus=16, total=65536, free=30000), 0),
        "list": Output(XL_LIST.format(dom=dom), 0),
    }
    outputs.update(extra or {})
    return HostReport(name, outputs, seconds=0.05)


def _snapshot():
    files = {
        "/x/web01.cfg": "name = 'web01'\nmemory = '2048'\nmaxmem = 4096\nvcpus = 2\n",
        "/x/db.cfg": 'name = "db01"\nmemory = 8192\n',
        "/x/calc.cfg": 'vmid = 3\nname = "VM%d" % vmid\nmemory = 64\n',
        "/x/spare.cfg": 'name = "spare"\nmemory = 512\n',
    }
    master = _host("xen01", "db01", {"clustat-x": Output(CLUSTAT_X, 0)})
    master.files = files
    reports = {
        "xen01": master,
        "xen02": HostReport("xen02", error="xen02 (127.0.0.12:2222): connection refused"),
        "xen03": _host("xen03", "web01"),
    }
    entries = [HostEntry("xen01", "dc1"), HostEntry("xen02"), HostEntry("xen03")]
    return assemble(
        "t", "2026-11-23T19:00:00Z", entries, reports, "xen01", backend("rgmanager"), "/x"
    )


def test_hosts():
    snap = _snapshot()
    xen01, xen02, xen03 = snap.hosts
    assert (xen01.total_mib, xen01.free_mib, xen01.cpus, xen01.location) == (
        65536,
        30000,
        16,
        "dc1",
    )
    assert xen01.toolstack == "xl" and xen01.rtt_ms == 50.0
    assert not xen02.reachable and "connection refused" in xen02.error
    assert [d.name for d in xen03.domains] == ["Domain-0", "web01"]
    assert snap.quorate is True and snap.master == "xen01"


def test_guests_join_configs_services_and_domains():
    snap = _snapshot()
    web = snap.guest("web01")
    assert (web.state, web.owner, web.last_owner) == ("disabled", None, "xen02")
    assert web.memory_mib == 4096 and web.vcpus == 2  # maxmem is what may be charged
    assert web.running_on == ["xen03"]  # disabled in rgmanager, yet running: never start it
    assert snap.guest("db01").state == "started"
    ghost = snap.guest("ghost")
    assert not ghost.plannable and "no config file" in ghost.reason
    calc = snap.guest("calc")
    assert not calc.plannable and "config unreadable" in calc.reason and "calc.cfg" in calc.reason
    assert snap.guest("spare").state == "no-service"
    assert snap.guest("nfs") is None  # service:, not vm:
    assert any("connection refused" in e for e in snap.errors)


def test_snapshot_round_trips_through_json():
    snap = _snapshot()
    again = Snapshot.from_dict(__import__("json").loads(snap.to_json()))
    assert again.to_dict() == snap.to_dict()
    assert snap.to_dict()["xenfab_snapshot"] == 1
