"""A gather against the lab costs one SSH connection and one command per host, configs read once."""

from __future__ import annotations

from collections import Counter

import paramiko
import pytest
from clitools import ROOT

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
