"""The indexed ssh_config lookup: paramiko's answers for every host, without walking every stanza."""

from __future__ import annotations

from io import StringIO

import paramiko
import pytest
from fabric import Config, Connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenfab import remote as ssh
from xenfab.config import Environment, HostEntry, SSHSettings

# Everything paramiko's lookup does with a Host or Match line, short of `Match exec`.
TRICKY = """
Host *.example.com !bad.example.com
    User ops
Host xen01 xen01-alias
    HostName 127.0.0.11
    Port 2201
    IdentityFile ~/.ssh/id_%h
    IdentityFile /keys/%r@%h
    UserKnownHostsFile /tmp/kh_%h ~/.ssh/kh2
Host xen02
    HostName %h.lab
    ProxyJump xen01
Host xen0?
    User wild
    IdentityFile /keys/wild
Host xen0[3-5] !xen04
    Port 2203
Match host 127.0.0.11
    User matched
    IdentityFile /keys/matched
Match originalhost xen02 !final
    Port 2202
Match final host *.lab
    ForwardAgent yes
Host xen01
    User late
    IdentityFile /keys/late
Host xen02 !xen02
    User never
Host "quoted host" a,b
    User odd
Host !xen06
    ConnectTimeout 3
Match all
    ConnectTimeout 7
Host xen06 xen06
    ProxyCommand none
Host *
    User default
    IdentityFile /keys/default
    IdentityFile /keys/wild
"""

HOSTS = [
    "xen01",
    "xen01-alias",
    "xen02",
    "xen03",
    "xen04",
    "xen05",
    "xen06",
    "xen10",
    "a,b",
    "a",
    "quoted host",
    "foo.example.com",
    "bad.example.com",
    "127.0.0.11",
    "unknown",
    "XEN01",
]


def _both(text: str) -> tuple[paramiko.SSHConfig, ssh.IndexedSSHConfig]:
    return paramiko.SSHConfig.from_text(text), ssh.IndexedSSHConfig.from_text(text)


@pytest.mark.parametrize("host", HOSTS)
def test_tricky_config_same_as_paramiko(host):
    plain, indexed = _both(TRICKY)
    assert indexed.lookup(host) == plain.lookup(host)


def test_parse_after_lookup_is_seen():
    # Fabric parses each ssh_config file into the object it was given: a later file counts.
    indexed = ssh.IndexedSSHConfig.from_text("Host xen01\n    User first\n")
    assert indexed.lookup("xen02").get("user") is None
    indexed.parse(StringIO("Host xen02\n    User second\nHost xen01\n    Port 2\n"))
    assert indexed.lookup("xen02")["user"] == "second"
    assert indexed.lookup("xen01")["port"] == "2" and indexed.lookup("xen01")["user"] == "first"


NAMES = ["h1", "h2", "h3", "x"]
PATTERNS = ["h1", "h2", "h3", "h*", "*", "h[12]", "?2", "!h1", "!h*", "x", "!x"]
SETTINGS = ["User u{}", "Port {}", "IdentityFile /k{}", "HostName h{}", "ProxyJump h{}"]


@st.composite
def configs(draw):
    lines = []
    for n in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 4)) == 0:
            kind = draw(st.sampled_from(["host", "originalhost", "user"]))
            neg = draw(st.sampled_from(["", "!"]))
            lines.append(f"Match {neg}{kind} {draw(st.sampled_from(NAMES + ['h*', 'u1']))}")
        else:
            pats = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3))
            lines.append("Host " + " ".join(pats))
        for setting in draw(st.lists(st.sampled_from(SETTINGS), max_size=3)):
            lines.append("    " + setting.format(n % 3 + 1))
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_random_configs_same_as_paramiko(text):
    plain, indexed = _both(text)
    for host in NAMES + ["h4"]:
        assert indexed.lookup(host) == plain.lookup(host), (text, host)


def _lab_like(n: int) -> str:
    stanzas = [
        f"Host xen{i:03d}\n    HostName 127.0.0.{i}\n    Port 2222\n    User root\n"
        f"    IdentityFile /lab/id_ed25519\n    UserKnownHostsFile /lab/known_hosts\n"
        for i in range(1, n + 1)
    ]
    return "\n".join(stanzas) + "Host *\n    ConnectTimeout 10\n"


def test_stanza_walks_do_not_grow_with_the_host_count(monkeypatch):
    # One stanza per host, as the lab writes it: paramiko walks all of them, twice, per host.
    n = 100
    plain, indexed = _both(_lab_like(n))
    calls = 0
    real = paramiko.SSHConfig._pattern_matches

    def counting(self, patterns, target):
        nonlocal calls
        calls += 1
        return real(self, patterns, target)

    monkeypatch.setattr(paramiko.SSHConfig, "_pattern_matches", counting)
    names = [f"xen{i:03d}" for i in range(1, n + 1)]
    expected = [plain.lookup(h) for h in names]
    assert calls >= 2 * n * n  # the counter sees paramiko's walks
    calls = 0
    assert [indexed.lookup(h) for h in names] == expected
    # Per host and pass: its own stanza, the implicit global one and `Host *`.
    assert calls <= 2 * 3 * n


def _env(path: str) -> Environment:
    return Environment(
        name="t",
        hosts=[HostEntry("xen01")],
        master=None,
        guest_config_dir="/x",
        ssh=SSHSettings(config=path, host_key_check="off"),
    )


def test_connections_same_as_fabrics_own(tmp_path):
    path = tmp_path / "ssh_config"
    path.write_text(TRICKY)
    env = _env(str(path))
    cfg = ssh.fabric_config(env)
    assert isinstance(cfg.base_ssh_config, ssh.IndexedSSHConfig)
    rules = len(cfg.base_ssh_config._config)
    for host in HOSTS:
        ours = ssh.connect(host, env, cfg)
        theirs = Connection(host, config=Config(runtime_ssh_path=str(path)))
        assert ours.ssh_config == theirs.ssh_config, host
        assert (ours.host, ours.user, ours.port) == (theirs.host, theirs.user, theirs.port)
        assert ours.connect_kwargs["key_filename"] == theirs.connect_kwargs["key_filename"]
        if isinstance(theirs.gateway, Connection):
            gw = ours.gateway
            assert (gw.host, gw.user, gw.port) == (
                theirs.gateway.host,
                theirs.gateway.user,
                theirs.gateway.port,
            )
        else:
            assert ours.gateway == theirs.gateway
    # A ProxyJump host's gateway clones the config: the shared rules are not parsed again.
    assert len(cfg.base_ssh_config._config) == rules
