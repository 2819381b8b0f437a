"""Configuration: the shipped file is valid, and every mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenfab.config import config_from_dict, find_config, load_config, resolve_hosts
from xenfab.errors import ConfigError
from xenfab.plan.policy import with_run_options

ROOT = Path(__file__).resolve().parent.parent


def _base(**env_extra):
    env = {"hosts": ["xen01", "xen02"], "master": "xen01", "guest_config_dir": "/xenconfig"}
    env.update(env_extra)
    return {"default_env": "prod", "environments": {"prod": env}}


def test_shipped_config_is_valid(monkeypatch, tmp_path):
    monkeypatch.setenv("XENFAB_LAB_DIR", str(tmp_path))
    cfg = load_config(str(ROOT / "fabfile_config.yaml"))
    env = cfg.environment()
    assert env.name == "lab"
    assert env.guest_config_dir == f"{tmp_path}/xenconfig"
    assert env.ssh.config == f"{tmp_path}/ssh_config"
    # Labs share this machine: each lab's lock lives in its own directory.
    assert env.lock_path == f"{tmp_path}/xenfab.lock"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (
            lambda d: d["environments"]["prod"].update(hostz=[]),
            "environments.prod.hostz: unknown key",
        ),
        (lambda d: d["environments"]["prod"].update(hosts=[]), "environments.prod.hosts"),
        (lambda d: d["environments"]["prod"].update(hosts=["x;rm -rf /"]), "hosts[0].name"),
        (
            lambda d: d["environments"]["prod"].update(ssh={"port": "22"}),
            "ssh.port: input should be a valid integer, got '22'",
        ),
        (
            lambda d: d["environments"]["prod"].update(ssh={"port": 70000}),
            "ssh.port: input should be less than or equal to 65535",
        ),
        (
            lambda d: d["environments"]["prod"].update(ssh={"host_key_check": "no"}),
            "host_key_check",
        ),
        (
            lambda d: d["environments"]["prod"].update(backend="pacemaker"),
            "environments.prod.backend",
        ),
        (lambda d: d.update(default_env="qa"), "default_env: 'qa'"),
        (lambda d: d["environments"]["prod"].update(lock_path="rel/x"), "lock_path: 'rel/x' must"),
        (lambda d: d.update(policy={"strategy": "fastest"}), "policy.strategy"),
        (
            lambda d: d["environments"]["prod"].update(policy={"nope": 1}),
            "environments.prod.policy",
        ),
    ],
)
def test_mistakes_name_the_key(mutate, expected):
    data = _base()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, "f.yaml")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("environments:\n  prod: [\n")
    with pytest.raises(ConfigError, match=r"c.yaml:\d+"):
        load_config(str(path))


def test_find_config_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("XENFAB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="looked in"):
        find_config(None, (str(tmp_path / "team"),))
    monkeypatch.setenv("XENFAB_CONFIG", "/x/y.yaml")
    assert find_config(None) == "/x/y.yaml"
    assert find_config("/a.yaml") == "/a.yaml"


def test_host_patterns_expand_against_ssh_config():
    cfg = config_from_dict(_base(hosts=["xen0*", {"name": "db1", "location": "dc2"}]))
    hosts = resolve_hosts(cfg.environment(), ["xen02", "xen01", "web1", "db1"])
    assert [h.name for h in hosts] == ["xen01", "xen02", "db1"]
    assert hosts[2].location == "dc2"


def test_environment_policy_overrides_file_policy():
    data = _base(policy={"strategy": "most-free"})
    data["policy"] = {"strategy": "round-robin"}
    cfg = config_from_dict(data)
    env = cfg.environment()
    assert env.policy.strategy == "most-free"
    assert cfg.policy.strategy == "round-robin"
    assert with_run_options(env.policy, "pack").strategy == "pack"


def test_master_must_be_a_host():
    with pytest.raises(ConfigError, match="master: 'xen09' is not one of the hosts"):
        config_from_dict(_base(master="xen09"))
    assert config_from_dict(_base(hosts=["xen*"], master="xen09")).environment().master == "xen09"


def test_location_narrows_hosts_and_drops_a_foreign_master():
    hosts = [{"name": "xen01", "location": "dc1"}, {"name": "xen02", "location": "dc2"}]
    env = config_from_dict(_base(hosts=hosts)).environment()
    assert [h.name for h in env.at_location("dc2").hosts] == ["xen02"]
    assert env.at_location("dc2").master is None and env.at_location("dc1").master == "xen01"
    with pytest.raises(ConfigError, match="locations: dc1, dc2"):
        env.at_location("dc3")


def test_a_host_listed_twice_is_an_error():
    data = _base(hosts=["xen01", {"name": "xen02", "location": "dc1"}, "xen02"])
    with pytest.raises(
        ConfigError, match=r"hosts\[2\]: 'xen02' is listed twice \(also .*hosts\[1\]\)"
    ):
        config_from_dict(data, path="cfg.yaml")


def test_the_lab_writes_its_audit_log_in_its_own_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XENFAB_LAB_DIR", str(tmp_path))
    cfg = load_config(str(ROOT / "fabfile_config.yaml"))
    assert cfg.environment("lab").audit_log == f"{tmp_path}/audit.jsonl"
    assert not cfg.audit_log.startswith(str(tmp_path))
    assert config_from_dict(_base(), path="x").environment().audit_log is None


def test_the_shipped_config_names_doc_sections_that_exist():
    import re

    named = re.findall(
        r'(docs/[a-z-]+\.md),? "([^"]+)"', (ROOT / "fabfile_config.yaml").read_text()
    )
    assert named
    for path, section in named:
        text = (ROOT / path).read_text()
        sections = {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}
        assert section in sections, (path, section, sections)
