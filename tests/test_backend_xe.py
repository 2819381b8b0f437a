"""The xe backend offline: a pool master's outputs -> snapshot -> plan, and start outcomes."""

from __future__ import annotations

import pytest

from xenfab.cluster import Output, UnsafeName, backend
from xenfab.config import HostEntry
from xenfab.gather.assemble import HostReport, assemble
from xenfab.plan import plan
from xenfab.plan.policy import Policy
from xenfab.start.outcome import Outcome
from xenfab.start.schedule import Job, Scheduler

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
        ("memory-overhead", "( RO)", str(extra.get("overhead", 0))),
        ("memory-static-max", "( RW)", str(mem_gib * GIB)),
        ("VCPUs-max", "( RW)", "2"),
        ("VCPUs-at-startup", "( RW)", "2"),
        ("resident-on", "( RO)", resident),
        ("affinity", "( RW)", extra.get("affinity", "<not in database>")),
        ("other-config", "(MRW)", extra.get("other", "")),
        ("ha-restart-priority", "( RW)", extra.get("prio", "")),
        ("start-delay", "( RW)", str(extra.get("delay", 0))),
        ("order", "( RW)", str(extra.get("order", 0))),
    )


def outputs(
    ha: bool = False,
    live3: bool = True,
    role: str = "master",
    vm_extra: dict | None = None,
    free3: int = 30 * GIB,
) -> dict[str, Output]:
    pool = record(
        ("uuid", "( RO)", "p"), ("master", "( RO)", H1), ("ha-enabled", "( RO)", str(ha).lower())
    )
    hosts = host(H1, "xcp 01") + host(H2, "xcp 02", enabled=False) + host(H3, "xcp 03", live=live3)
    auto = "auto_poweron: true; import_task: OpaqueRef:NULL"
    more = vm_extra or {}
    vms = "".join(
        [
            vm(DOM0.format(1), "Control domain on host: xcp01", "running", 4, H1, control="true"),
            vm(WEB1, "web", "halted", 8, other=auto, affinity=H3, **more.get(WEB1, {})),
            # the same name-label: told apart by uuid
            vm(WEB2, "web", "halted", 8, other=auto, **more.get(WEB2, {})),
            vm(DB, "db 01", "running", 16, H1, **more.get(DB, {})),
            vm(HAVM, "ha guest", "halted", 2, other=auto, prio="best-effort", **more.get(HAVM, {})),
            vm(OTHER, "scratch", "halted", 2, **more.get(OTHER, {})),
        ]
    )
    free = f"{H1} {20 * GIB}\n{H2} {60 * GIB}\n{H3} {free3}\n"
    return {
        "pool-role": Output(role + "\n", 0),
        "pool": Output(pool, 0),
        "hosts": Output(hosts, 0),
        "free": Output(free, 0),
        "vms": Output(vms, 0),
    }


def snapshot(storage: dict[str, Output] | None = None, **kw):
    b = backend("xe", {})
    out = {**outputs(**kw), **(storage or {})}
    reports = {"pool-master": HostReport("pool-master", out, seconds=0.01)}
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


SHARED = "5e5e5e5e-0000-4000-8000-000000000001"
LOCAL2 = "5e5e5e5e-0000-4000-8000-000000000002"


