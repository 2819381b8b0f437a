"""The xe backend over the lab as an XCP-ng pool: real sshd, `xe` on the master only."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest
from clitools import fab, no_traceback

pytestmark = pytest.mark.lab
ENV = ("--env", "lab-xe")


def pool(lab) -> dict:
    """The lab's own record of the pool: host name -> uuid, VM uuid -> its row (guest, label...)."""
    db = sqlite3.connect(lab.dir / "state.db")
    db.row_factory = sqlite3.Row
    try:
        hosts = {r["name"]: r["uuid"] for r in db.execute("SELECT name, uuid FROM xe_hosts")}
        vms = {
            r["uuid"]: dict(r) for r in db.execute("SELECT * FROM xe_vms WHERE control_of IS NULL")
        }
    finally:
        db.close()
    return {"hosts": hosts, "vms": vms, "by_uuid": {u: n for n, u in hosts.items()}}


def xe(lab, command: str, host: str = "xen01"):
    """`xe ...` on a lab host over SSH, as an admin types it."""
    return lab.ssh(host, "xe " + command)


def layout(*args: str) -> dict:
    res = fab("show-layout", *ENV, "--format", "json", *args)
    no_traceback(res)
    return json.loads(res.stdout)  # stdout is exactly one JSON document


def running(lab) -> dict[str, str]:
    """VM uuid -> the host uuid xe shows it resident on, for every running VM (not dom0s)."""
    out = xe(lab, "vm-list is-control-domain=false power-state=running params=uuid,resident-on")
    assert out.returncode == 0, out.stderr
    found, uuid = {}, None
    for line in out.stdout.splitlines():
        key, _, value = line.partition(": ")
        if key.strip().startswith("uuid"):
            uuid = value.strip()
        elif key.strip().startswith("resident-on"):
            found[uuid] = value.strip()
    return found


def test_xe_prints_the_real_layouts_and_only_the_master_is_the_master(xe_lab):
    p = pool(xe_lab)
    res = xe(xe_lab, "host-list params=uuid,name-label,memory-free-computed")
    assert res.returncode == 0 and res.stderr == ""
    # Two blank lines after every record; the first key left-aligned, the others right-aligned;
    # an expensive field is not computed by *-list.
    records = res.stdout.split("\n\n\n")
    assert records[-1] == "" and len(records) == len(p["hosts"]) + 1
    first = records[0].splitlines()
    assert first[0].startswith("uuid ( RO)                    : ")
    assert first[1] == "              name-label ( RW): xen01"
    assert first[2] == "    memory-free-computed ( RO): <expensive field>"
    computed = xe(
        xe_lab, f"host-param-get uuid={p['hosts']['xen01']} param-name=memory-free-computed"
    )
    assert computed.returncode == 0 and computed.stdout.strip().isdigit()
    # Name-labels hold spaces and repeat: VMs are told apart by uuid.
    labels = [v["label"] for v in p["vms"].values()]
    assert "web server" in labels and labels.count("web server") >= 2
    # Strict as xe: an unknown field, a bad uuid, an unknown command.
    bad = xe(xe_lab, "vm-list colour=red")
    assert (bad.returncode, bad.stderr) == (1, "Error: Unknown field 'colour'\n")
    bad = xe(xe_lab, "vm-param-get uuid=not-a-uuid param-name=uuid")
    assert (bad.returncode, bad.stderr) == (
        1,
        "The uuid you supplied was invalid.\ntype: VM\nuuid: not-a-uuid\n",
    )
    bad = xe(xe_lab, "vm-frobnicate")
    assert bad.stderr == "Unknown command: vm-frobnicate\nFor usage run: 'xe help'\n"
    conf = xe_lab.dir / "xensource" / "pool.conf"
    assert xe_lab.ssh("xen01", f"cat {conf}").stdout == "master"
    assert xe_lab.ssh("xen03", f"cat {conf}").stdout == "slave:127.0.0.11"


