"""The history of gathers: kept per environment, bounded, atomic; a dead host's last answer."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os

import pytest

from xenfab import history
from xenfab.snapshot import Domain, Host, Snapshot

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def _snap(at: dt.datetime, up=("xen01", "xen02"), env="prod", ran="web01") -> Snapshot:
    hosts = []
    for name in ("xen01", "xen02"):
        h = Host(name=name, reachable=name in up)
        if h.reachable:
            h.domains = [Domain("Domain-0", 1024, 1), Domain(f"{ran}-{name}", 512, 1)]
            h.autostart = [f"{ran}-{name}"]
        hosts.append(h)
    return Snapshot(env, at.strftime("%Y-%m-%dT%H:%M:%SZ"), "xen01", None, hosts, backend="xl")


def test_history_sits_beside_the_audit_log_per_environment(tmp_path, monkeypatch):
    from xenfab.config import load_config

    assert history.history_dir("/var/x/audit.jsonl", "prod") == "/var/x/history/prod"
    with pytest.raises(history.HistoryError):
        history.history_dir("/var/x/audit.jsonl", "../etc")
    # The lab's environments keep theirs in the lab's directory: rehearsals never touch the real.
    monkeypatch.setenv("XENFAB_LAB_DIR", str(tmp_path))
    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "fabfile_config.yaml"))
    for name in ("lab", "lab-xl"):
        env = cfg.environment(name)
        where = history.history_dir(env.audit_log or cfg.audit_log, name)
        assert where == f"{tmp_path}/history/{name}"
    assert not history.history_dir(cfg.audit_log, "lab").startswith(str(tmp_path))


def test_a_dead_host_is_recalled_from_its_last_answer_with_its_age(tmp_path):
    d = str(tmp_path / "h")
    history.record(_snap(T0, ran="old"), d, now=T0)
    history.record(_snap(T0 + dt.timedelta(hours=1)), d, now=T0 + dt.timedelta(hours=1))
    # Since then xen02 stopped answering: later gathers do not replace what it said.
    for i in range(3):
        at = T0 + dt.timedelta(hours=2 + i)
        history.record(_snap(at, up=("xen01",), ran="new"), d, now=at)
    now = T0 + dt.timedelta(hours=6)
    got = history.recall(d, ["xen02", "xen01"], "prod", "/etc/xen/auto", now=now)
    mem = got.hosts["xen02"]
    assert mem.taken_at == "2026-12-01T13:00:00Z" and mem.age_s == 5 * 3600
    assert mem.running == ("web01-xen02",) and mem.linked == ("web01-xen02",)
    assert "5 h 0 min ago" in mem.label and mem.source.endswith(".json.gz")
    assert got.hosts["xen01"].running == ("new-xen01",)
    # Another environment's history says nothing of this one.
    assert not history.recall(d, ["xen02"], "other", now=now).hosts
    assert not history.recall(str(tmp_path / "none"), ["xen02"], "prod", now=now).hosts


def test_bounded_by_count_and_age_but_each_hosts_last_answer_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "KEEP", 3)
    d = str(tmp_path / "h")
    history.record(_snap(T0), d, now=T0)
    for i in range(1, 8):
        at = T0 + dt.timedelta(minutes=i)
        history.record(_snap(at, up=("xen01",)), d, now=at)
    files = sorted(n for n in os.listdir(d) if n.endswith(".json.gz"))
    assert len(files) == 4  # the 3 newest, and xen02's one answer
    assert files[0].startswith("20261201T120000Z")
    index = json.loads((tmp_path / "h" / "index.json").read_text())
    assert [e["file"] for e in index["gathers"]] == files
    # Past MAX_AGE_S even a host's last answer goes.
    late = T0 + dt.timedelta(seconds=history.MAX_AGE_S + 3600)
    history.record(_snap(late, up=("xen01",)), d, now=late)
    assert not history.recall(d, ["xen02"], "prod", now=late).hosts
    assert len([n for n in os.listdir(d) if n.endswith(".json.gz")]) == 1


def test_written_atomically_and_read_back_when_the_index_is_lost(tmp_path):
    d = str(tmp_path / "h")
    path = history.record(_snap(T0), d, now=T0)
    with gzip.open(path) as fh:
        assert Snapshot.from_dict(json.loads(fh.read())).taken_at == "2026-12-01T12:00:00Z"
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    (tmp_path / "h" / "index.json").write_text("{not json")
    # A damaged gather is passed over; the index is rebuilt from the gathers themselves.
    broken = tmp_path / "h" / "20261201T130000Z-1-abcdef.json.gz"
    broken.write_bytes(b"not gzip")
    got = history.recall(d, ["xen02"], "prod", now=T0 + dt.timedelta(minutes=1))
    assert got.hosts["xen02"].age_s == 60
    history.record(_snap(T0 + dt.timedelta(minutes=2)), d, now=T0 + dt.timedelta(minutes=2))
    assert len(json.loads((tmp_path / "h" / "index.json").read_text())["gathers"]) == 2


def test_a_history_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(history.HistoryError, match=r"^history .*: not kept: "):
        history.record(_snap(T0), str(blocker / "h"), now=T0)
