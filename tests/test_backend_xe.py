"""The xe backend offline: a pool master's outputs -> snapshot -> plan, and start outcomes."""

from __future__ import annotations

import pytest

from xenfab.cluster import Output, UnsafeName, backend
from xenfab.config import HostEntry
from xenfab.gather.assemble import HostReport, assemble
from xenfab.plan import plan
from xenfab.plan.policy import Policy

H1 = "11111111-1111-4111-8111-111111111111"
H2 = "22222222-2222-4222-8222-222222222222"
H3 = "33333333-3333-4333-8333-333333333333"
DOM0 = "d0d0d0d0-0000-4000-8000-00000000000{}"
WEB1 = "aaaaaaaa-0000-4000-8000-000000000001"
WEB2 = "aaaaaaaa-0000-4000-8000-000000000002"
DB = "bbbbbbbb-0000-4000-8000-000000000001"
HAVM = "cccccccc-0000-4000-8000-000000000001"
OTHER = "dddddddd-0000-4000-8000-000000000001"
GIB = 1 << 30


def record(*fields: tuple[str, str, str]) -> str:
    keys = [f"{k} {ann}" for k, ann, _ in fields]
    width = 4 + max(len(k) for k in keys)
    lines = [f"{keys[0].ljust(width)}: {fields[0][2]}"]
    lines += [f"{k.rjust(width)}: {v}" for k, (_, _, v) in zip(keys[1:], fields[1:], strict=True)]
    return "\n".join(lines) + "\n\n\n"


def host(uuid: str, label: str, enabled: bool = True, live: bool = True) -> str:
    return record(
        ("uuid", "( RO)", uuid),
        ("name-label", "( RW)", label),
        ("enabled", "( RO)", str(enabled).lower()),
        ("cpu_info", "(MRO)", "cpu_count: 16; modelname: Intel(R) Xeon(R) CPU   X5550  @ 2.67GHz"),
        ("memory-total", "( RO)", str(64 * GIB)),
        ("memory-free", "( RO)", str(40 * GIB)),
        ("host-metrics-live", "( RO)", str(live).lower()),
    )


def vm(uuid, label, power, mem_gib, resident="<not in database>", **extra) -> str:
    return record(
        ("uuid", "( RO)", uuid),
        ("name-label", "( RW)", label),
        ("is-a-template", "( RW)", "false"),
        ("is-a-snapshot", "( RO)", "false"),
        ("is-control-domain", "( RO)", extra.get("control", "false")),
        ("power-state", "( RO)", power),
        ("memory-static-max", "( RW)", str(mem_gib * GIB)),
        ("VCPUs-max", "( RW)", "2"),
        ("VCPUs-at-startup", "( RW)", "2"),
        ("resident-on", "( RO)", resident),
        ("affinity", "( RW)", extra.get("affinity", "<not in database>")),
        ("other-config", "(MRW)", extra.get("other", "")),
        ("ha-restart-priority", "( RW)", extra.get("prio", "")),
        ("start-delay", "( RW)", "0"),
        ("order", "( RW)", "0"),
    )


def outputs(ha: bool = False, live3: bool = True, role: str = "master") -> dict[str, Output]:
    pool = record(
        ("uuid", "( RO)", "p"), ("master", "( RO)", H1), ("ha-enabled", "( RO)", str(ha).lower())
    )
    hosts = host(H1, "xcp 01") + host(H2, "xcp 02", enabled=False) + host(H3, "xcp 03", live=live3)
    auto = "auto_poweron: true; import_task: OpaqueRef:NULL"
    vms = "".join(
        [
            vm(DOM0.format(1), "Control domain on host: xcp01", "running", 4, H1, control="true"),
            vm(WEB1, "web", "halted", 8, other=auto, affinity=H3),
            vm(WEB2, "web", "halted", 8, other=auto),  # the same name-label: told apart by uuid
            vm(DB, "db 01", "running", 16, H1),
            vm(HAVM, "ha guest", "halted", 2, other=auto, prio="best-effort"),
            vm(OTHER, "scratch", "halted", 2),
        ]
    )
    free = f"{H1} {20 * GIB}\n{H2} {60 * GIB}\n{H3} {30 * GIB}\n"
    return {
        "pool-role": Output(role + "\n", 0),
        "pool": Output(pool, 0),
        "hosts": Output(hosts, 0),
        "free": Output(free, 0),
        "vms": Output(vms, 0),
    }


