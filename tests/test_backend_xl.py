"""The xl backend (no cluster manager): which guests are ours, liveness, the start, the config."""

from __future__ import annotations

import pytest
from test_assemble import _host

from xenfab.cluster import ClusterState, Gathered, Output, backend, check_options
from xenfab.config import HostEntry
from xenfab.errors import ConfigError
from xenfab.gather.assemble import HostReport, assemble
from xenfab.plan import Policy, plan
from xenfab.snapshot import Snapshot

FILES = {
    "/srv/xen/web01.cfg": "name = 'web01'\nmemory = 1024\nvcpus = 1\n",
    "/srv/xen/web02.cfg": "name = 'web02'\nmemory = 1024\n",
    "/srv/xen/db01.cfg": "name = 'db01'\nmemory = 2048\n",
    "/srv/xen/scratch.cfg": "name = 'scratch'\nmemory = 512\n",
    "/srv/xen/calc.cfg": "name = 'calc'\nmemory = 512\n",
}


def _auto(*pairs: tuple[str, str]) -> dict[str, Output]:
    return {"autostart": Output("".join(f"{a}\t{b}\n" for a, b in pairs), 0)}


def _snap(options=None, xen02_down=False) -> Snapshot:
    b = backend("xl", check_options("xl", options or {}, "environments.t"))
    master = _host("xen01", "db01", _auto(("/etc/xen/auto/web01.cfg", "/srv/xen/web01.cfg")))
    master.files = dict(FILES)
    reports = {
        "xen01": master,
        # A copy (not a link) in xen03's auto directory, known by its file name.
        "xen03": _host("xen03", "Domain-0", _auto(("/etc/xen/auto/web02.cfg",) * 2)),
    }
    if xen02_down:
        reports["xen02"] = HostReport("xen02", error="xen02: connection refused")
    else:
        # An empty autostart directory: it answered, and claims nothing.
        reports["xen02"] = _host("xen02", "Domain-0", _auto())
    entries = [HostEntry("xen01"), HostEntry("xen02"), HostEntry("xen03")]
    return assemble("t", "2026-12-01T23:00:00Z", entries, reports, "xen01", b, "/srv/xen")


def test_running_where_listed_down_when_autostarted_else_not_ours():
    snap = _snap({"guests": ["calc"]})
    by = {g.name: g for g in snap.guests}
    assert snap.backend == "xl" and snap.quorate is None
    assert (by["db01"].state, by["db01"].owner) == ("running", "xen01")
    # Linked from xen01's auto directory: ours, and xen01 is where it ran.
    assert (by["web01"].state, by["web01"].last_owner) == ("down", "xen01")
    assert (by["web02"].state, by["web02"].last_owner) == ("down", "xen03")
    assert by["calc"].state == "down"  # backend_options.guests
    assert by["scratch"].state == "not-ours" and "not ours to start" in by["scratch"].reason
    layout = plan(snap, Policy())
    assert sorted(a.guest for a in layout.assignments) == ["calc", "web01", "web02"]
    skipped = {s.guest: s.reason for s in layout.skipped}
    assert "not ours to start" in skipped["scratch"]
    assert "scratch" not in {u.guest for u in layout.unplaced}


def test_an_unreachable_host_makes_every_down_guest_liveness_unknown_until_declared_dead():
    snap = _snap(xen02_down=True)
    layout = plan(snap, Policy())
    assert not layout.assignments
    still = {u.guest: u for u in layout.unplaced}
    # calc and scratch are claimed by no host that answered: xen02's own link may claim them.
    assert sorted(still) == ["calc", "scratch", "web01", "web02"]
    assert {u.kind for u in still.values()} == {"liveness-unknown"}
    assert "liveness unknown" in still["web01"].reason and "--dead xen02" in still["web01"].reason
    assert "xen02 did not" in still["scratch"].reason and "--dead xen02" in still["scratch"].reason
    assert "scratch" not in {s.guest for s in layout.skipped}
    dead = plan(snap, Policy(), dead=["xen02"])
    assert sorted(a.guest for a in dead.assignments) == ["web01", "web02"]
    assert all(a.host != "xen02" for a in dead.assignments)
    # Declared dead and never seen answering (issue 19 case 6): scratch may be xen02's, so it
    # is still down with the way out, never "not ours" (this assertion used to say skipped).
    still = {u.guest: u.reason for u in dead.unplaced}
    assert sorted(still) == ["calc", "scratch"]
    assert "xen02 (declared dead) answered no gather" in still["scratch"]
    assert "--expect SNAPSHOT.json" in still["scratch"]
    assert "scratch" not in {s.guest for s in dead.skipped}


