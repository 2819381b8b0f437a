"""--explain's "why each host": every refusal that changed a guest's answer, the last owner's
first, with the rule and its figures; a pinned guest's line says only why the pin held."""

from __future__ import annotations

from planfixtures import guest, host, snap

from xenfab.plan import plan, policy_from_dict
from xenfab.snapshot import Domain


def run(s, **policy):
    kw = {k: policy.pop(k) for k in ("without", "dead", "avoid") if k in policy}
    return plan(s, policy_from_dict(policy), **kw)


def why(layout, name):
    return next(a.why for a in layout.assignments if a.guest == name)


def where(layout):
    return {a.guest: a.host for a in layout.assignments}


def test_last_owner_refused_by_ram():
    s = snap(
        [host("xen01", 8000), host("xen02", 3000)],
        [guest("db01", 4000, last_owner="xen02")],
    )
    layout = run(s)
    assert where(layout) == {"db01": "xen01"}
    assert why(layout, "db01") == (
        "last owner xen02 refused: RAM: 3000 free < 4000 needed; "
        "round-robin: first host with room in rotation from xen01 (8000 free >= 4000 needed)"
    )


def test_last_owner_refused_by_ram_names_the_reserve():
    s = snap(
        [host("xen01", 8000), host("xen02", 5000)],
        [guest("db01", 4000, last_owner="xen02")],
    )
    layout = run(s, reserve_mib=2048)
    assert why(layout, "db01").startswith(
        "last owner xen02 refused: RAM: room 2952 = free 5000 - reserve 2048 < 4000 needed; "
    )


def test_last_owner_refused_by_vcpu_cap_names_vcpu_ratio():
    # xen02: 8 CPUs x vcpu_ratio 2 = 16, 14 used by a running domain; db01 needs 4.
    busy = [Domain("Domain-0", 1024, 8), Domain("batch", 1024, 14)]
    s = snap(
        [host("xen01", 8000), host("xen02", 60000, domains=busy)],
        [guest("db01", 1000, vcpus=4, last_owner="xen02")],
    )
    layout = run(s, vcpu_ratio=2)
    assert where(layout) == {"db01": "xen01"}
    assert why(layout, "db01") == (
        "last owner xen02 refused: vCPU cap: 14 of 16 used, 4 needed (vcpu_ratio 2 x 8 CPUs); "
        "round-robin: first host with room in rotation from xen02 (8000 free >= 1000 needed)"
    )
    # Without the cap it goes back to its last owner: the cap alone changed the answer.
    assert where(run(s)) == {"db01": "xen02"}


def test_last_owner_refused_by_anti_affinity():
    s = snap(
        [host("xen01", 8000), host("xen02", 8000), host("xen03", 8000)],
        [guest("web01", 1000, last_owner="xen02"), guest("web02", 1000, last_owner="xen02")],
    )
    layout = run(s, anti_affinity={"web": ["web*"]})
    assert where(layout)["web01"] == "xen02"
    assert where(layout)["web02"] != "xen02"
    assert why(layout, "web01") == "last owner (8000 free >= 1000 needed)"
    assert why(layout, "web02").startswith(
        "last owner xen02 refused: class web: web01 already here; round-robin: "
    )


def test_last_owner_refused_by_max_guests_per_host():
    running = [Domain("Domain-0", 1024, 4), Domain("other", 1024, 1)]
    s = snap(
        [host("xen01", 8000), host("xen02", 8000, domains=running)],
        [guest("a", 1000, last_owner="xen02"), guest("b", 1000, last_owner="xen02")],
    )
    layout = run(s, max_guests_per_host=2)
    assert where(layout) == {"a": "xen02", "b": "xen01"}
    assert why(layout, "b").startswith(
        "last owner xen02 refused: max guests: 2 of 2 here (1 running, 1 planned); round-robin: "
    )


def test_last_owner_refused_by_several_rules_says_each():
    busy = [Domain("Domain-0", 1024, 8), Domain("batch", 1024, 16)]
    s = snap(
        [host("xen01", 8000), host("xen02", 500, domains=busy)],
        [guest("db01", 1000, vcpus=2, last_owner="xen02")],
    )
    text = why(run(s, vcpu_ratio=2), "db01")
    assert text.startswith(
        "last owner xen02 refused: RAM: 500 free < 1000 needed, "
        "vCPU cap: 16 of 16 used, 2 needed (vcpu_ratio 2 x 8 CPUs); "
    )


