"""xenfab honours Fabric's own options (-S, -i, -t) and never echoes a secret."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from clitools import ROOT, fab, no_traceback

pytestmark = pytest.mark.lab


def _ssh_config_without_identity(lab, tmp_path):
    text = re.sub(r"(?im)^\s*IdentityFile .*$", "", (lab.dir / "ssh_config").read_text())
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return path


@pytest.mark.usefixtures("fresh_lab")  # the rgmanager lab, whatever ran before
def test_dash_S_and_dash_i(lab, tmp_path):
    sshcfg = _ssh_config_without_identity(lab, tmp_path)
    # -S replaces the environment's ssh_config: without an identity, every login is refused.
    res = fab("-S", str(sshcfg), "facts")
    no_traceback(res)
    assert res.returncode == 2 and "authentication failed" in res.stderr
    # -i supplies the key, as with plain Fabric.
    ok = fab("-S", str(sshcfg), "-i", str(lab.dir / "id_ed25519"), "-t", "5", "facts")
    # Every host answers; legacy07's unreadable config is the one problem (issue 19: exit 2).
    assert ok.returncode == 2 and "facts found 1 problem(s)" in ok.stderr, ok.stderr


def test_secret_in_fabric_config_is_never_printed(fresh_lab, tmp_path):
    secret = "s3cret-Passphrase-42"
    runtime = tmp_path / "fabric.yaml"  # fab's own --config (before the task name)
    runtime.write_text(yaml.safe_dump({"connect_kwargs": {"passphrase": secret}}))
    audit = tmp_path / "audit.jsonl"
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    cfg["environments"]["lab"]["audit_log"] = str(audit)
    conf = tmp_path / "xenfab.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    seen = []
    docs = []
    for args in (("facts", "--format", "json"), ("check",), ("start-all", "--yes")):
        res = fab("--config", str(runtime), *args, "--config", str(conf))
        # start-all leaves legacy07 down (its config computes its name): 2, said so; facts
        # lists its unreadable config as a problem: 2 as well (issue 19).
        assert res.returncode == (0 if args[0] == "check" else 2), res.stderr
        seen.append(res.stdout + res.stderr)
        docs.append(res.stdout)
    # stdout is the JSON document; facts' last line (its problem) is on stderr.
    assert json.loads(docs[0])["hosts"]
    assert audit.is_file() and audit.read_text().strip()
    seen.append(audit.read_text())
    assert all(secret not in text for text in seen)


def test_proxyjump_from_ssh_config(fresh_lab, tmp_path):
    text = (
        (fresh_lab.dir / "ssh_config")
        .read_text()
        .replace("Host xen03\n", "Host xen03\n    ProxyJump xen02\n", 1)
    )
    sshcfg = tmp_path / "ssh_config"
    sshcfg.write_text(text)
    snap = json.loads(fab("-S", str(sshcfg), "facts", "--format", "json").stdout)
    assert all(h["reachable"] for h in snap["hosts"])
    # With the jump host down, only the host behind it is lost: the jump was really used.
    fresh_lab.inject("host-down", "xen02")
    try:
        res = fab("-S", str(sshcfg), "facts", "--format", "json")
        assert res.returncode == 2
        down = {h["name"] for h in json.loads(res.stdout)["hosts"] if not h["reachable"]}
        assert down == {"xen02", "xen03"}
    finally:
        fresh_lab.inject("host-up", "xen02")


def test_loc_narrows_to_tagged_hosts(fresh_lab, tmp_path):
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    env = cfg["environments"]["lab"]
    env["hosts"] = [
        {"name": "xen0[1-3]", "location": "dc1"},
        {"name": "xen0[4-6]", "location": "dc2"},
    ]
    conf = tmp_path / "xenfab.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    snap = json.loads(
        fab("facts", "--format", "json", "--loc", "dc2", "--config", str(conf)).stdout
    )
    assert [h["name"] for h in snap["hosts"]] == ["xen04", "xen05", "xen06"]
    assert snap["master"] == "xen04" and snap["guests"]  # xen01 is elsewhere: a dc2 host reads
    layout = json.loads(
        fab("show-layout", "--format", "json", "--loc", "dc1", "--config", str(conf)).stdout
    )
    assert {a["host"] for a in layout["assignments"]} <= {"xen01", "xen02", "xen03"}
    bad = fab("facts", "--loc", "dc9", "--config", str(conf))
    assert bad.returncode == 1 and "locations: dc1, dc2" in bad.stderr


def test_shell_completion_lists_tasks_and_options():
    # The shell calls the `fab` script itself; `python -m fabric` names the program differently.
    fab_bin = str(Path(sys.executable).parent / "fab")

    def complete(*words):
        res = subprocess.run(
            [fab_bin, "--complete", "--", "fab", *words],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return set(res.stdout.split())

    assert {"start-all", "start-host", "show-layout"} <= complete("st")
    assert {"--dry-run", "--yes", "--parallel", "--env", "--loc"} <= complete("start-all", "--d")
    assert "complete" in fab("--print-completion-script", "bash").stdout
