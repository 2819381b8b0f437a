"""The rehearsal lab over real SSH: output shapes, clusvcadm semantics, faults, lifecycle.

These tests parse the lab's output with their own few lines of code on purpose: they check the
emulator against the formats, not against xenfab's parsers.
"""

from __future__ import annotations

import ast
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xenfab.errors import LabError

pytestmark = pytest.mark.lab

LAB_PKG = Path(__file__).resolve().parent.parent / "xenfab" / "lab"


def ok(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, f"rc={res.returncode} stderr={res.stderr!r} stdout={res.stdout!r}"
    return res.stdout


def host_of(status: dict, name: str) -> dict:
    return next(h for h in status["hosts"] if h["name"] == name)


def service(status: dict, name: str) -> dict:
    return next(s for s in status["services"] if s["name"] == name)


def xl_host(status: dict) -> str:
    return next(h["name"] for h in status["hosts"] if h["toolstack"] == "xl")


def xm_host(status: dict) -> str:
    return next(h["name"] for h in status["hosts"] if h["toolstack"] == "xm")


def info_dict(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def list_rows(text: str) -> dict:
    rows = {}
    for line in text.splitlines()[1:]:
        name, domid, mem, vcpus, state, secs = line.rsplit(None, 5)
        rows[name] = (int(domid), int(mem), int(vcpus), state, float(secs))
    return rows


def down_guests(status: dict, state: str = "disabled") -> list[str]:
    return [s["name"] for s in status["services"] if s["state"] == state]


# --------------------------------------------------------------------------- rule


def test_lab_imports_no_xenfab_module_but_errors() -> None:
    """The lab must emulate the tools on its own: no xenfab.parse, nothing outside lab/errors."""
    allowed = ("xenfab.lab", "xenfab.errors")
    for path in sorted(LAB_PKG.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    # relative: ".x" stays inside xenfab.lab, ".." reaches xenfab
                    base = "xenfab.lab" if node.level == 1 else "xenfab"
                    mod = f"{base}.{node.module}" if node.module else base
                    names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
                else:
                    names = [node.module or ""]
            else:
                continue
            for name in names:
                if name == "xenfab" or name.startswith("xenfab."):
                    assert name.startswith(allowed), f"{path.name}: imports {name}"
    emulator = (LAB_PKG / "emulator.py").read_text()
    assert "import xenfab" not in emulator and "from xenfab" not in emulator
    assert "from ." not in emulator  # run as a standalone script


# --------------------------------------------------------------------------- shapes


def test_xl_info_shape_and_free_memory(fresh_lab) -> None:
    st = fresh_lab.status()
    name = xl_host(st)
    text = ok(fresh_lab.ssh(name, "xl info"))
    for line in text.splitlines():
        assert re.match(r"^[a-z_0-9]{1,23} *: ", line) and line.index(":") == 23, line
    info = info_dict(text)
    h = host_of(st, name)
    assert info["host"] == name
    assert int(info["total_memory"]) == h["total_mib"]
    assert int(info["free_memory"]) == h["free_mib"]
    assert int(info["nr_cpus"]) == h["cpus"]
    assert "xen_version" in info and "outstanding_claims" in info
    assert "node_to_memory" not in info
    assert ok(fresh_lab.ssh(name, "xl info free_memory")).strip() == info["free_memory"]


def test_xm_host_has_xm_only(fresh_lab) -> None:
    st = fresh_lab.status()
    name = xm_host(st)
    info = info_dict(ok(fresh_lab.ssh(name, "xm info")))
    assert "xen_version" not in info and "node_to_memory" in info and "xen_major" in info
    assert int(info["free_memory"]) == host_of(st, name)["free_mib"]
    res = fresh_lab.ssh(name, "command -v xl; echo rc=$?; command -v xm")
    assert "rc=1" in res.stdout and res.stdout.rstrip().endswith("/xm")
    header = ok(fresh_lab.ssh(name, "xm list")).splitlines()[0]
    assert "\t" not in header and header.split() == [
        "Name",
        "ID",
        "Mem",
        "VCPUs",
        "State",
        "Time(s)",
    ]


def test_xl_list_shape(fresh_lab) -> None:
    st = fresh_lab.status()
    owners = {s["owner"] for s in st["services"] if s["state"] == "started"}
    name = next(h["name"] for h in st["hosts"] if h["toolstack"] == "xl" and h["name"] in owners)
    text = ok(fresh_lab.ssh(name, "xl list"))
    assert (
        text.splitlines()[0]
        == "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    )
    rows = list_rows(text)
    assert rows["Domain-0"][0] == 0 and rows["Domain-0"][3] == "r-----"
    mine = {s["name"][3:] for s in st["services"] if s["owner"] == name}
    assert mine and mine <= set(rows)
    for line in text.splitlines()[2:]:
        assert re.match(
            r"^\S.{39} [ \d]{5} [ \d]{5} [ \d]{5}     [-rbpscd]{6}  [ \d]{6}\.\d$", line
        )


def test_xentop_batch_shape(fresh_lab) -> None:
    st = fresh_lab.status()
    owners = [s["owner"] for s in st["services"] if s["state"] == "started"]
    name = owners[0]
    lines = ok(fresh_lab.ssh(name, "xentop -b -i 1")).splitlines()
    assert lines[0].split()[0] == "NAME" and lines[0].split()[-1] == "SSID"
    assert len(lines[0].split()) == 19
    dom0 = next(line for line in lines if line.split()[0] == "Domain-0")
    assert "no limit" in dom0 and "n/a" in dom0
    for line in lines[1:]:
        fields = line.replace("no limit", "nolimit").split()
        assert len(fields) == 19 and len(fields[0]) <= 10 and fields[3] == "0.0"
    assert fresh_lab.ssh(name, "xentop").returncode != 0  # no terminal, no batch


def test_clustat_text_and_xml(fresh_lab) -> None:
    st = fresh_lab.status()
    text = ok(fresh_lab.ssh("xen02", "clustat"))
    lines = text.splitlines()
    assert lines[0].startswith("Cluster Status for ") and lines[1] == "Member Status: Quorate"
    member = next(line for line in lines if line.startswith(" xen02 "))
    assert member[41:].split(None, 1)[1] == "Online, Local, rgmanager"
    svc_lines = [line for line in lines if line.startswith(" vm:")]
    assert len(svc_lines) == len(st["services"])
    for line in svc_lines:
        assert len(line) == 1 + 30 + 1 + 30 + 1 + 14
    long = [s for s in st["services"] if len(s["name"]) > 30]
    assert long and any(line[1:31] == long[0]["name"][:30] for line in svc_lines)
    s = next(s for s in st["services"] if s["state"] == "disabled" and s["last_owner"])
    line = next(line for line in svc_lines if line[1:31].rstrip() == s["name"])
    assert line[32:62].rstrip() == f"({s['last_owner']})" and line[63:].rstrip() == "disabled"

    root = ET.fromstring(ok(fresh_lab.ssh("xen02", "clustat -x")))
    assert root.tag == "clustat" and root.get("version") == "4.1.1"
    assert root.find("quorum").get("quorate") == "1"
    nodes = {n.get("name"): n for n in root.iter("node")}
    assert nodes["xen02"].get("local") == "1" and nodes["xen01"].get("local") == "0"
    groups = {g.get("name"): g for g in root.iter("group")}
    assert set(groups) == {s["name"] for s in st["services"]}
    g = groups[s["name"]]
    assert (g.get("state"), g.get("state_str"), g.get("owner"), g.get("last_owner")) == (
        "119",
        "disabled",
        "none",
        s["last_owner"],
    )


def test_address_decides_host(fresh_lab) -> None:
    st = fresh_lab.status()
    for h in st["hosts"]:
        tool = h["toolstack"]
        out = ok(fresh_lab.ssh(h["name"], f"hostname; {tool} info | grep ^host"))
        assert out.split()[0] == h["name"] and out.split()[-1] == h["name"]


def test_shell_semantics(fresh_lab) -> None:
    cfg = fresh_lab.dir / "xenconfig"
    out = ok(fresh_lab.ssh("xen01", f"cat {cfg}/* | grep -c name; xl list | wc -l; false; echo $?"))
    assert out.split()[-1] == "1"
    res = fresh_lab.ssh("xen01", "echo 'a b'  \"c\"; nosuchtool")
    assert res.stdout.startswith("a b c") and res.returncode == 127


# --------------------------------------------------------------------------- clusvcadm


def test_enable_success_then_started_and_ram(fresh_lab) -> None:
    st = fresh_lab.status()
    guest = down_guests(st)[0]
    target = xl_host(st)
    before = host_of(st, target)["free_mib"]
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {guest} -m {target}")
    assert res.returncode == 0
    assert res.stdout.splitlines()[0] == f"Member {target} trying to enable {guest}...Success"
    st2 = fresh_lab.status()
    assert service(st2, guest)["state"] == "starting" and service(st2, guest)["owner"] == target
    assert host_of(st2, target)["free_mib"] < before
    assert guest[3:] in list_rows(ok(fresh_lab.ssh(target, "xl list")))
    time.sleep(1.1)
    st3 = fresh_lab.status()
    assert service(st3, guest)["state"] == "started"
    start = st3["starts"][-1]
    assert start["guest"] == guest[3:] and start["host"] == target and start["ok"]
    assert start["ended"] == pytest.approx(start["began"] + 1)
    again = fresh_lab.ssh("xen01", f"clusvcadm -e {guest} -m xen01")
    assert again.returncode == 0 and again.stdout.strip().endswith("...Service is already running")


def test_enable_errors(fresh_lab) -> None:
    st = fresh_lab.status()
    guest = down_guests(st)[0]
    res = fresh_lab.ssh("xen01", "clusvcadm -e vm:nosuch -m xen01")
    assert res.returncode == 252 and res.stdout.strip().endswith("...Service does not exist")
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {guest} -m bogus")
    assert res.returncode == 1 and "No matches for 'bogus' found" in res.stdout
    failed = down_guests(st, "failed")[0]
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {failed} -m xen01")
    assert res.returncode == 255 and res.stdout.strip().endswith("...Failure")
    fresh_lab.inject("inquorate")
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {guest} -m xen01")
    assert res.returncode == 247 and res.stdout.strip().endswith("...Operation requires quorum")
    assert "Member Status: Inquorate" in fresh_lab.ssh("xen01", "clustat").stdout
    assert fresh_lab.ssh("xen01", "clustat -Q").returncode == 1
    fresh_lab.inject("quorate")
    assert fresh_lab.ssh("xen01", "clustat -Q").returncode == 0


# --------------------------------------------------------------------------- lifecycle


def test_bad_inject_raises_one_line(lab) -> None:
    with pytest.raises(LabError, match="unknown fault"):
        lab.inject("meteor")
    with pytest.raises(LabError, match="takes 2 argument"):
        lab.inject("slow", "xen01")
    with pytest.raises(LabError, match="no host"):
        lab.inject("host-down", "xen99")