def test_last_owner_not_usable_is_said():
    s = snap(
        [host("xen01", 8000), host("xen02", 8000, reachable=False)],
        [guest("db01", 1000, last_owner="xen02")],
    )
    assert why(run(s), "db01").startswith("last owner xen02 not usable: unreachable; ")
    s = snap(
        [host("xen01", 8000), host("xen02", 8000)],
        [guest("db01", 1000, last_owner="xen02")],
    )
    assert why(run(s, exclude=["xen02"]), "db01").startswith(
        "last owner xen02 not usable: excluded; "
    )
    # prefer_last_owner off: the last owner changed nothing and is not mentioned.
    assert "last owner" not in why(run(s, prefer_last_owner=False), "db01")


def test_last_owner_said_before_preferred_hosts():
    s = snap(
        [host("xen01", 8000), host("xen02", 2000), host("xen03", 1500)],
        [guest("db01", 4000, last_owner="xen02")],
    )
    text = why(run(s, prefer={"db01": ["xen03"]}), "db01")
    assert text.startswith(
        "last owner xen02 refused: RAM: 2000 free < 4000 needed; "
        "preferred host xen03 refused: RAM: 1500 free < 4000 needed; round-robin: "
    )


def test_pinned_guest_says_only_why_the_pin_held():
    s = snap(
        [host("xen01", 8000), host("xen02", 4000), host("xen03", 4000)],
        [guest("a", 100), guest("lic", 1000)],
    )
    text = why(run(s, pin={"lic": ["xen03"]}), "lic")
    assert text == "pinned (xen03): 4000 free >= 1000 needed"
    assert "round-robin" not in text and "rotation" not in text


def test_pinned_guest_names_the_pinned_hosts_refused():
    s = snap(
        [host("xen01", 8000), host("xen02", 500), host("xen03", 4000)],
        [guest("lic", 1000)],
    )
    text = why(run(s, pin={"lic": ["xen02", "xen03"]}), "lic")
    assert text == "pinned (xen02, xen03): xen02 refused: RAM: 500 free < 1000 needed; " + (
        "xen03: 4000 free >= 1000 needed"
    )
    for strategy in ("most-free", "balanced", "pack"):
        text = why(run(s, pin={"lic": ["xen02", "xen03"]}, strategy=strategy), "lic")
        assert text.startswith("pinned (xen02, xen03): xen02 refused: RAM: ")
        assert strategy not in text


def test_pinned_guest_last_owner_outside_its_pin_is_not_a_refusal():
    # The pin decided: the last owner outside it is not said as a refusal of its own.
    s = snap(
        [host("xen01", 8000), host("xen02", 4000)],
        [guest("lic", 1000, last_owner="xen01")],
    )
    assert why(run(s, pin={"lic": ["xen02"]}), "lic") == "pinned (xen02): 4000 free >= 1000 needed"


def test_pinned_guest_on_its_last_owner():
    s = snap(
        [host("xen01", 8000), host("xen02", 4000), host("xen03", 4000)],
        [guest("lic", 1000, last_owner="xen03")],
    )
    text = why(run(s, pin={"lic": ["xen02", "xen03"]}), "lic")
    assert text == "pinned (xen02, xen03): last owner (4000 free >= 1000 needed)"


def test_strategy_passed_over_hosts_are_said():
    # most-free would pick xen01 (most free), but the class refuses it there.
    s = snap(
        [
            host("xen01", 9000, domains=[Domain("Domain-0", 1024, 4), Domain("web01", 1024, 1)]),
            host("xen02", 4000),
        ],
        [guest("web02", 1000)],
    )
    text = why(run(s, strategy="most-free", anti_affinity={"web": ["web*"]}), "web02")
    assert text == (
        "xen01 refused: class web: web01 already here; "
        "most-free: most free RAM of the hosts that fit (4000 free >= 1000 needed)"
    )


def test_many_passed_over_hosts_are_counted():
    hosts = [host(f"xen{i:02d}", 8000, domains=[Domain("Domain-0", 1, 1)]) for i in range(1, 8)]
    for i, h in enumerate(hosts[:6]):
        h.domains.append(Domain(f"web{i:02d}", 1024, 1))
    s = snap(hosts, [guest("web99", 1000)])
    layout = run(s, anti_affinity={"web": ["web*"]})
    assert where(layout) == {"web99": "xen07"}
    text = why(layout, "web99")
    assert text.startswith("xen01 refused: class web: web00 already here; xen02 refused: ")
    assert "; 3 more hosts refused (class web); round-robin: " in text