def snapshot(**kw):
    b = backend("xe", {})
    reports = {"pool-master": HostReport("pool-master", outputs(**kw), seconds=0.01)}
    entries = [HostEntry("pool-master"), HostEntry("pool-member")]
    return assemble("pool", "2026-01-01T00:00:00Z", entries, reports, "pool-master", b, "")


def test_inventory_comes_from_the_master_alone():
    snap = snapshot()
    assert snap.quorate is True and snap.backend == "xe"
    assert [h.name for h in snap.hosts] == [H1, H2, H3]
    h1 = snap.host(H1)
    # memory-free-computed (what xapi refuses a start on), not memory-free.
    assert (h1.total_mib, h1.free_mib, h1.cpus, h1.label) == (65536, 20480, 16, "xcp 01")
    assert {d.name for d in h1.domains} == {"Domain-0", DB}
    assert snap.host(H2).disabled and snap.host(H2).reachable
    web = snap.guest(WEB1)
    assert (web.label, web.memory_mib, web.vcpus, web.state) == ("web", 8192, 2, "halted")
    assert web.last_owner == H3  # affinity: the preferred host
    assert snap.guest(WEB2).label == "web"
    assert snap.guest(OTHER).state == "not-ours"
    assert snap.guest(DOM0.format(1)) is None  # control domains are never guests


def test_plan_starts_ours_on_enabled_hosts_and_leaves_the_rest():
    snap = snapshot()
    layout = plan(snap, Policy())
    placed = {p.guest: p.host for p in layout.assignments}
    assert set(placed) == {WEB1, WEB2, HAVM}
    assert placed[WEB1] == H3  # its affinity host
    assert H2 not in placed.values()  # disabled (maintenance): excluded
    skipped = {s.guest: s.reason for s in layout.skipped}
    assert "not ours" in skipped[OTHER]
    assert DB in skipped


def test_ha_enabled_leaves_protected_vms_to_ha_and_a_not_live_host_is_dead():
    snap = snapshot(ha=True, live3=False)
    assert snap.guest(HAVM).state == "ha" and "left to HA" in snap.guest(HAVM).reason
    assert snap.host(H3).member == "fenced" and not snap.host(H3).reachable
    layout = plan(snap, Policy())
    placed = {p.guest: p.host for p in layout.assignments}
    assert HAVM not in placed and H3 not in placed.values()
    assert "left to HA" in {s.guest: s.reason for s in layout.skipped}[HAVM]


def test_a_member_is_not_the_master_and_the_run_is_refused_with_the_promote_hint():
    snap = snapshot(role="slave:10.0.0.1")
    assert snap.quorate is False and not snap.guests
    assert any("pool-emergency-transition-to-master" in e for e in snap.errors)


def test_domain_lists_prove_only_live_hosts():
    b = backend("xe", {})
    state = b.parse_state(outputs(live3=False), "pool-master")
    lists = b.domain_lists(state)
    assert lists[H1] == {DOM0.format(1), DB} and lists[H2] == set()
    assert isinstance(lists[H3], str)


def test_start_command_and_outcomes():
    b = backend("xe", {})
    assert b.start_command(WEB1, H3, "halted") == f"xe vm-start uuid={WEB1} on={H3}"
    moved = b.start_command(DB, H3, "running", dead_owner=H1)
    assert "vm-reset-powerstate" in moved and f"uuid={H1} param-name=host-metrics-live" in moved
    with pytest.raises(UnsafeName):
        b.start_command("web; reboot", H3, "halted")
    mem = Output(
        "Not enough server memory is available to perform this operation.\n"
        f"needed: {8 * GIB}\navailable: {GIB}\n",
        1,
    )
    out = b.parse_start(WEB1, H3, mem)
    assert not out.ok and "HOST_NOT_ENOUGH_FREE_MEMORY" in out.message
    assert b.parse_start(WEB1, H3, Output("", 0)).ok
