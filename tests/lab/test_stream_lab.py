"""The long-lived readers over the lab's real sshd: the same answers as a command per read, a
domain that appears between two reads seen by the second, nothing left running on a host after
the run, and a broken reader replaced by per-read commands without a wrong answer.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest
from clitools import ROOT

from xenfab.cluster import backend as get_backend
from xenfab.config import load_config
from xenfab.gather import batch, gather
from xenfab.parse import parse_xl_list
from xenfab.plan import plan
from xenfab.remote import SessionPool, fabric_config
from xenfab.remote.stream import StreamReader
from xenfab.start import StartOptions, start_guests, watch
from xenfab.start.watch import DomainWatch, probes_body

pytestmark = pytest.mark.lab


def lab_env(backend_env: str = "lab"):
    """The repository's config and the lab environment (the lab fixture set XENFAB_LAB_DIR)."""
    cfg = load_config(str(ROOT / "fabfile_config.yaml"))
    return cfg, cfg.environment(backend_env)


def processes_with(text: str, lab) -> list[int]:
    """PIDs of ``lab``'s hosts whose command line holds ``text`` (its hosts are our processes).

    A host's commands carry the lab's directory in their environment (its labsh exports it), so
    other labs on the machine are never counted.
    """
    found = []
    mark = f"XENFAB_LAB_DIR={lab.dir}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if text.encode() not in cmd:
                continue
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark in environ:
            found.append(int(pid))
    return found


def gone(text: str, lab, within: float = 10.0) -> bool:
    """True once no process of ``lab`` holds ``text`` in its command line (waits ``within`` s)."""
    deadline = time.monotonic() + within
    while processes_with(text, lab):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def names(text: str, host: str) -> set[str]:
    """The domain names of an `xl list` text."""
    return {d.name for d in parse_xl_list(text, source=host)}


def test_a_stream_answers_as_a_command_per_read_and_sees_a_new_domain_at_once(fresh_lab):
    _cfg, env = lab_env()
    pool = SessionPool(env, fabric_config(env))
    reader = StreamReader(pool, "xen03", "xl list", 10)
    try:
        first = reader.ask(batch.new_nonce())
        per_read = pool.run("xen03", "xl list", timeout=10)
        assert first is not None and first.ok, first
        assert first.output.exit_code == 0
        assert names(first.output.text, "xen03") == names(per_read.output.text, "xen03")
        # A domain started by hand between two reads is in the second: nothing is cached.
        down = next(g.name for g in gather(env).guests if g.state == "disabled")
        fresh_lab.inject("hand-start", down, "xen03")
        second = reader.ask(batch.new_nonce())
        assert second is not None and down in names(second.output.text, "xen03")
        assert reader.opens == 1 and reader.answered == 2
    finally:
        reader.close()
        pool.close()


def test_the_masters_state_through_a_stream_parses_as_the_gathers(fresh_lab):
    _cfg, env = lab_env()
    be = get_backend(env.backend)
    pool = SessionPool(env, fabric_config(env))
    reader = StreamReader(pool, "xen01", probes_body(be.state_probes()), 30)
    try:
        nonce = batch.new_nonce()
        res = reader.ask(nonce)
        assert res is not None and res.ok, res
        state = be.parse_state(batch.split_output(res.output.text, nonce).outputs, "xen01")
        assert state.quorate is True and state.error is None
        # The same services in the same states as the gather's own read of the master.
        gathered = {g.name: g.state for g in gather(env).guests if g.state is not None}
        assert len(gathered) >= 20
        assert {g: s.state for g, s in state.services.items()} == gathered
    finally:
        reader.close()
        pool.close()


def test_closing_ends_the_loop_on_the_host(fresh_lab):
    _cfg, env = lab_env()
    tag = secrets.token_hex(8)
    pool = SessionPool(env, fabric_config(env))
    reader = StreamReader(pool, "xen02", f"xl list # {tag}", 10)
    try:
        assert reader.ask(batch.new_nonce()) is not None
        assert processes_with(tag, fresh_lab), "the loop should run on the host while open"
        reader.close()
        assert gone(tag, fresh_lab), processes_with(tag, fresh_lab)
    finally:
        reader.close()
        pool.close()


def test_a_killed_reader_is_replaced_by_per_read_commands(fresh_lab):
    """The loop dies under the watch: the next round still reads every host, per command."""
    _cfg, env = lab_env()
    snap = gather(env)
    pool = SessionPool(env, fabric_config(env))
    w = DomainWatch(pool, snap.hosts, 10, lambda _m: None)
    try:
        rnd = w.begin()
        assert w.wait(rnd, 20) and not rnd.unproven(list(w.hosts))
        loops = processes_with("while IFS= read -r n", fresh_lab)
        assert loops, "every host's reader should be running"
        for pid in loops:
            os.kill(pid, 9)
        down = next(g.name for g in snap.guests if g.state == "disabled")
        fresh_lab.inject("hand-start", down, "xen04")
        again = w.begin()
        assert w.wait(again, 30)
        assert not again.unproven(list(w.hosts)), again.unproven(list(w.hosts))
        assert down in again.lists()["xen04"]
        assert w.streams is not None
        assert all(not s.open for s in w.streams.values())
    finally:
        w.stop()
        pool.close()


@pytest.mark.parametrize("lab_kind", ["fresh_lab", "xl_lab", "xe_lab"])
def test_a_start_run_reads_through_one_stream_per_host_and_leaves_nothing(
    lab_kind, request, tmp_path, monkeypatch
):
    """rgmanager, xl and xe (master_only): the run's reads go through streams, one per reader."""
    lab = request.getfixturevalue(lab_kind)
    env_name = {"fresh_lab": "lab", "xl_lab": "lab-xl", "xe_lab": "lab-xe"}[lab_kind]
    cfg, env = lab_env(env_name)
    cfg.lock_path = str(lab.dir / "xenfab.lock")
    cfg.audit_log = str(tmp_path / "audit.jsonl")
    snap = gather(env)
    layout = plan(snap, env.policy)
    seen: list[DomainWatch] = []
    real_stop = watch.DomainWatch.stop

    def stop(self):
        seen.append(self)
        real_stop(self)

    monkeypatch.setattr(watch.DomainWatch, "stop", stop)
    report = start_guests(cfg, env, snap, layout, env.policy, StartOptions())
    assert report.counts()["started"] >= 3, report.table()
    (w,) = seen
    assert w.streams, "the run should have read through streams"
    answered = sum(s.answered for s in w.streams.values())
    assert answered >= len(w.streams) * 2, [(k[:2], s.answered) for k, s in w.streams.items()]
    # Each reader opened its channel once: no reconnect per read.
    assert all(s.opens == 1 for s in w.streams.values()), [
        (k[:2], s.opens) for k, s in w.streams.items()
    ]
    if env_name == "lab-xe":
        # xe answers for the pool on its master: one reader there per purpose, none elsewhere.
        assert {k[0] for k in w.streams} == {snap.master}
    assert gone("while IFS= read -r n", lab)