def storage(unplugged: tuple[str, ...] = (), on_local: tuple[str, ...] = ()) -> dict[str, Output]:
    """pbd/vbd/vdi lists: the shared SR plugged on every host but ``unplugged``; H2's local SR
    holds the disks of ``on_local``; every other VM's disk is on the shared SR."""
    pbds = "".join(
        record(
            ("uuid", "( RO)", f"0000000{i}-0000-4000-8000-00000000000{i}"),
            ("host-uuid", "( RO)", h),
            ("sr-uuid", "( RO)", SHARED),
            ("currently-attached", "( RO)", str(h not in unplugged).lower()),
        )
        for i, h in enumerate((H1, H2, H3))
    ) + record(
        ("uuid", "( RO)", "00000009-0000-4000-8000-000000000009"),
        ("host-uuid", "( RO)", H2),
        ("sr-uuid", "( RO)", LOCAL2),
        ("currently-attached", "( RO)", "true"),
    )
    vms = (WEB1, WEB2, DB, HAVM, OTHER)
    vdi = {v: "f" + v[1:] for v in vms}
    vbds = "".join(record(("vm-uuid", "( RO)", v), ("vdi-uuid", "( RO)", vdi[v])) for v in vms)
    vdis = "".join(
        record(("uuid", "( RO)", vdi[v]), ("sr-uuid", "( RO)", LOCAL2 if v in on_local else SHARED))
        for v in vms
    )
    return {"pbds": Output(pbds, 0), "vbds": Output(vbds, 0), "vdis": Output(vdis, 0)}


def test_order_becomes_tiers_unless_priority_names_the_vm():
    extra = {WEB1: {"order": 20}, HAVM: {"order": 10, "delay": 5}, OTHER: {"order": 30}}
    snap = snapshot(vm_extra=extra)
    # Ordered VMs by rank of their order; order 0 (never set) after every ordered one.
    assert (snap.guest(HAVM).tier, snap.guest(WEB1).tier, snap.guest(OTHER).tier) == (1, 2, 3)
    assert snap.guest(WEB2).tier == 4 and snap.guest(HAVM).gate_s == 5.0
    layout = plan(snap, Policy())
    tiers = {a.guest: a.tier for a in layout.assignments}
    assert tiers == {HAVM: 1, WEB1: 2, WEB2: 4}
    assert [a.guest for a in layout.assignments] == [HAVM, WEB1, WEB2]  # plan order = tiers
    why = {a.guest: a.why for a in layout.assignments}
    assert "tier 1: its manager's start order" in why[HAVM]
    assert "the next tier waits 5 s after it started" in why[HAVM]
    # The config's priority overrides XAPI's order (by uuid or pattern); the rest keep theirs.
    layout = plan(snap, Policy(priority={WEB2: 1, "aaaaaaaa-*": 2}))
    tiers = {a.guest: a.tier for a in layout.assignments}
    assert tiers == {HAVM: 1, WEB1: 2, WEB2: 1}
    assert "start order" not in {a.guest: a.why for a in layout.assignments}[WEB2]


def test_no_order_anywhere_keeps_the_policy_default_tier():
    snap = snapshot()
    assert all(g.tier is None and g.gate_s == 0 for g in snap.guests)
    layout = plan(snap, Policy(default_tier=3))
    assert {a.tier for a in layout.assignments} == {3}
    assert all("start order" not in a.why for a in layout.assignments)


def test_memory_overhead_is_planned_and_said():
    overhead = 70 * 1024 * 1024
    # H3 (WEB1's affinity host) has exactly its static-max free: no room with the overhead.
    snap = snapshot(vm_extra={WEB1: {"overhead": overhead}}, free3=8 * GIB)
    web = snap.guest(WEB1)
    assert (web.memory_mib, web.overhead_mib) == (8192, 70)
    layout = plan(snap, Policy())
    a = layout.assignment(WEB1)
    assert a is not None and a.host != H3
    assert "planned as 8262 MiB: 8192 MiB + 70 MiB its manager adds to start it" in a.why
    # Without the overhead it would have fit its affinity host: the overhead made the difference.
    assert plan(snapshot(free3=8 * GIB), Policy()).assignment(WEB1).host == H3


def test_a_vm_is_never_planned_where_its_sr_is_unplugged():
    snap = snapshot(storage(unplugged=(H3,)))
    assert set(snap.guest(WEB1).refused_hosts) == {H3}
    assert "not plugged here" in snap.guest(WEB1).refused_hosts[H3]
    layout = plan(snap, Policy())
    placed = {a.guest: a.host for a in layout.assignments}
    assert placed[WEB1] == H1 and H3 not in placed.values()  # not its affinity host H3
    why = layout.assignment(WEB1).why
    assert f"not on {H3}: SR {SHARED} not plugged here (xe pbd-list)" in why
    # All SRs plugged: no host filter at all.
    assert all(not g.refused_hosts for g in snapshot(storage()).guests)


