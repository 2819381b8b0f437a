"""Host keys are checked against known_hosts (refuse unknown/changed, trust on request); check."""

from __future__ import annotations

import base64
import hashlib
import re

import paramiko
import pytest
import yaml
from clitools import fab, no_traceback

pytestmark = pytest.mark.lab


def _env(lab, tmp_path, check="strict"):
    """A config whose ssh_config and known_hosts are ours: the lab's own keys are not trusted."""
    known = tmp_path / "known_hosts"
    known.touch()
    text = (lab.dir / "ssh_config").read_text()
    text = re.sub(r"(?im)^\s*UserKnownHostsFile .*$", f"  UserKnownHostsFile {known}", text)
    sshcfg = tmp_path / "ssh_config"
    sshcfg.write_text(text)
    cfg = {
        "environments": {
            "k": {
                "hosts": ["xen01", "xen02"],
                "master": "xen01",
                "guest_config_dir": str(lab.dir / "xenconfig"),
                "ssh": {"config": str(sshcfg), "known_hosts": str(known), "host_key_check": check},
            }
        }
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path), known


def test_unknown_key_refused_then_trusted(lab, tmp_path):
    cfg, known = _env(lab, tmp_path)
    res = fab("facts", "--config", cfg)
    no_traceback(res)
    assert res.returncode == 2
    assert "unknown host key" in res.stdout + res.stderr
    assert "fab trust-host xen01" in res.stdout + res.stderr
    refused = fab("trust-host", "xen01", "--config", cfg, stdin="")
    assert refused.returncode == 3 and "no terminal to confirm" in refused.stderr
    for host in ("xen01", "xen02"):
        ok = fab("trust-host", host, "--config", cfg, "--yes")
        assert ok.returncode == 0, ok.stderr
        assert "SHA256:" in ok.stdout and "trusted" in ok.stdout
    assert fab("facts", "--config", cfg).returncode == 0
    assert "already trusted" in fab("trust-host", "xen01", "--config", cfg, "--yes").stdout


def test_changed_key_refused_until_replaced(lab, tmp_path):
    cfg, known = _env(lab, tmp_path)
    for host in ("xen01", "xen02"):
        assert fab("trust-host", host, "--config", cfg, "--yes").returncode == 0
    # Swap in a different key for every name: as if the hosts had been reinstalled (or spoofed).
    keys = paramiko.HostKeys(str(known))
    impostor = paramiko.Ed25519Key.from_private_key_file(str(lab.dir / "id_ed25519"))
    for name in list(keys.keys()):
        keys.add(name, "ssh-ed25519", impostor)
    keys.save(str(known))
    res = fab("check", "--config", cfg)
    assert res.returncode == 2
    assert "CHANGED" in res.stdout and "host key CHANGED" in res.stderr
    # The fingerprint of the key the host now offers, as trust-host and ssh-keygen -lf show it,
    # and the command that works.
    offered = paramiko.Ed25519Key.from_private_key_file(
        str(lab.dir / "sshd" / "ssh_host_ed25519_key")
    )
    digest = hashlib.sha256(offered.asbytes()).digest()
    fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    assert fingerprint in res.stderr and "fab trust-host xen01 --replace" in res.stderr
    again = fab("trust-host", "xen01", "--config", cfg, "--yes")
    assert again.returncode == 1 and "--replace" in again.stderr
    assert fab("trust-host", "xen01", "--config", cfg, "--yes", "--replace").returncode == 0
    assert fab("trust-host", "xen02", "--config", cfg, "--yes", "--replace").returncode == 0
    assert fab("check", "--config", cfg).returncode == 0


def test_opt_out_is_explicit(lab, tmp_path):
    cfg, _ = _env(lab, tmp_path, check="off")
    assert fab("facts", "--config", cfg).returncode == 0


def test_check_reports_a_host_down(fresh_lab):
    ok = fab("check")
    assert ok.returncode == 0, ok.stderr
    assert "quorate yes" in ok.stdout
    fresh_lab.inject("host-down", "xen04")
    try:
        res = fab("check", "--format", "json")
        no_traceback(res)
        assert res.returncode == 2
        rows = {r["host"]: r for r in __import__("json").loads(res.stdout)["hosts"]}
        assert rows["xen04"]["reachable"] is False and "refused" in rows["xen04"]["problem"]
        assert all(rows[h]["reachable"] for h in rows if h != "xen04")
        assert len(res.stderr.strip().splitlines()) == 1
    finally:
        fresh_lab.inject("host-up", "xen04")
