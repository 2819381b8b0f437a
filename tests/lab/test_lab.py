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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clitools import LAB_BOOT_S

from xenfab.errors import LabError

pytestmark = pytest.mark.lab

LAB_PKG = Path(__file__).resolve().parent.parent.parent / "xenfab" / "lab"


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


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        return not Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True


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


def test_the_shared_state_and_the_toolstack_speak_no_cluster_managers_words() -> None:
    """emulator, scenario, the Xen toolstack and control hold no rgmanager state, name or tool.

    rgmanager's words live in its family (rgmanager_tools.py), derived from the neutral guests.
    """
    # ("stopped" is also lab.down's own JSON key, and "services" lab.status's: not listed)
    words = {"disabled", "failed", "started", "starting", "recovering", "recoverable"}
    words |= {"rgmanager", "clustat", "clusvcadm", "cman_tool"}
    for name in ("emulator.py", "scenario.py", "xen_tools.py", "control.py"):
        tree = ast.parse((LAB_PKG / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                assert value not in words and "vm:" not in value, f"{name}: {value!r}"
                # SQL naming another family's table
                assert "FROM services" not in value and "INTO services" not in value, name


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
    read_at = time.time()
    start = st2["starts"][-1]
    assert start["guest"] == guest[3:] and start["host"] == target and start["ok"]
    assert start["ended"] == pytest.approx(start["began"] + LAB_BOOT_S)
    if read_at < start["began"] + 0.9:  # a loaded machine may take longer to get here
        assert service(st2, guest)["state"] == "starting"
    assert service(st2, guest)["owner"] == target
    assert host_of(st2, target)["free_mib"] < before
    assert guest[3:] in list_rows(ok(fresh_lab.ssh(target, "xl list")))
    time.sleep(max(0.0, start["ended"] + 0.05 - time.time()))
    assert service(fresh_lab.status(), guest)["state"] == "started"
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


def test_parallel_starts_on_one_host_stay_consistent(fresh_lab) -> None:
    """10 concurrent starts into a host that fits only 3: exactly 3 succeed."""
    from xenfab.lab import emulator

    mem, target = 2048, "xen03"
    db = emulator.connect(str(fresh_lab.dir))
    try:
        db.execute("BEGIN IMMEDIATE")
        for i in range(10):
            cfg = f"burst{i:02d}.cfg"
            (fresh_lab.dir / "xenconfig" / cfg).write_text(
                f'name = "burst{i:02d}"\nmemory = {mem}\nvcpus = 1\n'
            )
            db.execute(
                "INSERT INTO services(name, state, transition, cfg) VALUES (?, 'disabled', 0, ?)",
                (f"vm:burst{i:02d}", cfg),
            )
        free = emulator.host_free_mib(db, target)
        db.execute(
            "UPDATE hosts SET total_mib = total_mib - ? WHERE name = ?",
            (free - (3 * mem + mem // 2), target),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    assert host_of(fresh_lab.status(), target)["free_mib"] == 3 * mem + mem // 2

    def start(i: int) -> subprocess.CompletedProcess:
        return fresh_lab.ssh(f"xen0{1 + i % 6}", f"clusvcadm -e vm:burst{i:02d} -m {target}")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(start, range(10)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0] * 3 + [255] * 7, [(r.returncode, r.stdout) for r in results]
    st = fresh_lab.status()
    assert host_of(st, target)["free_mib"] == mem // 2
    rows = list_rows(ok(fresh_lab.ssh(target, "xl list")))
    assert len([n for n in rows if n.startswith("burst")]) == 3
    bursts = [s for s in st["starts"] if s["guest"].startswith("burst")]
    assert len(bursts) == 10 and sum(s["ok"] for s in bursts) == 3


def test_fault_host_down_and_up(fresh_lab) -> None:
    fresh_lab.inject("host-down", "xen03")
    res = fresh_lab.ssh("xen03", "true", timeout=20)
    assert res.returncode == 255 and "Connection refused" in res.stderr
    assert ok(fresh_lab.ssh("xen02", "hostname")).strip() == "xen02"
    st = fresh_lab.status()
    assert not host_of(st, "xen03")["up"]
    line = next(x for x in ok(fresh_lab.ssh("xen01", "clustat")).splitlines() if " xen03 " in x)
    assert line.rstrip().endswith("Offline")
    guest = down_guests(st)[0]
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {guest} -m xen03")
    assert res.returncode == 244 and res.stdout.strip().endswith("Target node dead / nonexistent")
    fresh_lab.inject("host-up", "xen03")
    assert ok(fresh_lab.ssh("xen03", "hostname")).strip() == "xen03"
    assert host_of(fresh_lab.status(), "xen03")["up"]


def test_fault_slow_and_command_fails(fresh_lab) -> None:
    timed = "s=$(date +%s%N); clustat -Q; echo $(( ($(date +%s%N) - s) / 1000000 ))"
    fast = int(ok(fresh_lab.ssh("xen02", timed)).split()[-1])
    fresh_lab.inject("slow", "xen02", "700")
    slow = int(ok(fresh_lab.ssh("xen02", timed)).split()[-1])
    assert slow >= 700 and slow > fast
    fresh_lab.inject("slow", "xen02", "0")
    name = xl_host(fresh_lab.status())
    fresh_lab.inject("command-fails", name)
    res = fresh_lab.ssh(name, "xl info")
    assert res.returncode == 1 and res.stdout == "" and "cannot init xl context" in res.stderr
    res = fresh_lab.ssh(name, "clustat -x")
    assert res.returncode == 1 and "Could not connect to CMAN" in res.stderr
    fresh_lab.inject("command-ok", name)
    ok(fresh_lab.ssh(name, "xl info"))


def test_fault_start_fails_and_start_behind(fresh_lab) -> None:
    st = fresh_lab.status()
    first, second = down_guests(st)[:2]
    fresh_lab.inject("start-fails", first)
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {first} -m xen01")
    assert res.returncode == 255 and res.stdout.strip().endswith("...Failure")
    assert first[3:] not in list_rows(ok(fresh_lab.ssh("xen01", "xl list")))
    assert fresh_lab.status()["starts"][-1]["ok"] is False
    fresh_lab.inject("start-behind", second[3:], "xen02")
    s = service(fresh_lab.status(), second)
    assert s["state"] in ("starting", "started") and s["owner"] == "xen02"
    assert second[3:] in list_rows(ok(fresh_lab.ssh("xen02", "xl list")))
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {second} -m xen01")
    assert res.returncode == 0 and "Service is already running" in res.stdout


def test_disable_then_enable_a_failed_service(fresh_lab) -> None:
    st = fresh_lab.status()
    failed = next(n for n in down_guests(st, "failed") if n != "vm:legacy07")
    res = fresh_lab.ssh("xen01", f"clusvcadm -d {failed}")
    assert (
        res.returncode == 0 and res.stdout.strip() == f"Local machine disabling {failed}...Success"
    )
    assert service(fresh_lab.status(), failed)["state"] == "disabled"
    res = fresh_lab.ssh("xen01", f"clusvcadm -e {failed} -m xen02")
    assert res.returncode == 0 and f"{failed} is now running on xen02" in res.stdout


def test_configs_vary_and_hold_every_guest(fresh_lab) -> None:
    from xenfab.lab import xen_tools

    st = fresh_lab.status()
    cfg_dir = fresh_lab.dir / "xenconfig"
    texts = {p.name: p.read_text() for p in cfg_dir.iterdir()}
    assert len(texts) == len(st["services"])
    names = set()
    for fname, text in texts.items():
        if fname == "legacy-vm.cfg":
            assert 'name = "legacy%02d" % vmid' in text
            with pytest.raises(ValueError):
                xen_tools.read_cfg(str(cfg_dir / fname))
            continue
        cfg = xen_tools.read_cfg(str(cfg_dir / fname))
        assert 512 <= cfg["memory"] <= 16384 and 1 <= cfg["vcpus"] <= 8
        names.add(cfg["name"])
    assert {s["name"][3:] for s in st["services"]} - names == {"legacy07"}
    assert service(st, "vm:legacy07")["state"] == "failed"
    blob = "\n".join(texts.values())
    assert "memory      = '" in blob  # quoted numbers
    assert any("maxmem" not in t for t in texts.values())
    assert any(re.search(r"^maxmem", t, re.M) for t in texts.values())
    assert re.search(r",\s*\]", blob)  # trailing commas in lists
    assert re.search(r"\S\s*#\s", blob)  # comments after a value
    assert any(not f.endswith(".cfg") for f in texts)
    assert any(
        xen_tools.read_cfg(str(cfg_dir / f))["name"] + ".cfg" != f
        for f in texts
        if f != "legacy-vm.cfg"
    )
    assert "; " in blob


def test_scenario_fits_and_is_deterministic(fresh_lab) -> None:
    st = fresh_lab.status()
    states = {s["state"] for s in st["services"]}
    assert {"started", "disabled", "failed"} <= states
    assert len({h["total_mib"] for h in st["hosts"]}) > 2
    assert 1 <= sum(h["toolstack"] == "xm" for h in st["hosts"]) <= 3
    assert any(len(s["name"]) > 30 for s in st["services"])
    for s in st["services"]:
        if s["state"] == "started":
            assert s["owner"] and host_of(st, s["owner"]) is not None
        else:
            assert s["owner"] is None
    other = fresh_lab.reseed(seed=2)
    assert [s["name"] for s in other["services"]] != [s["name"] for s in st["services"]]
    again = fresh_lab.reseed(seed=1)
    assert [(s["name"], s["state"], s["last_owner"]) for s in again["services"]] == [
        (s["name"], s["state"], s["last_owner"]) for s in st["services"]
    ]
    assert again["starts"] == []


def test_reseed_restores_hosts_and_keeps_sshd(fresh_lab) -> None:
    pids = fresh_lab.status()["pids"]
    fresh_lab.inject("host-down", "xen05")
    fresh_lab.inject("inquorate")
    st = fresh_lab.reseed()
    assert st["pids"] == pids and st["quorate"] and all(h["up"] for h in st["hosts"])
    assert ok(fresh_lab.ssh("xen05", "hostname")).strip() == "xen05"


def test_fabric_and_strict_paramiko(lab) -> None:
    import paramiko
    from fabric import Config, Connection

    conn = Connection("xen04", config=Config(runtime_ssh_path=str(lab.ssh_config)))
    try:
        assert conn.run("hostname", hide=True, in_stream=False).stdout.strip() == "xen04"
    finally:
        conn.close()
    st = lab.status()
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.dir / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            "127.0.0.11",
            port=st["port"],
            username=__import__("getpass").getuser(),
            key_filename=str(lab.dir / "id_ed25519"),
            look_for_keys=False,
            allow_agent=False,
        )
        _, out, _ = client.exec_command("hostname")
        assert out.read().decode().strip() == "xen01"
    finally:
        client.close()


def test_status_summary_is_the_backends_own_count(lab) -> None:
    """rgmanager counts its services' states; xl counts domains listed on live hosts."""
    rg = lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="rgmanager")
    states = [s["state"] for s in rg["services"]]
    assert rg["summary"] == {
        "running": states.count("started") + states.count("starting"),
        "down": sum(states.count(x) for x in ("disabled", "failed", "stopped", "recoverable")),
        "quorate": True,
    }
    xl = lab.reseed(backend="xl")
    # The same scenario: what rgmanager calls running is what some host lists.
    assert xl["summary"] == {**rg["summary"], "quorate": None}
    lab.inject("host-down", "xen01")
    on_xen01 = sum(1 for s in xl["services"] if s["owner"] == "xen01")
    after = lab.status()["summary"]
    assert after["running"] == xl["summary"]["running"] - on_xen01
    assert after["down"] == xl["summary"]["down"] + on_xen01
    lab.reseed(backend="rgmanager")


def test_status_task_json(lab, capsys) -> None:
    import json

    from invoke import Program

    from xenfab.tasks import lab as lab_tasks

    Program(namespace=lab_tasks.ns).run(["fab", "status", "--format", "json"], exit=False)
    st = json.loads(capsys.readouterr().out)
    assert set(st) == {
        "hosts",
        "services",
        "summary",
        "quorate",
        "backend",
        "starts",
        "domains",
        "running",
        "server_pid",
        "port",
        "pids",
        "lab_dir",
    }
    assert set(st["hosts"][0]) == {
        "name",
        "address",
        "up",
        "total_mib",
        "free_mib",
        "cpus",
        "toolstack",
        "powered_off",
    }
    assert set(st["domains"][0]) == {"name", "host"}
    assert set(st["services"][0]) == {"name", "state", "owner", "last_owner"}
    assert st["lab_dir"] == str(lab.dir) and st["running"]


def test_up_twice_down_twice_and_stale_pids(tmp_path) -> None:
    import json
    import os

    from xenfab import lab as lab_mod

    d = tmp_path / "small"
    first = lab_mod.up(d, hosts=2, guests=4, seed=5, boot_s=0)
    assert first["running"] and len(first["pids"]) == 1 and not first["restarted"]
    second = lab_mod.up(d, hosts=2, guests=4, seed=5, boot_s=0)
    assert second["restarted"] and second["pids"] != first["pids"]
    assert gone(first["pids"][0])
    assert first["server_pid"] and gone(first["server_pid"])
    assert second["server_pid"] and not gone(second["server_pid"])
    res = lab_mod.down(d)
    assert res["stopped"] == [*second["pids"], second["server_pid"]]
    assert gone(second["pids"][0]) and gone(second["server_pid"])
    assert lab_mod.down(d)["stopped"] == []
    st = lab_mod.status(d)
    assert not st["running"] and st["pids"] == [] and st["server_pid"] is None
    # a recycled PID in lab.json must never be killed: point it at ourselves
    info = json.loads((d / "lab.json").read_text())
    info["groups"][0]["pid"] = os.getpid()
    (d / "lab.json").write_text(json.dumps(info))
    assert lab_mod.down(d)["stopped"] == []
    with pytest.raises(LabError, match="hosts must be"):
        lab_mod.up(d, hosts=101)


# --------------------------------------------------------------------------- emulator server

SAME_COMMANDS = (
    "{xen} info",
    "{xen} list",
    "{xen} bogus",
    "{xen} list nosuchguest",
    "xentop",
    "xentop -b -x",
    "clustat -x",
    "clustat -s vm:nosuchguest",
    "clusvcadm -e vm:nosuchguest",
    "clusvcadm -Z",
)


def _tool(lab_dir: Path, host: str, argv: list[str], server: bool) -> tuple[str, str, int]:
    if server:
        cmd = [str(lab_dir / "hosts" / host / "bin" / argv[0]), *argv[1:]]
    else:
        cmd = ["python3", "-S", "-E", str(LAB_PKG / "emulator.py"), str(lab_dir), host, *argv]
    if server and not Path(cmd[0]).exists():
        return "", f"{argv[0]}: not installed", 127
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return res.stdout, res.stderr, res.returncode


def _no_numbers(result: tuple[str, str, int]) -> tuple[str, str, int]:
    out, err, rc = result
    return re.sub(r"[0-9.]+", "N", out), err, rc


def test_server_answers_exactly_like_the_emulator_as_a_command(fresh_lab) -> None:
    # The wrappers' frames carry stdout, stderr and the exit code: byte for byte, both ways.
    from xenfab.lab import control

    st = fresh_lab.status()
    assert st["server_pid"] and not gone(st["server_pid"])
    if control.labtool() is not None:
        # Where a C compiler is, the tools are the C client's scripts: it is what is compared.
        head = (fresh_lab.dir / "hosts" / xl_host(st) / "bin" / "xl").read_text().split("\n")[0]
        assert head == f"#!{control.labtool()}"
    for host, xen in ((xl_host(st), "xl"), (xm_host(st), "xm")):
        for command in SAME_COMMANDS:
            argv = command.format(xen=xen).split()
            via_server = _tool(fresh_lab.dir, host, argv, server=True)
            as_command = _tool(fresh_lab.dir, host, argv, server=False)
            if argv[1:] == ["list"] or argv[0] == "xentop":
                # CPU seconds grow while the test runs: the same layout, numbers aside
                via_server, as_command = _no_numbers(via_server), _no_numbers(as_command)
            assert via_server == as_command, (host, command)
    # A guest's state changes through the server as through the command.
    guest = down_guests(fresh_lab.status())[0]
    host = xl_host(st)
    out, _, rc = _tool(fresh_lab.dir, host, ["clusvcadm", "-e", guest, "-m", host], True)
    assert rc == 0 and "Success" in out
    assert service(fresh_lab.status(), guest)["state"] in ("starting", "started")


def test_server_refuses_a_wrong_token_and_keeps_serving(fresh_lab) -> None:
    import json
    import socket

    info = json.loads((fresh_lab.dir / "lab.json").read_text())
    port = info["server"]["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"wrong-token\0" + b"1\0xen01\0xl\0info\0")
        assert sock.recv(100) == b""  # closed without an answer
    assert ok(fresh_lab.ssh("xen01", "hostname")).strip() == "xen01"
    assert "total_memory" in ok(fresh_lab.ssh("xen01", "xl info || xm info"))


def test_tools_still_work_when_the_server_is_gone(tmp_path, capsys) -> None:
    import os
    import signal

    from invoke import Program

    from xenfab import lab as lab_mod
    from xenfab.tasks import lab as lab_tasks

    d = tmp_path / "noserver"
    st = lab_mod.up(d, hosts=2, guests=4, seed=5, boot_s=0)
    try:
        host = st["hosts"][0]["name"]
        xen = st["hosts"][0]["toolstack"]
        before = _tool(d, host, [xen, "info"], server=True)
        os.kill(st["server_pid"], signal.SIGTERM)
        for _ in range(100):
            if gone(st["server_pid"]):
                break
            time.sleep(0.02)
        assert lab_mod.status(d)["server_pid"] is None
        Program(namespace=lab_tasks.ns).run(["fab", "status", "--lab-dir", str(d)], exit=False)
        assert "emulator server not running" in capsys.readouterr().out
        # the wrapper finds no server and runs the emulator as a command: same answer
        assert _tool(d, host, [xen, "info"], server=True) == before
        assert before[2] == 0 and f"host                   : {host}" in before[0]
    finally:
        lab_mod.down(d)


def test_without_a_c_compiler_the_tools_are_bash_wrappers_with_the_same_answers(
    tmp_path, monkeypatch
) -> None:
    from xenfab import lab as lab_mod
    from xenfab.lab import control

    d = tmp_path / "nocc"
    monkeypatch.setattr(control, "labtool", lambda: None)
    st = lab_mod.up(d, hosts=2, guests=4, seed=5, boot_s=0)
    try:
        host, xen = st["hosts"][0]["name"], st["hosts"][0]["toolstack"]
        head = (d / "hosts" / host / "bin" / xen).read_text().splitlines()[0]
        assert head.startswith("#!") and head.endswith("bash")
        assert not (d / "bin" / "labtool.conf").exists()
        by_bash = _tool(d, host, [xen, "info"], server=True)
        assert by_bash[2] == 0 and f"host                   : {host}" in by_bash[0]
        assert by_bash == _tool(d, host, [xen, "info"], server=False)
    finally:
        lab_mod.down(d)


def test_tool_families_are_found_one_per_backend() -> None:
    """Every ``*_tools.py`` is a family; each backend xenfab knows has exactly one lab family."""
    from pathlib import Path

    from xenfab import cluster
    from xenfab.lab import control, emulator

    here = Path(emulator.__file__).parent
    assert set(emulator.FAMILIES) == {p.stem for p in here.glob("*_tools.py")}
    loaded = emulator.families()
    # The toolstack first: every host has it and it answers the hooks before a manager's family.
    assert loaded[0] is control.TOOLSTACK and getattr(loaded[0], "TOOLSTACK", False)
    assert set(control.BACKENDS) == set(cluster.names())
    for name, family in control.BACKENDS.items():
        assert name == family.BACKEND


def test_a_lab_from_before_the_neutral_guests_is_one_clear_error(tmp_path) -> None:
    import sqlite3

    from xenfab import lab as lab_mod

    (tmp_path / "lab.json").write_text('{"port": 1, "groups": []}')
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("CREATE TABLE services(name TEXT PRIMARY KEY, state TEXT, cfg TEXT)")
    db.close()
    for call in (lambda: lab_mod.status(tmp_path), lambda: lab_mod.inject(tmp_path, "quorate")):
        with pytest.raises(LabError, match="older xenfab: run `fab lab.up` again"):
            call()
