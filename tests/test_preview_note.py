"""The NOTE when start-* runs another plan than the last preview: what moved, said by label."""

from __future__ import annotations

from types import SimpleNamespace

from xenfab.config import config_from_dict
from xenfab.run import plans


def _layout(plan_id: str, where: dict[str, str]) -> SimpleNamespace:
    rows = [SimpleNamespace(guest=g, host=h) for g, h in where.items()]
    return SimpleNamespace(plan_id=plan_id, assignments=rows, unplaced=[])


def _cfg(tmp_path):
    env = {"hosts": ["h1"], "backend": "xl", "guest_config_dir": "/xc"}
    doc = {"audit_log": str(tmp_path / "audit.jsonl"), "environments": {"pool": env}}
    cfg = config_from_dict(doc, "t.yaml")
    return cfg, cfg.environment("pool")


def test_no_note_without_a_preview_or_for_the_same_plan(tmp_path):
    cfg, env = _cfg(tmp_path)
    first = _layout("p1", {"g1": "h1"})
    assert plans.preview_note(cfg, env, first) is None
    plans.record_preview(cfg, env, first)
    assert plans.preview_note(cfg, env, first) is None


def test_what_moved_is_said_by_label_with_the_uuids_head_for_vms(tmp_path):
    cfg, env = _cfg(tmp_path)
    vm, h1, h2 = "476595e7-cf32-4e7a-9d6b-000000000001", "6c586172-0001", "6c586172-0002"
    plans.record_preview(cfg, env, _layout("p1", {vm: h1}))
    said = {vm: "db02", h1: "xen01", h2: "xen02"}
    note = plans.preview_note(cfg, env, _layout("p2", {vm: h2}), said)
    assert note is not None and "NOTE: plan p2 differs from the last preview (plan p1" in note
    assert note.endswith("db02 (476595e7) xen01 -> xen02")
    # Without labels (rgmanager, xl): the names themselves.
    bare = plans.preview_note(cfg, env, _layout("p3", {vm: h2}))
    assert bare is not None and bare.endswith(f"{vm} {h1} -> {h2}")