def test_facts_layout_start_all_then_nothing(xe_lab, tmp_path):
    p = pool(xe_lab)
    res = fab("facts", *ENV, "--format", "json")
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    snap = json.loads(res.stdout)
    assert {h["name"] for h in snap["hosts"]} == set(p["hosts"].values())
    assert {h["label"] for h in snap["hosts"]} == set(p["hosts"])
    guests = {g["name"]: g for g in snap["guests"]}
    assert set(guests) == set(p["vms"])  # every VM, by uuid; no control domain
    not_ours = {u for u, v in p["vms"].items() if not v["auto_poweron"]}
    assert not_ours and all(guests[u]["state"] == "not-ours" for u in not_ours)
    for uuid, vm in p["vms"].items():
        assert guests[uuid]["memory_mib"] == vm["mem_mib"] and guests[uuid]["label"] == vm["label"]

    plan = layout("--explain")
    down = {u for u, g in guests.items() if g["state"] == "halted"}
    assert {a["guest"] for a in plan["assignments"]} == down and plan["unplaced"] == []
    assert all(a["why"] for a in plan["assignments"])
    assert all(c.startswith("xe vm-start uuid=") for c in plan["commands"])
    table = fab("show-layout", *ENV, "--explain")
    assert table.returncode == 0 and "Why each host" in table.stdout
    assert "Commands (run on xen01)" in table.stdout
    # People read the name-labels; the uuid's head says which (the JSON keeps the uuids).
    assert f"xen01 ({p['hosts']['xen01'][:8]})" in table.stdout
    assert any(
        f"{p['vms'][a['guest']]['label']} ({a['guest'][:8]})" in " ".join(table.stdout.split())
        for a in plan["assignments"]
    )
    assert all(len(line) <= 100 for line in table.stdout.splitlines())

    res = fab("start-all", *ENV, "--yes")
    no_traceback(res)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "STILL DOWN: none" in res.stdout
    # Progress and results name each VM and host by its label, the uuid's head beside it.
    a = plan["assignments"][0]
    said = f"{p['vms'][a['guest']]['label']} ({a['guest'][:8]})"
    host_label = p["by_uuid"][a["host"]]
    assert f"started {said} on {host_label} ({a['host'][:8]})" in res.stderr
    assert said in " ".join(res.stdout.split("Started as planned", 1)[1].split())
    # The timeline's lanes are the hosts' labels, not their uuids.
    lanes = [line.split()[0] for line in res.stdout.splitlines() if " plan |" in line]
    assert lanes and lanes == sorted(lanes) and set(lanes) <= set(p["hosts"]), lanes
    # fab report reads the audit log alone: the intents carry the labels it says them by.
    report = fab("report", *ENV, "--out", str(tmp_path / "run.html"))
    assert report.returncode == 0, report.stderr
    assert [line.split()[0] for line in report.stdout.splitlines() if " plan |" in line] == lanes
    assert f"{host_label} ({a['host'][:8]})" in (tmp_path / "run.html").read_text()
    now = running(xe_lab)
    for a in plan["assignments"]:
        assert now[a["guest"]] == a["host"]
    assert not_ours.isdisjoint(now)  # down, not ours: never started
    starts = xe_lab.status()["starts"]
    assert len(starts) == len(down) and all(s["ok"] for s in starts)

    again = fab("start-all", *ENV, "--yes")
    assert again.returncode == 0, again.stderr
    assert "Nothing to start" in again.stdout
    assert len(xe_lab.status()["starts"]) == len(starts)


def test_a_vm_whose_sr_is_unplugged_on_its_planned_host_is_placed_elsewhere_first_time(xe_lab):
    # Was: the plan ignored SR plug state, so the VMs planned on that host failed
    # VM_REQUIRES_SR there and were retried and relocated. The plan now reads the PBDs and
    # places them right the first time; the retry path is tested below (SR lost mid-run).
    p = pool(xe_lab)
    plan = layout()
    first = plan["assignments"][0]
    bad_host = p["by_uuid"][first["host"]]
    xe_lab.inject("xapi-8.0")  # the old wording (XCP-ng 8.0) is understood as well
    xe_lab.inject("sr-unplugged", bad_host)
    after = layout("--explain")
    assert first["host"] not in {a["host"] for a in after["assignments"]}
    assert {a["guest"] for a in after["assignments"]} == {a["guest"] for a in plan["assignments"]}
    table = fab("show-layout", *ENV, "--explain")
    assert "not plugged here (xe pbd-list)" in table.stdout, table.stdout
    res = fab("start-all", *ENV, "--yes", "--format", "json")
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    now = running(xe_lab)
    planned_there = {a["guest"] for a in plan["assignments"] if a["host"] == first["host"]}
    for guest in planned_there:
        assert guest in now and now[guest] != first["host"], guest
    starts = xe_lab.status()["starts"]
    assert starts and all(s["ok"] for s in starts), starts  # no VM_REQUIRES_SR: none tried there
    assert bad_host not in {s["host"] for s in starts}


