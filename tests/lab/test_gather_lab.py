"""A gather against the lab costs one SSH connection and one command per host, configs read once."""

from __future__ import annotations

from collections import Counter

import paramiko
import pytest
from clitools import ROOT, live_processes

from xenfab.config import load_config
from xenfab.gather import gather

pytestmark = pytest.mark.lab


def test_one_connection_and_one_command_per_host_and_configs_read_once(fresh_lab, monkeypatch):
    env = load_config(str(ROOT / "fabfile_config.yaml")).environment("lab")
    transports: Counter = Counter()
    commands: list[tuple[str, str]] = []
    real_start, real_exec = paramiko.Transport.start_client, paramiko.Channel.exec_command

    def start_client(self, *args, **kwargs):
        transports[self.getpeername()[0]] += 1
        return real_start(self, *args, **kwargs)

    def exec_command(self, command):
        commands.append((self.get_transport().getpeername()[0], command))
        return real_exec(self, command)

    monkeypatch.setattr(paramiko.Transport, "start_client", start_client)
    monkeypatch.setattr(paramiko.Channel, "exec_command", exec_command)
    snap = gather(env)

    hosts = fresh_lab.status()["hosts"]
    addresses = {h["address"] for h in hosts}
    assert not snap.errors and len(snap.hosts) == len(hosts)
    assert transports == Counter({a: 1 for a in addresses})  # one connection each, no second pass
    assert Counter(a for a, _ in commands) == Counter({a: 1 for a in addresses})
    # Only the master's script reads the shared config directory, and only once.
    config_dir = env.guest_config_dir.rstrip("/")
    readers = [a for a, command in commands if config_dir in command]
    master = next(h["address"] for h in hosts if h["name"] == snap.master)
    assert readers == [master]
    assert sum(c.count(f"for f in {config_dir}/*") for _, c in commands) == 1
    assert len({g.config_file for g in snap.guests if g.config_file}) >= 20


def test_a_huge_file_and_a_forged_file_name_cost_nothing_and_forge_nothing(fresh_lab):
    """Issue 14 cases 5 and 6 over SSH: a 300 MB sparse config and a name with newlines."""
    import time

    from xenfab.textsafe import printable

    env = load_config(str(ROOT / "fabfile_config.yaml")).environment("lab")
    cfg_dir = fresh_lab.dir / "xenconfig"
    with open(cfg_dir / "huge.cfg", "wb") as fh:
        fh.truncate(300 * 1024 * 1024)
    forged = cfg_dir / 'forge\nname = "web01"\nmemory = 1\n#'
    forged.write_text("")
    try:
        started = time.monotonic()
        snap = gather(env)
        took = time.monotonic() - started
    finally:
        (cfg_dir / "huge.cfg").unlink()
        forged.unlink()
    assert took < 10
    web01 = snap.guest("web01")
    assert web01 is not None and web01.memory_mib > 1
    warnings = "\n".join(snap.warnings)
    assert "huge.cfg: larger than" in warnings
    assert "control characters" in warnings
    # The forged name is reported as a name (raw in the data), and shown escaped, on one line.
    forged_lines = [printable(w) for w in snap.warnings if 'forge\nname = "web01"' in w]
    assert forged_lines and all("forge\\nname" in w and "\n" not in w for w in forged_lines)


def test_a_remote_command_that_times_out_leaves_nothing_running(fresh_lab):
    """Issue 14 case 6: the host kills a timed-out command with its process group."""
    import os
    import time

    from xenfab import remote as ssh
    from xenfab.remote import SessionPool

    env = load_config(str(ROOT / "fabfile_config.yaml")).environment("lab")
    marker = f"xenfab-timeout-{os.getpid()}"
    host = env.master or "xen01"
    started = time.monotonic()
    res = ssh.run(host, f"sh -c 'sleep 60; : {marker}-a'", env, ssh.fabric_config(env), timeout=1)
    assert res.error is not None and "still running" in res.error
    pool = SessionPool(env, ssh.fabric_config(env))
    try:
        res = pool.run(host, f"sh -c 'sleep 60; : {marker}-b'", timeout=1)
    finally:
        pool.close()
    assert res.error is not None and time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while live_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not live_processes(marker)
