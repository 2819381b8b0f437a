"""Death needs proof (issue 19, case 1): a partition is not a death; a fence is.

On the lab: ``host-down`` is a partition (the host and its domains run on, clustat says
Offline, fenced keeps it a victim); ``fence`` powers the host off and records the fence.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter

import pytest
from clitools import fab, no_traceback
from test_start_lab import Run

from xenfab.parse import ParseError, fencing_verdicts, parse_fence_tool_ls, parse_guest_config

pytestmark = pytest.mark.lab

REMEDY = (
    "liveness unknown: xen02 is offline but not fenced: fence it (fence_node xen02), "
    "or power it off and declare it dead: --dead xen02"
)


def _started_on(lab, host: str) -> set[str]:
    return {
        s["name"][3:]
        for s in lab.status()["services"]
        if s["state"] in ("started", "starting") and s["owner"] == host
    }


def _copies(lab) -> Counter:
    return Counter(d["name"] for d in lab.status()["domains"])


def _fence_record(lab, host_id: int):
    out = lab.ssh("xen01", "fence_tool ls -n")
    assert out.returncode == 0, out.stderr
    domain = parse_fence_tool_ls(out.stdout, source="xen01: fence_tool ls -n")
    return fencing_verdicts({"xen02": host_id}, domain=domain)["xen02"]


def test_a_partition_leaves_the_members_guests_alone_still_down_with_the_remedy(
    fresh_lab, tmp_path
):
    victims = _started_on(fresh_lab, "xen02")
    assert victims == {"lb01", "mq01"}, "the default scenario runs lb01 and mq01 on xen02"
    fresh_lab.inject("host-down", "xen02")
    try:
        assert not _fence_record(fresh_lab, 2).fenced
        preview = fab("start-all", "--yes", "--dry-run")
        no_traceback(preview)
        assert preview.returncode == 2, preview.stderr
        for v in sorted(victims):
            # The remedy is said whole once, as a footnote wrapped to the terminal's width.
            flat = " ".join(preview.stdout.split())
            assert f"  {v} (" in preview.stdout and REMEDY in flat
            assert f"vm:{v} " not in preview.stdout + preview.stderr
        # The real run (the engine start-all drives), waiting only briefly for xen02's list.
        run = Run(fresh_lab, tmp_path)
        assert {u.guest: u.reason for u in run.layout.unplaced if u.guest in victims} == {
            v: REMEDY for v in victims
        }
        report, _text = run.start(liveness_wait_s=1.5)
        assert not (victims & {r.guest for r in report.results if r.outcome == "started"})
        assert not any(e.get("guest") in victims and e.get("command") for e in run.audit())
        assert not victims & {s["guest"] for s in fresh_lab.status()["starts"]}
        assert _started_on(fresh_lab, "xen02") == victims
        assert max(_copies(fresh_lab).values()) == 1
    finally:
        fresh_lab.inject("host-up", "xen02")
    assert max(_copies(fresh_lab).values()) == 1


def test_a_fenced_member_is_dead_its_guests_come_back_and_its_return_doubles_nothing(fresh_lab):
    victims = _started_on(fresh_lab, "xen02")
    fresh_lab.inject("host-down", "xen02")  # the partition, then the fence that ends it
    fresh_lab.inject("fence", "xen02")
    try:
        st = fresh_lab.status()
        xen02 = next(h for h in st["hosts"] if h["name"] == "xen02")
        assert xen02["powered_off"] and not xen02["up"]
        assert not [d for d in st["domains"] if d["host"] == "xen02"]
        # rgmanager recovered them as a restricted domain would: stopped, last owner xen02.
        svc = {s["name"][3:]: s for s in st["services"]}
        assert {(svc[v]["state"], svc[v]["last_owner"]) for v in victims} == {("stopped", "xen02")}
        assert _fence_record(fresh_lab, 2).fenced
        res = fab("start-all", "--yes")
        no_traceback(res)
        assert res.returncode == 2, res.stderr  # legacy07 alone stays down
        # Started as planned: said on one summary line with the others (docs/output.md).
        assert all(re.search(rf"\b{v}\b", res.stdout) for v in victims), res.stdout
        back = {s["name"][3:]: s for s in fresh_lab.status()["services"]}
        assert all(back[v]["owner"] not in (None, "xen02") for v in victims)
    finally:
        fresh_lab.inject("host-up", "xen02")
    st = fresh_lab.status()
    assert max(_copies(fresh_lab).values()) == 1
    assert not [d for d in st["domains"] if d["host"] == "xen02"]
    assert fresh_lab.ssh("xen02", "hostname").stdout.strip() == "xen02"


def test_dead_after_a_partition_is_still_the_operators_word(fresh_lab):
    victims = _started_on(fresh_lab, "xen02")
    fresh_lab.inject("host-down", "xen02")
    try:
        res = fab("start-all", "--yes", "--dead", "xen02")
        no_traceback(res)
        started = {s["name"][3:]: s for s in fresh_lab.status()["services"]}
        for v in victims:
            assert started[v]["state"] == "started", started[v]
            assert started[v]["owner"] not in (None, "xen02"), started[v]
        assert "declared dead for this run" in res.stderr
        # The lab's partitioned xen02 still runs its copies: --dead is the operator's word, and
        # a wrong word costs a second copy (why a fence is the better proof).
        copies = _copies(fresh_lab)
        assert all(copies[v] == 2 for v in victims)
    finally:
        fresh_lab.inject("host-up", "xen02")


def test_xl_a_fenced_host_boots_and_its_xendomains_starts_what_it_links(xl_lab):
    auto = xl_lab.dir / "hosts" / "xen05" / "auto"
    linked = set()
    for link in auto.iterdir():
        # The xm config that computes its name fails under xendomains too: not expected.
        with contextlib.suppress(ParseError):
            linked.add(parse_guest_config(link.read_text(), source=str(link)).name)
    assert linked, "the default scenario links guests from xen05's autostart directory"
    xl_lab.inject("fence", "xen05")
    try:
        assert not [d for d in xl_lab.status()["domains"] if d["host"] == "xen05"]
    finally:
        xl_lab.inject("host-up", "xen05")
    on = {d["name"] for d in xl_lab.status()["domains"] if d["host"] == "xen05"}
    assert on == linked
    res = xl_lab.ssh("xen05", "xl list")
    assert all(name in res.stdout for name in linked)


def test_a_name_already_running_on_the_target_is_refused(fresh_lab):
    st = fresh_lab.status()
    down = next(s["name"][3:] for s in st["services"] if s["state"] == "disabled")
    fresh_lab.inject("hand-start", down, "xen06")
    res = fresh_lab.ssh("xen01", f"clusvcadm -e vm:{down} -m xen06")
    assert res.returncode != 0 and "Failure" in res.stdout, res.stdout
    svc = next(s for s in fresh_lab.status()["services"] if s["name"] == f"vm:{down}")
    assert (svc["state"], svc["last_owner"]) == ("failed", "xen06")
    cfg = next(p for p in (fresh_lab.dir / "xenconfig").iterdir() if f'"{down}"' in p.read_text())
    again = fresh_lab.ssh("xen06", f"xl create {cfg}")
    assert again.returncode == 1
    assert f'Domain with name "{down}" already exists.' in again.stderr
    assert _copies(fresh_lab)[down] == 1
