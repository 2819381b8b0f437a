"""Tests for parse_clustat (text and XML)."""

from __future__ import annotations

from pathlib import Path

from xenfab.parse import parse_clustat

FIXTURES = Path(__file__).parent / "fixtures" / "parse"

RHEL6 = """\
Cluster Status for prod @ Thu Mar  1 09:45:21 2012
Member Status: Quorate

 Member Name                             ID   Status
 ------ ----                             ---- ------
 node1.example.com                           1 Online, Local, rgmanager
 node2.example.com                           2 Online, rgmanager
 node3.example.com                           3 Offline
 /dev/block/8:33                             0 Online, Quorum Disk

 Service Name                   Owner (Last)                   State
 ------- ----                   ----- ------                   -----
 vm:web01                       node1.example.com              started
 vm:db01                        (node2.example.com)            disabled
 vm:new01                       (none)                         stopped
 service:nfs                    none                           recovering
"""

XML = (FIXTURES / "clustat-x-rhel6.xml").read_text()


def test_rhel6_text() -> None:
    c = parse_clustat(RHEL6)
    assert c.quorate is True and c.rgmanager_running is True
    assert [(m.name, m.online, m.local, m.node_id) for m in c.members] == [
        ("node1.example.com", True, True, 1),
        ("node2.example.com", True, False, 2),
        ("node3.example.com", False, False, 3),
    ]
    assert c.services["vm:web01"].state == "started"
    assert c.services["vm:web01"].owner == "node1.example.com"
    assert c.services["vm:db01"].owner is None
    assert c.services["vm:db01"].last_owner == "node2.example.com"
    assert c.services["vm:new01"].last_owner is None
    assert c.services["service:nfs"].owner is None


def test_xml() -> None:
    c = parse_clustat(XML)
    assert c.quorate is True
    assert [(m.name, m.online, m.local, m.node_id) for m in c.members] == [
        ("node1", True, True, 1),
        ("node2", False, False, 2),
    ]
    assert c.services["vm:web01"].owner == "node1"
    assert c.services["vm:web01"].last_owner == "node2"
    assert c.services["vm:db01"].owner is None
    assert c.services["vm:db01"].last_owner == "node2"
