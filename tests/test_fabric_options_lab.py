"""xenfab honours Fabric's own options (-S, -i, -t) and never echoes a secret."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from test_tasks_lab import ROOT, fab, no_traceback

pytestmark = pytest.mark.lab


def _ssh_config_without_identity(lab, tmp_path):
    text = re.sub(r"(?im)^\s*IdentityFile .*$", "", (lab.dir / "ssh_config").read_text())
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return path


def test_dash_S_and_dash_i(lab, tmp_path):
    sshcfg = _ssh_config_without_identity(lab, tmp_path)
    # -S replaces the environment's ssh_config: without an identity, every login is refused.
    res = fab("-S", str(sshcfg), "facts")
    no_traceback(res)
    assert res.returncode == 2 and "authentication failed" in res.stderr
    # -i supplies the key, as with plain Fabric.
    ok = fab("-S", str(sshcfg), "-i", str(lab.dir / "id_ed25519"), "-t", "5", "facts")
    assert ok.returncode == 0, ok.stderr


def test_secret_in_fabric_config_is_never_printed(fresh_lab, tmp_path):
    secret = "s3cret-Passphrase-42"
    runtime = tmp_path / "fabric.yaml"  # fab's own --config (before the task name)
    runtime.write_text(yaml.safe_dump({"connect_kwargs": {"passphrase": secret}}))
    audit = tmp_path / "audit.jsonl"
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    cfg["audit_log"] = str(audit)
    conf = tmp_path / "xenfab.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    seen = []
    for args in (("facts", "--format", "json"), ("check",), ("start-all", "--yes")):
        res = fab("--config", str(runtime), *args, "--config", str(conf))
        assert res.returncode == 0, res.stderr
        seen.append(res.stdout + res.stderr)
    assert json.loads(seen[0])["hosts"]
    assert audit.is_file() and audit.read_text().strip()
    seen.append(audit.read_text())
    assert all(secret not in text for text in seen)