SCRATCH = {"scratch": "/srv/xen/scratch.cfg"}


def test_the_note_names_only_the_hosts_that_did_not_answer():
    b = backend("xl")
    outputs = {"xen01": _auto(), "xen03": {"autostart": Output("ls: cannot open", 2)}}
    gathered = Gathered(SCRATCH, {}, outputs, hosts=("xen01", "xen02", "xen03"))
    svc = b.complete(ClusterState(None), gathered).services["scratch"]
    assert svc.state == "not-ours"
    assert "xen02, xen03 did not answer" in svc.note and "xen01" not in svc.note
    everyone = b.complete(
        ClusterState(None), Gathered(SCRATCH, {}, {"xen01": _auto()}, {}, ("xen01",))
    )
    assert everyone.services["scratch"].note.endswith("not ours to start")
    # No autostart directory: nothing a silent host holds could claim it.
    none = backend("xl", {"auto_dir": None}).complete(
        ClusterState(None), Gathered(SCRATCH, hosts=("xen01", "xen02"))
    )
    assert none.services["scratch"].note.endswith("not ours to start")


def test_no_auto_directory_and_no_patterns_means_nothing_is_ours():
    snap = _snap({"auto_dir": None})
    assert all(g.state in ("running", "not-ours") for g in snap.guests)
    assert not plan(snap, Policy()).assignments
    assert not [p for p in backend("xl", {"auto_dir": None}).host_probes() if p.name == "autostart"]


def test_start_is_xl_create_of_the_config_on_the_target_behind_a_check_of_its_list():
    b = backend("xl")
    cmd = b.start_command("web01", "xen02", "down", config="/srv/xen/web01.cfg")
    assert cmd.index('"$t" list web01') < cmd.index('"$t" create /srv/xen/web01.cfg')
    assert b.start_host("xen01", "xen02") == "xen02"
    with pytest.raises(Exception, match="config path"):
        b.start_command("web01", "xen02", "down", config="/srv/xen/web01.cfg; reboot")
    with pytest.raises(Exception, match="config path"):
        b.start_command("web01", "xen02", "down", config=None)


def test_lock_lives_on_a_configured_host_never_on_whoever_read():
    assert backend("xl").lock_host("xen03", "xen01") == "xen01"
    assert backend("xl", {"lock_host": "xen02"}).lock_host("xen03", "xen01") == "xen02"
    assert backend("rgmanager").lock_host("xen03", "xen01") == "xen03"


def test_options_are_checked():
    with pytest.raises(ConfigError, match="auto_dir"):
        check_options("xl", {"auto_dir": "relative/dir"}, "environments.t")
    with pytest.raises(ConfigError, match="guests"):
        check_options("xl", {"guests": [1]}, "environments.t")
    with pytest.raises(ConfigError, match="lock_host"):
        check_options("xl", {"lock_host": "a b"}, "environments.t")
    with pytest.raises(ConfigError, match="backend rgmanager takes none"):
        check_options("rgmanager", {"auto_dir": "/x"}, "environments.t")
    assert check_options("xl", {}, "e")["auto_dir"] == "/etc/xen/auto"


def test_config_file_names_the_backend_and_its_options(tmp_path):
    from xenfab.config import load_config

    path = tmp_path / "fabfile_config.yaml"
    path.write_text(
        "environments:\n  x:\n    hosts: [xen01, xen02]\n    guest_config_dir: /srv/xen\n"
        "    backend: xl\n    backend_options: {auto_dir: /etc/xen/auto.d, guests: [web*]}\n"
    )
    env = load_config(str(path)).environment("x")
    assert env.backend == "xl" and env.backend_options["auto_dir"] == "/etc/xen/auto.d"
    path.write_text(
        "environments:\n  x:\n    hosts: [xen01]\n    guest_config_dir: /srv/xen\n"
        "    backend: pacemaker\n"
    )
    with pytest.raises(ConfigError, match=r"'pacemaker' is not one of rgmanager, (.*, )?xl"):
        load_config(str(path))


def _recall(snap: Snapshot, host: str, age_s: int = 7200):
    """The memory of ``host`` as ``snap`` (a gather in which it answered) saw it."""
    from xenfab.plan.recall import HostMemory, Recall

    h = snap.host(host)
    assert h is not None and h.reachable
    running = tuple(sorted(d.name for d in h.domains if d.name != "Domain-0"))
    linked = tuple(h.autostart) if h.autostart is not None else None
    mem = HostMemory(host, f"hist/{host}.json.gz", snap.taken_at, age_s, running, linked)
    return Recall({host: mem}, auto_dir="/etc/xen/auto", where="hist")