def test_a_vm_whose_sr_is_plugged_nowhere_usable_stays_down_with_the_reason_per_host():
    snap = snapshot(storage(on_local=(WEB2,)))  # its disk on H2's local SR; H2 is disabled
    assert set(snap.guest(WEB2).refused_hosts) == {H1, H3}
    layout = plan(snap, Policy())
    (u,) = [u for u in layout.unplaced if u.guest == WEB2]
    assert f"SR {LOCAL2} not plugged here (xe pbd-list)" in u.per_host[H1]
    assert f"SR {LOCAL2} not plugged here" in u.per_host[H3]
    assert u.per_host[H2] == "excluded"  # disabled (maintenance)


def test_storage_unread_is_a_warning_not_a_filter():
    snap = snapshot()  # no pbd/vbd/vdi outputs
    assert any("SR plug state unread" in w for w in snap.warnings)
    assert all(not g.refused_hosts for g in snap.guests)
    failed = {"pbds": Output("Error: Unknown command\n", 1)}
    snap = snapshot({**storage(), **failed})
    assert any("xe pbd-list failed" in w for w in snap.warnings)


def test_state_probes_read_storage_in_the_masters_one_batch():
    probes = {p.name: p.command for p in backend("xe", {}).state_probes()}
    assert probes["pbds"] == "xe pbd-list params=host-uuid,sr-uuid,currently-attached"
    assert probes["vbds"] == "xe vbd-list empty=false params=vm-uuid,vdi-uuid"
    assert probes["vdis"] == "xe vdi-list params=uuid,sr-uuid"
    assert "memory-overhead" in probes["vms"]


def test_the_next_tier_waits_the_start_delay_after_the_vm_started():
    db = Job("db", H1, 1, 0, gate_s=2.0)
    app = Job("app", H2, 2, 1)
    sched = Scheduler([db, app], per_host=1, parallel=4, tier_timeout_s=600, now=0.0)
    assert sched.pick(0.0) == [db]
    sched.begin(db, 0.0)
    db.returned_at = 9.0
    sched.finish(db, Outcome.STARTED, H1, "", 10.0)
    notes = sched.advance(10.5)
    assert sched.open_tiers() == [1] and "tier 2 waits 1.5 s" in notes[0]
    assert sched.pick(11.9) == [] and sched.advance(11.9) == []  # said once
    assert "starting tier 2" in sched.advance(12.0)[0]
    assert sched.pick(12.0) == [app]


def test_a_start_that_waited_the_delay_itself_opens_the_next_tier_at_once():
    db = Job("db", H1, 1, 0, gate_s=2.0, gate_in_start=True)  # xapi slept it in vm-start
    app = Job("app", H2, 2, 1)
    sched = Scheduler([db, app], per_host=1, parallel=4, tier_timeout_s=600, now=0.0)
    sched.pick(0.0)
    sched.begin(db, 0.0)
    db.returned_at = 3.0
    sched.finish(db, Outcome.STARTED, H1, "", 3.2)
    assert "starting tier 2" in sched.advance(3.2)[0]
    # Someone else started it (already running): no start of ours waited the delay.
    db2 = Job("db", H1, 1, 0, gate_s=2.0, gate_in_start=True)
    sched = Scheduler(
        [db2, Job("app", H2, 2, 1)], per_host=1, parallel=4, tier_timeout_s=600, now=0.0
    )
    sched.pick(0.0)
    sched.begin(db2, 0.0)
    sched.finish(db2, Outcome.ALREADY_RUNNING, H1, "", 1.0)
    assert sched.advance(2.9) and sched.open_tiers() == [1]
    assert "starting tier 2" in sched.advance(3.0)[0]
