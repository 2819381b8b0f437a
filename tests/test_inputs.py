"""Issue 19: every input checked whole, every prompt's EOF, every stop signal, the demo's target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml
from clitools import ROOT, default_signals, fab, no_traceback
from planfixtures import guest, host, snap

from xenfab.config import config_from_dict
from xenfab.errors import ConfigError
from xenfab.run import Answer, ask_terminal
from xenfab.schema import read_text
from xenfab.snapshot import Domain, Snapshot, SnapshotError
from xenfab.start.prompter import QUIT, StepPrompter
from xenfab.tasks import demo


def _lab_snapshot() -> Snapshot:
    # The shipped config's `lab` environment: three down guests, room for all.
    return snap(
        [host("xen01", 8192), host("xen02", 8192)],
        [guest("web01", 1024, "failed"), guest("db01", 1024), guest("app01", 1024)],
    )


def _saved(tmp_path, name: str, data: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _one_line(res: subprocess.CompletedProcess) -> str:
    no_traceback(res)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


# -- a snapshot is validated whole --------------------------------------------------------------


@pytest.mark.parametrize("key", ["guests", "hosts"])
def test_a_snapshot_without_guests_or_hosts_is_refused_naming_file_and_key(tmp_path, key):
    data = _lab_snapshot().to_dict()
    del data[key]
    path = _saved(tmp_path, "cut.json", data)
    with pytest.raises(SnapshotError, match=rf"^{path}: {key}: missing \(required\)$"):
        Snapshot.load(path)


def test_a_snapshot_with_wrong_types_or_unknown_hosts_is_refused(tmp_path):
    data = _lab_snapshot().to_dict()
    bad = {**data, "guests": {"web01": {}}}
    with pytest.raises(SnapshotError, match=r"guests: "):
        Snapshot.from_dict(bad, "x.json")
    data["guests"][0]["running_on"] = ["xen09"]
    with pytest.raises(SnapshotError, match=r"guests\[0\].running_on: xen09 is not one of"):
        Snapshot.from_dict(data, "x.json")


@pytest.mark.slow
@pytest.mark.parametrize("key", ["guests", "hosts"])
def test_expect_and_from_without_guests_or_hosts_exit_1_in_one_line(tmp_path, key):
    env = {"XENFAB_LAB_DIR": str(tmp_path)}
    s = _lab_snapshot()
    s.environment = "lab"
    now = _saved(tmp_path, "now.json", s.to_dict())
    cut = s.to_dict()
    del cut[key]
    then = _saved(tmp_path, "then.json", cut)
    # Before: an --expect file with no guests read as "nothing ran", exit 0, STILL DOWN: none.
    for args in (
        ("show-layout", "--from", now, "--expect", then),
        ("start-all", "--dry-run", "--from", now, "--expect", then),
        ("show-layout", "--from", then),
    ):
        res = fab(*args, env=env)
        assert res.returncode == 1, (args, res.stdout, res.stderr)
        assert _one_line(res) == f"xenfab: {then}: {key}: missing (required)"
        assert "STILL DOWN" not in res.stdout


# -- EOF at a prompt is "not confirmed" ------------------------------------------------------------


class _Tty:
    def isatty(self) -> bool:
        return True


def test_eof_at_the_confirmation_prompt_is_not_confirmed(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", _Tty())

    def eof(*_a):
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert ask_terminal(3) is Answer.DECLINED
    assert "Start 3 guest(s)? [y/N]" in capsys.readouterr().err


def test_eof_at_the_step_prompt_quits_and_says_why():
    notes: list[str] = []

    def eof(_text: str) -> str:
        raise EOFError

    prompter = StepPrompter(eof, notes.append)
    assert prompter.ask("web01", "xen02") == QUIT
    assert notes == ["end of input at the prompt: not confirmed; starting nothing more"]
    assert not prompter.in_prompt


# -- SIGTERM and SIGHUP stop a task as Ctrl-C does -------------------------------------------------

_SLOW_TASK = textwrap.dedent(
    """
    import time
    from invoke import Collection, Program, task
    from xenfab.tasks._common import cli

    @task
    @cli
    def slow(c):
        print("ready", flush=True)
        time.sleep(60)

    Program(namespace=Collection(slow), name="x").run(["x", "slow"])
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_in_any_task_ends_with_the_last_line_and_130(sig):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_TASK],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_signals,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["xenfab: interrupted"]


def test_an_ignored_hangup_stays_ignored(monkeypatch):
    from xenfab.tasks import _common

    monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_IGN)
    assert _common._trap_stop_signals() == {}


# -- a control character in a configured path -------------------------------------------------------