def test_a_dead_host_is_remembered_by_the_last_gather_in_which_it_answered():
    """Issue 19 case 6: a dead host's linked and running guests are ours, and its reboot warned."""
    import dataclasses

    b = backend("xl")
    then_reports = {
        "xen01": _host("xen01", "Domain-0", _auto()),
        # xen02 answered then: it ran db01 and linked scratch from its autostart directory.
        "xen02": _host(
            "xen02", "db01", _auto(("/etc/xen/auto/scratch.cfg", "/srv/xen/scratch.cfg"))
        ),
    }
    then_reports["xen01"].files = dict(FILES)
    entries = [HostEntry("xen01"), HostEntry("xen02")]
    then = assemble("t", "2026-12-01T21:00:00Z", entries, then_reports, "xen01", b, "/srv/xen")
    assert then.host("xen02").autostart == ["scratch"]
    assert then.host("xen01").autostart == []
    now_reports = {"xen01": then_reports["xen01"], "xen02": HostReport("xen02", error="refused")}
    now = assemble("t", "2026-12-01T23:00:00Z", entries, now_reports, "xen01", b, "/srv/xen")
    assert now.host("xen02").autostart is None
    assert {g.name: g.state for g in now.guests}["scratch"] == "not-ours"
    policy = dataclasses.replace(Policy(), recall=_recall(then, "xen02"))
    layout = plan(now, policy, dead=["xen02"])
    assert sorted(a.guest for a in layout.assignments) == ["db01", "scratch"]
    assert all(a.host == "xen01" for a in layout.assignments)
    skipped = {s.guest: s.reason for s in layout.skipped}
    # Neither ran nor linked by xen02 then: not ours, and the reason says which gather tells.
    assert (
        "xen02 neither ran nor linked it in the gather of 2026-12-01T21:00:00Z" in skipped["calc"]
    )
    assert "2 h 0 min ago" in skipped["calc"]
    text = "\n".join(layout.warnings)
    assert "xen02 (declared dead): as the gather of 2026-12-01T21:00:00Z" in text
    assert "it ran db01" in text and "linked scratch" in text
    assert "when xen02 boots, its xendomains starts scratch again" in text
    assert "remove the links in /etc/xen/auto on xen02" in text and "xendomains disabled" in text
    # Without the memory (no history): the same guests stay down, with the way out.
    bare = plan(now, Policy(), dead=["xen02"])
    assert not {"db01", "scratch"} & {a.guest for a in bare.assignments}
    assert "--expect SNAPSHOT.json" in {u.guest: u.reason for u in bare.unplaced}["scratch"]
    # --expect decides instead when given: what ran then, nothing unknown left hanging.
    from xenfab.plan.expect import Expectation, Ran

    exp = Expectation("ran.json", then.taken_at, "t", "xl", {"db01": Ran("xen02", 2048, 1)})
    expected = plan(now, dataclasses.replace(Policy(), expect=exp), dead=["xen02"])
    assert [a.guest for a in expected.assignments] == ["db01"]
    assert not expected.unplaced


def test_a_guest_a_live_host_lists_is_left_alone_even_if_the_dead_host_linked_it():
    import dataclasses

    b = backend("xl")
    entries = [HostEntry("xen01"), HostEntry("xen02")]
    then_reports = {
        "xen01": _host("xen01", "Domain-0", _auto()),
        "xen02": _host("xen02", "Domain-0", _auto(("/etc/xen/auto/x", "/srv/xen/scratch.cfg"))),
    }
    then_reports["xen01"].files = dict(FILES)
    then = assemble("t", "2026-12-01T21:00:00Z", entries, then_reports, "xen01", b, "/srv/xen")
    # Now xen01 runs scratch (someone moved it by hand): never a second copy.
    now_reports = {
        "xen01": _host("xen01", "scratch", _auto()),
        "xen02": HostReport("xen02", error="refused"),
    }
    now_reports["xen01"].files = dict(FILES)
    now = assemble("t", "2026-12-01T23:00:00Z", entries, now_reports, "xen01", b, "/srv/xen")
    policy = dataclasses.replace(Policy(), recall=_recall(then, "xen02"))
    layout = plan(now, policy, dead=["xen02"])
    assert "scratch" not in {a.guest for a in layout.assignments}
    # Running on xen01, its own link's xendomains would still start it twice at xen02's boot.
    assert any("xendomains starts scratch again" in w for w in layout.warnings)