def test_an_sr_lost_during_the_run_is_retried_then_relocated(xe_lab):
    p = pool(xe_lab)
    plan = layout()
    first = plan["assignments"][0]
    bad_host = p["by_uuid"][first["host"]]
    # Unplugged from that host once the run, planned with it plugged, sends its first start.
    not_started = next(v["guest"] for v in p["vms"].values() if not v["auto_poweron"])
    xe_lab.inject("sr-unplugged-on-start", not_started, bad_host)
    res = fab("start-all", *ENV, "--yes", "--format", "json")
    no_traceback(res)
    report = json.loads(res.stdout)
    assert res.returncode == 0, res.stderr
    now = running(xe_lab)
    planned_there = {a["guest"] for a in plan["assignments"] if a["host"] == first["host"]}
    for guest in planned_there:
        assert guest in now and now[guest] != first["host"], guest
    failed = [s for s in xe_lab.status()["starts"] if not s["ok"]]
    assert failed and {s["host"] for s in failed} == {bad_host}
    tries = {r["guest"]: r for r in report["results"]}
    assert all(tries[g]["attempts"] >= 2 for g in planned_there), tries
    still = xe(xe_lab, f"vm-start uuid={sorted(planned_there)[0]} on={first['host']}")
    assert still.returncode == 1 and "actual: running" in still.stderr


def audit(lab, run: str | None = None) -> list[dict]:
    """The audit log's lines (of the last run, or of ``run``)."""
    lines = [json.loads(x) for x in (lab.dir / "audit.jsonl").read_text().splitlines() if x]
    run = run or lines[-1]["run"]
    return [x for x in lines if x["run"] == run]


def stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def test_order_and_start_delay_are_tiers_and_gates(xe_lab):
    p = pool(xe_lab)
    plan = layout()
    tiers = {a["guest"]: a["tier"] for a in plan["assignments"]}
    db = {u for u in tiers if p["vms"][u]["guest"].startswith("db")}
    app = {u for u in tiers if p["vms"][u]["guest"].startswith("app")}
    rest = set(tiers) - db - app
    assert db and app, "the scenario has db and app VMs down"
    # XAPI's order: db* 1 -> tier 1, app* 2 -> tier 2, unset after them.
    assert {tiers[u] for u in db} == {1} and {tiers[u] for u in app} == {2}
    assert {tiers[u] for u in rest} <= {3}
    why = {a["guest"]: a["why"] for a in plan["assignments"]}
    assert all("the next tier waits 1 s after it started" in why[u] for u in db)
    res = fab("start-all", *ENV, "--yes")
    no_traceback(res)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = audit(xe_lab)
    sent = {x["guest"]: stamp(x["time"]) for x in lines if x["action"] == "intent"}
    assert db | app <= set(sent), lines
    # Each db VM ran (the lab's record of it) at least its start-delay before any app start.
    ran = {s["guest"]: s["ended"] for s in xe_lab.status()["starts"] if s["ok"]}
    gate = max(ran[p["vms"][u]["guest"]] for u in db) + 1.0
    first_app = min(sent[u] for u in app)
    assert first_app >= gate - 0.05, (first_app, gate)
    # Identity is the uuid: every start line names the VM and host by uuid.
    hosts = set(p["hosts"].values())
    starts = [x for x in lines if x["action"] in ("intent", "start")]
    assert starts and all(x["guest"] in p["vms"] and x["host"] in hosts for x in starts)
    assert all(f"uuid={x['guest']} on={x['host']}" in x["command"] for x in starts)
    # Every guest an audit line names is a VM uuid, never a name-label (they repeat); the lock
    # lines name the host the lock is held on as xenfab reaches it (the master's SSH name: the
    # lock is a directory there, not an XAPI object).
    assert all(x["guest"] in p["vms"] for x in lines if x.get("guest"))
    locks = [x for x in lines if x["action"] in ("lock", "unlock")]
    assert locks and {x["host"] for x in locks} == {"xen01"}