def _config(**env: object) -> dict:
    return {"environments": {"e": {"hosts": ["xen01"], "guest_config_dir": "/x", **env}}}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (_config(guest_config_dir="/xen\x00config"), "environments.e.guest_config_dir"),
        (_config(lock_path="/var/lock/x\nrm"), "environments.e.lock_path"),
        (_config(audit_log="/tmp/a\x1b[2J"), "environments.e.audit_log"),
        (_config(ssh={"config": "/ssh\x00cfg"}), "environments.e.ssh.config"),
        (_config(ssh={"known_hosts": "/k\x7fh"}), "environments.e.ssh.known_hosts"),
        (_config(ssh={"key_filename": "/id\t"}), "environments.e.ssh.key_filename"),
        ({**_config(), "audit_log": "/a\x00"}, "audit_log"),
        ({**_config(), "lock_path": "/l\x00"}, "lock_path"),
        (
            _config(backend="xl", backend_options={"auto_dir": "/etc/xen/a\x00"}),
            "environments.e.backend_options.auto_dir",
        ),
    ],
)
def test_a_control_character_in_any_path_is_a_config_error(data, key):
    with pytest.raises(ConfigError, match=rf"^<config>: {key}: "):
        config_from_dict(data)


def test_a_control_character_brought_in_by_a_variable_is_refused(monkeypatch):
    monkeypatch.setenv("XENFAB_TEST_DIR", "conf\nig")
    with pytest.raises(ConfigError, match=r"guest_config_dir: .*control character"):
        config_from_dict(_config(guest_config_dir="/xen/$XENFAB_TEST_DIR"))


@pytest.mark.slow
def test_a_nul_in_guest_config_dir_exits_1_before_any_host(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    # YAML's "\0" escape: the byte reaches the value as the user wrote it.
    cfg.write_text('environments:\n  e:\n    hosts: [xen01]\n    guest_config_dir: "/xen\\0cfg"\n')
    res = fab("facts", "--config", str(cfg))
    assert res.returncode == 1
    line = _one_line(res)
    assert "environments.e.guest_config_dir" in line and "control character" in line
    res = fab("facts", "--config", str(tmp_path / "a\nb.yaml"))
    assert res.returncode == 1 and "control character" in _one_line(res)


def test_read_text_refuses_a_path_with_a_control_character():
    with pytest.raises(ConfigError, match="a path with a control character"):
        read_text("/tmp/x\x00y", "configuration")


# -- the demo drives only its own lab ------------------------------------------------------------------


@pytest.mark.slow
def test_demo_refuses_an_environment_lab_that_is_not_the_lab(tmp_path):
    ssh = tmp_path / "staging_ssh_config"
    ssh.write_text("Host stg01\n  HostName 10.20.30.40\n")
    conf = tmp_path / "team.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "environments": {
                    "lab": {
                        "hosts": ["stg01"],
                        "guest_config_dir": "/xenconfig",
                        "ssh": {"config": str(ssh)},
                    }
                }
            }
        )
    )
    labdir = tmp_path / "lab"
    res = fab("demo", "--config", str(conf), env={"XENFAB_LAB_DIR": str(labdir)})
    assert res.returncode == 1
    line = _one_line(res)
    assert line.startswith(f"xenfab: demo: environment lab uses ssh_config {ssh}, not the lab's")
    # Refused before the lab was brought up: nothing started anywhere.
    assert not (labdir / "lab.json").exists()
    assert "start-all" not in res.stdout


def _lab_env(tmp_path, hosts: list[str], port: int | None = None):
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "ssh_config").write_text(
        "Host xen01\n  HostName 127.0.0.11\n  Port 2222\n"
        "Host xen02\n  HostName 127.0.0.12\n  Port 2222\n"
        "Host xen09\n  HostName 127.0.0.99\n  Port 2222\n"
        "Host stg01\n  HostName 10.0.0.1\n  Port 2222\n"
    )
    ssh = {"config": str(lab / "ssh_config"), **({"port": port} if port else {})}
    cfg = config_from_dict(
        {"environments": {"lab": {"hosts": hosts, "guest_config_dir": "/x", "ssh": ssh}}}
    )
    info = {
        "port": 2222,
        "hosts": [
            {"name": "xen01", "address": "127.0.0.11"},
            {"name": "xen02", "address": "127.0.0.12"},
        ],
    }
    return cfg.environment("lab"), info, str(lab)


def test_demo_checks_every_host_reaches_the_lab_it_started(tmp_path):
    env, info, lab = _lab_env(tmp_path, ["xen01", "xen02"])
    demo._check_reaches_lab(env, info, lab)  # the lab's own: accepted
    cases = (
        (["xen01", "stg01"], None, "host stg01 of environment lab resolves to 10.0.0.1:2222"),
        (["xen01", "xen09"], None, "resolves to 127.0.0.99:2222, not to the lab"),
        (["xen01"], 22, "host xen01 of environment lab resolves to 127.0.0.11:22"),
    )
    for i, (hosts, port, says) in enumerate(cases):
        sub = tmp_path / f"t{i}"
        sub.mkdir()
        env, info, lab = _lab_env(sub, hosts, port)
        with pytest.raises(ConfigError, match=says):
            demo._check_reaches_lab(env, info, lab)


def test_snapshot_duplicates_survive_a_replay_from_file(tmp_path):
    s = _lab_snapshot()
    s.hosts[0].domains = [Domain("db01", 1024, 1)]
    s.hosts[1].domains = [Domain("db01", 1024, 1)]
    path = _saved(tmp_path, "s.json", s.to_dict())
    assert [d.guest for d in Snapshot.load(path).duplicates] == ["db01"]
