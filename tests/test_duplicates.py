"""Issue 19: a guest running on two hosts is found, said everywhere, and never planned (unit)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from planfixtures import guest, host, snap

from xenfab import show
from xenfab.duplicates import Duplicate, find_duplicates, line, merge, summary
from xenfab.errors import ExitCode
from xenfab.plan import Policy, plan
from xenfab.snapshot import Domain, Snapshot
from xenfab.start.engine import Engine
from xenfab.start.report import GuestResult, StartReport
from xenfab.tasks.core import RunOutcome, facts_problems, with_duplicates


def _doms(*names: str) -> list[Domain]:
    return [Domain("Domain-0", 1024, 2), *(Domain(n, 1024, 1, "-b----") for n in names)]


def _cluster(state: str = "disabled", owner: str | None = None) -> Snapshot:
    """db01 listed by xen04 and xen06 (a hand `xl create`), web01 on xen05 only."""
    return snap(
        [
            host("xen04", 8192, toolstack="xm", domains=_doms("db01")),
            host("xen05", 8192, domains=_doms("web01")),
            host("xen06", 8192, domains=_doms("db01")),
        ],
        [
            guest("db01", 1024, state, owner=owner, running_on=["xen04", "xen06"]),
            guest("web01", 1024, "started", owner="xen05", running_on=["xen05"]),
            guest("app01", 1024),
        ],
    )


def test_find_duplicates_compares_listed_names_and_ignores_dom0():
    lists = {
        "xen06": ["Domain-0", "db01", "web01"],
        "xen04": ["Domain-0", "db01"],
        "xen05": ["Domain-0", "web02", "db01"],
        "xen07": [],
    }
    assert find_duplicates(lists) == [Duplicate("db01", ["xen04", "xen05", "xen06"])]
    assert find_duplicates({"a": ["x"], "b": ["y"]}) == []
    # Names are the hosts' own: a guest renamed by its config is its listed name.
    assert find_duplicates({"a": ["db01"], "b": ["DB01"]}) == []


def test_merge_keeps_every_host_a_copy_was_seen_on():
    then = [Duplicate("db01", ["xen04", "xen06"])]
    later = [Duplicate("db01", ["xen06", "xen02"]), Duplicate("app01", ["xen01", "xen03"])]
    assert merge(then, later) == [
        Duplicate("app01", ["xen01", "xen03"]),
        Duplicate("db01", ["xen02", "xen04", "xen06"]),
    ]


def test_the_line_says_what_and_what_to_do_with_each_hosts_tool():
    dup = Duplicate("db01", ["xen04", "xen06"])
    text = line(dup, {"xen04": "xl", "xen06": "xl"})
    assert text.startswith("DUPLICATE: db01 runs on xen04 and xen06: ")
    assert "`xl destroy db01` on the host that should not run it" in text
    assert "`xm destroy db01`" in line(dup, {"xen04": "xm", "xen06": "xl"})
    assert summary([dup, Duplicate("x", ["a", "b", "c"])]).startswith(
        "DUPLICATE: db01 runs on xen04 and xen06; 1 more"
    )


def test_the_snapshot_stores_its_duplicates_and_never_trusts_a_saved_list():
    s = _cluster()
    assert s.duplicates == [Duplicate("db01", ["xen04", "xen06"])]
    data = json.loads(s.to_json())
    assert data["duplicates"] == [{"guest": "db01", "hosts": ["xen04", "xen06"]}]
    # A doctored file cannot hide one: the list is derived from the hosts' domain lists.
    data["duplicates"] = []
    assert Snapshot.from_dict(data).duplicates == s.duplicates
    # Older snapshots have no key: derived the same way.
    del data["duplicates"]
    assert Snapshot.from_dict(data).duplicates == s.duplicates
    # A change to the hosts after construction is seen when the snapshot is written.
    s.hosts[1].domains.append(Domain("db01", 1024, 1))
    assert json.loads(s.to_json())["duplicates"][0]["hosts"] == ["xen04", "xen05", "xen06"]


def test_a_duplicated_guest_is_never_planned_whatever_its_state():
    for state, owner in (("disabled", None), ("failed", "xen04"), ("started", "xen04")):
        layout = plan(_cluster(state, owner), Policy())
        assert "db01" not in {a.guest for a in layout.assignments}, state
        assert "db01" not in {u.guest for u in layout.unplaced}, state
        skipped = {s.guest: s.reason for s in layout.skipped}
        assert skipped["db01"].startswith("DUPLICATE: db01 runs on xen04 and xen06"), state
        assert {a.guest for a in layout.assignments} == {"app01"}


def test_declaring_its_hosts_dead_does_not_make_a_duplicate_startable():
    # Both copies' hosts declared dead (or failed in a what-if): still two domains, still left.
    layout = plan(_cluster("failed", "xen04"), Policy(), dead=["xen04", "xen06"])
    assert "db01" not in {a.guest for a in layout.assignments}
    assert any(s.guest == "db01" and "DUPLICATE" in s.reason for s in layout.skipped)
    layout = plan(_cluster("disabled"), Policy(), without=["xen04"])
    assert "db01" not in {a.guest for a in layout.assignments}


def test_facts_lists_duplicates_names_and_unreadable_configs_as_problems():
    s = _cluster()
    s.guests.append(guest("bad name;rm", 512, "no-service", plannable=False, reason="not a vm"))
    s.warnings.append("/xenconfig/legacy.cfg: 15: name is computed (guest config skipped)")
    problems = facts_problems(s)
    assert problems[0] == "DUPLICATE: db01 runs on xen04 and xen06"
    assert "has characters xenfab will not send to a shell" in problems[1]
    assert problems[2].startswith("/xenconfig/legacy.cfg")
    text = show.facts_text(s)
    row = next(r for r in text.splitlines() if r.startswith("db01"))
    # A long note is cut in the row and said whole once, as a footnote under the table.
    assert "DUPLICATE: running" in row
    assert "DUPLICATE: running on xen04 and xen06" in text
    assert facts_problems(snap([host("xen01", 1024)], [guest("ok01", 512)])) == []


def test_layout_json_and_text_carry_the_duplicates():
    s = _cluster()
    layout = plan(s, Policy())
    from xenfab.cluster import backend

    doc = show.layout_json(layout, s, backend("rgmanager"))
    assert doc["duplicates"] == [{"guest": "db01", "hosts": ["xen04", "xen06"]}]
    text = show.duplicates_text(s.duplicates, s)
    assert text is not None and "`xm destroy db01` or `xl destroy db01`" not in text
    assert "`xl destroy db01` or `xm destroy db01`" in text
    assert show.duplicates_text([], s) is None


def test_a_duplicate_makes_the_exit_code_2_unless_refused_or_interrupted():
    dups = [Duplicate("db01", ["xen04", "xen06"])]
    ok = with_duplicates(RunOutcome(ExitCode.OK, None), dups)
    assert ok.code == ExitCode.INCOMPLETE and ok.message.startswith("DUPLICATE: db01")
    inc = with_duplicates(RunOutcome(ExitCode.INCOMPLETE, "recovery incomplete: 1"), dups)
    assert inc.code == ExitCode.INCOMPLETE and "recovery incomplete: 1; DUPLICATE" in inc.message
    for code in (ExitCode.REFUSED, ExitCode.INTERRUPTED):
        assert with_duplicates(RunOutcome(code, "x"), dups).code == code
    assert with_duplicates(RunOutcome(ExitCode.OK, None), []).code == ExitCode.OK


def test_the_start_report_carries_the_last_rounds_duplicates():
    report = StartReport(results=[GuestResult("db01", "xen04", "started")])
    assert report.ok and report.to_dict()["duplicates"] == []
    assert report.to_dict()["duplicates_checked"] is False
    report.duplicates = [Duplicate("db01", ["xen04", "xen06"])]
    assert not report.ok
    doc = report.to_dict()
    assert doc["duplicates"] == [{"guest": "db01", "hosts": ["xen04", "xen06"]}]
    assert doc["duplicates_checked"] is True


class _Round:
    def __init__(self, lists):
        self._lists = lists

    def lists(self):
        return self._lists


class _Watch:
    def __init__(self, lists):
        self.lists, self.skipped = lists, None

    def begin(self, skip=()):
        self.skipped = set(skip)
        return _Round({h: v for h, v in self.lists.items() if h not in self.skipped})

    def wait(self, rnd, timeout):
        return True


def _engine(lists, sent=True, count=0, dead=()):
    notes, audits = [], []
    fake = SimpleNamespace(
        watch=_Watch(lists),
        sent_any=sent,
        interrupts=SimpleNamespace(count=count),
        reader=SimpleNamespace(dead_now=lambda: set(dead)),
        env=SimpleNamespace(ssh=SimpleNamespace(connect_timeout=1)),
        snapshot=_cluster(),
        progress=SimpleNamespace(note=notes.append),
        _audit=lambda action, **kw: audits.append((action, kw)),
    )
    return fake, notes, audits


def test_the_engines_last_round_reports_a_copy_started_behind_its_back():
    lists = {"xen04": {"Domain-0", "db01"}, "xen05": {"web01"}, "xen06": {"db01", "app01"}}
    fake, notes, audits = _engine(lists)
    found = Engine._last_round(fake)
    assert found == [Duplicate("db01", ["xen04", "xen06"])]
    assert notes and notes[0].startswith("DUPLICATE: db01 runs on xen04 and xen06")
    assert "`xm destroy db01`" in notes[0]  # xen04 runs xm
    assert audits == [
        ("duplicate", {"guest": "db01", "hosts": ["xen04", "xen06"], "outcome": "seen"})
    ]
    # A host declared dead is not read; nothing sent, or a second Ctrl-C: no last round.
    fake, _, _ = _engine(lists, dead=("xen06",))
    assert Engine._last_round(fake) == [] and fake.watch.skipped == {"xen06"}
    assert Engine._last_round(_engine(lists, sent=False)[0]) is None
    assert Engine._last_round(_engine(lists, count=2)[0]) is None
