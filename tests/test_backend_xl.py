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
    # Declared dead, its autostart directory still unread: not ours as far as anyone can tell.
    skipped = {s.guest: s.reason for s in dead.skipped}
    assert "xen02 did not answer (its /etc/xen/auto unread)" in skipped["scratch"]
    assert "not ours as far as anyone can tell" in skipped["scratch"]
    assert not dead.unplaced


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
