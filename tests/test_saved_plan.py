"""Saved plans (issue 25), the pure part: build, validate, compare with fresh facts, rule check."""

from __future__ import annotations

import copy
import json
from datetime import datetime

import pytest
from planfixtures import guest, host, snap

from xenfab.plan import plan, policy_from_dict, saved
from xenfab.snapshot import Domain, LockSeen

TAKEN = "2026-01-01T00:00:00Z"
T0 = datetime.fromisoformat(TAKEN.replace("Z", "+00:00")).timestamp()


def _cluster():
    s = snap(
        [
            host("xen01", 8192, domains=[Domain("Domain-0", 1024, 2)]),
            host("xen02", 4096),
            host("xen03", 2048),
        ],
        [guest("web01", 4096), guest("db01", 4096), guest("dns01", 1024)],
    )
    s.taken_at = TAKEN
    return s


def _saved(s=None, policy=None):
    s = s or _cluster()
    policy = policy or policy_from_dict({"strategy": "most-free"})
    layout = plan(s, policy)
    doc = saved.build(s, policy, layout, dead=[], saved_at=TAKEN)
    # What a file holds: JSON, read back.
    doc = json.loads(json.dumps(doc))
    return s, policy, layout, saved.validate(doc, "p.json", environment="test", backend="rgmanager")


def test_a_fresh_plan_holds_on_the_same_facts():
    s, policy, layout, doc = _saved()
    assert doc["plan_id"] == layout.plan_id and len(layout.plan_id) == 12
    assert saved.changes(doc, copy.deepcopy(s)) == []
    assert saved.policy_changed(doc, policy) is None
    assert saved.rule_breaks(doc, s, policy) == []
    assert saved.tampered(doc) is None
    assert saved.layout_of(doc).to_dict() == layout.to_dict()
    # The pieces that matter: planned guests' state and size, target hosts' room and domains.
    assert set(doc["facts"]["guests"]) == {a.guest for a in layout.assignments}
    assert set(doc["facts"]["hosts"]) == {a.host for a in layout.assignments}
    assert doc["facts"]["hash"] == saved.facts_digest(s)


def test_each_change_that_matters_is_one_line():
    s, _, layout, doc = _saved()
    target = layout.assignments[0].host
    planned = layout.assignments[0].guest
    fresh = copy.deepcopy(s)
    fresh.guest(planned).state = "started"
    fresh.guest(planned).running_on = ["xen03"]
    fresh.host(target).free_mib -= 1024
    fresh.host(target).domains.append(Domain("intruder", 512, 1))
    fresh.quorate = False
    got = saved.changes(doc, fresh)
    assert f"guest {planned}: state disabled -> started" in got
    assert f"guest {planned}: running on - -> xen03" in got
    assert any(line.startswith(f"host {target}: free RAM ") for line in got)
    assert f"host {target}: running domains changed: +intruder" in got
    assert "quorum: was True, now False" in got
    assert len(got) == 5


def test_a_host_gone_or_unreachable_and_a_lock_taken_are_changes():
    s, _, layout, doc = _saved()
    target = layout.assignments[0].host
    fresh = copy.deepcopy(s)
    fresh.hosts = [h for h in fresh.hosts if h.name != target]
    assert saved.changes(doc, fresh) == [f"host {target}: gone from the environment"]
    fresh = copy.deepcopy(s)
    fresh.host(target).reachable = False
    fresh.host(target).error = "connection refused"
    assert saved.changes(doc, fresh) == [f"host {target}: unreachable now (connection refused)"]
    fresh = copy.deepcopy(s)
    fresh.lock = LockSeen("xen01", "/var/lock/xenfab.lock", held=True, user="ann@ws", token="t")
    assert saved.changes(doc, fresh) == ["run lock: held by ann@ws now, free at the preview"]


def test_more_free_ram_is_not_a_change():
    s, _, layout, doc = _saved()
    fresh = copy.deepcopy(s)
    fresh.host(layout.assignments[0].host).free_mib += 4096
    assert saved.changes(doc, fresh) == []


def test_age_limit():
    _, _, _, doc = _saved()
    assert saved.too_old(doc, T0 + saved.MAX_AGE_S - 1) is None
    old = saved.too_old(doc, T0 + saved.MAX_AGE_S + 60)
    assert old is not None and "16 min old" in old and "within 15 min" in old
    doc["facts"]["taken_at"] = "yesterday"
    assert "cannot be read" in saved.too_old(doc, T0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other"), "p.json: not a saved plan (fab show-layout --save"),
        (lambda d: d.update(version=99), "p.json: plan version 99, this xenfab reads 1"),
        (lambda d: d.pop("facts"), "p.json: not a saved plan: 'facts' missing or malformed"),
        (lambda d: d.update(environment="prod"), "a plan of environment 'prod', not of 'test'"),
        (lambda d: d.update(backend="xl"), "a plan of backend xl, not of rgmanager"),
        (lambda d: d["layout"].update(assignments=[{"guest": 1}]), "layout malformed"),
    ],
)
def test_validate_refuses_what_is_not_a_plan_of_this_environment(edit, message):
    _, _, _, doc = _saved()
    edit(doc)
    with pytest.raises(saved.PlanError) as err:
        saved.validate(doc, "p.json", environment="test", backend="rgmanager")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(saved.PlanError):
        saved.validate([], "p.json", environment="test", backend="rgmanager")


def test_a_hand_edited_plan_that_breaks_a_rule_is_refused():
    s, policy, layout, doc = _saved()
    # Move every guest onto the smallest host: RAM refuses the second one.
    for a in doc["layout"]["assignments"]:
        a["host"] = "xen03"
    breaks = saved.rule_breaks(doc, s, policy)
    assert breaks and all(b.startswith("guest ") for b in breaks)
    assert any("on xen03: RAM" in b for b in breaks)
    assert saved.tampered(doc) is not None


def test_an_edit_within_the_rules_is_still_caught_by_the_id():
    s, policy, layout, doc = _saved()
    a = doc["layout"]["assignments"][0]
    a["why"] = "because I said so"
    assert saved.rule_breaks(doc, s, policy) == []
    assert "does not match its plan id" in saved.tampered(doc)


def test_the_policy_of_the_run_must_be_the_plans():
    _, _, _, doc = _saved()
    other = policy_from_dict({"strategy": "most-free", "reserve_mib": 512})
    assert "reserve_mib" in saved.policy_changed(doc, other)
    # The safety stop is not part of the plan.
    same = policy_from_dict({"strategy": "most-free", "exact_search_s": 5})
    assert saved.policy_changed(doc, same) is None


def test_plan_id_ignores_how_the_facts_were_gathered():
    s = _cluster()
    pol = policy_from_dict({})
    a = plan(s, pol).plan_id
    s2 = copy.deepcopy(s)
    s2.taken_at = "2026-01-01T00:05:00Z"
    s2.errors = ["xen09: timed out after 10.2 s"]
    s2.hosts[0].rtt_ms = 3.5
    s2.hosts = list(reversed(s2.hosts))
    assert plan(s2, pol).plan_id == a
    s2.guests[0].memory_mib += 1
    assert plan(s2, pol).plan_id != a