def test_a_host_filled_to_the_limit_is_planned_with_the_memory_overhead(xe_lab):
    p = pool(xe_lab)
    plan = layout()
    # A VM planned on its affinity host: leave that host exactly its static-max free (MiB),
    # less than static-max + XAPI's overhead, which vm-start needs.
    by_affinity = {
        a["guest"]: a
        for a in plan["assignments"]
        if p["vms"][a["guest"]]["affinity"] == p["by_uuid"][a["host"]]
    }
    assert by_affinity, "the scenario has a VM planned on its affinity host"
    victim = sorted(by_affinity)[0]
    host = by_affinity[victim]["host"]
    name = p["by_uuid"][host]
    free = int(xe(xe_lab, f"host-param-get uuid={host} param-name=memory-free-computed").stdout)
    vm = p["vms"][victim]
    cut = free // (1 << 20) - vm["mem_mib"]
    db = sqlite3.connect(xe_lab.dir / "state.db")
    try:
        with db:
            db.execute("UPDATE hosts SET total_mib = total_mib - ? WHERE name = ?", (cut, name))
    finally:
        db.close()
    now_free = int(xe(xe_lab, f"host-param-get uuid={host} param-name=memory-free-computed").stdout)
    assert now_free // (1 << 20) == vm["mem_mib"]  # static-max alone would fit
    after = layout()
    placed = {a["guest"]: a for a in after["assignments"]}
    assert placed[victim]["host"] != host
    assert "MiB its manager adds to start it" in placed[victim]["why"]
    res = fab("start-all", *ENV, "--yes")
    no_traceback(res)
    assert res.returncode == 0, res.stdout + res.stderr
    starts = xe_lab.status()["starts"]
    assert starts and all(s["ok"] for s in starts), starts  # no HOST_NOT_ENOUGH_FREE_MEMORY


def test_ha_enabled_leaves_protected_vms_to_ha_and_says_so(xe_lab):
    p = pool(xe_lab)
    xe_lab.inject("ha-enable")
    protected = {
        u
        for u, v in p["vms"].items()
        if v["ha_prio"] in ("restart", "best-effort") and v["auto_poweron"]
    }
    plan = layout()
    skipped = {s["guest"]: s for s in plan["skipped"]}
    halted = {u for u in protected if u not in running(xe_lab)}
    assert halted, "the scenario has HA-protected VMs down"
    for u in halted:
        assert u not in {a["guest"] for a in plan["assignments"]}
        assert "left to HA" in skipped[u]["reason"], skipped[u]
    res = fab("start-all", *ENV, "--yes")
    no_traceback(res)
    assert halted.isdisjoint(running(xe_lab))
    assert halted.isdisjoint({s["guest"] for s in xe_lab.status()["starts"]})
    assert res.returncode in (0, 2), res.stderr


def test_a_failing_start_is_still_down_with_exit_2(xe_lab):
    p = pool(xe_lab)
    plan = layout()
    victim = plan["assignments"][0]["guest"]
    xe_lab.inject("start-fails", p["vms"][victim]["guest"])
    res = fab("start-all", *ENV, "--yes")
    no_traceback(res)
    assert res.returncode == 2, res.stdout
    still = res.stdout.split("STILL DOWN", 1)[1]
    assert victim in still and "SR_BACKEND_FAILURE_46" in res.stdout
    others = {a["guest"] for a in plan["assignments"]} - {victim}
    assert others <= set(running(xe_lab))


def test_the_master_down_is_refused_with_how_to_promote(xe_lab):
    xe_lab.inject("host-down", "xen01")
    try:
        res = fab("start-all", *ENV, "--yes")
        no_traceback(res)
        assert res.returncode == 3, res.stdout + res.stderr
        assert "pool-emergency-transition-to-master" in res.stdout + res.stderr
        assert xe_lab.status()["starts"] == []
        member = xe(xe_lab, "vm-list", host="xen02")
        assert member.returncode == 1 and member.stdout == ""
    finally:
        xe_lab.inject("host-up", "xen01")
