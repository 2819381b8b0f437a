"""Host keys are checked against known_hosts (refuse unknown/changed, trust on request); check."""

from __future__ import annotations

import base64
import hashlib
import json
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


@pytest.mark.usefixtures("fresh_lab")  # the rgmanager lab, whatever ran before
def test_unknown_key_refused_then_trusted(lab, tmp_path):
    cfg, known = _env(lab, tmp_path)
    res = fab("facts", "--config", cfg)
    no_traceback(res)
    assert res.returncode == 2
    assert "unknown host key" in res.stdout + res.stderr
    assert "fab trust-host xen01" in res.stdout + res.stderr
    doc = fab("check", "--config", cfg, "--format", "json")
    rows = json.loads(doc.stdout)["hosts"]
    assert [(r["host_key"], r["error_kind"]) for r in rows] == [("UNKNOWN", "host-key-unknown")] * 2
    refused = fab("trust-host", "xen01", "--config", cfg, stdin="")
    assert refused.returncode == 3 and "no terminal to confirm" in refused.stderr
    for host in ("xen01", "xen02"):
        ok = fab("trust-host", host, "--config", cfg, "--yes")
        assert ok.returncode == 0, ok.stderr
        assert "SHA256:" in ok.stdout and "trusted" in ok.stdout
    # Trusted: only legacy07's unreadable config is left to report (issue 19: exit 2).
    trusted = fab("facts", "--config", cfg)
    assert trusted.returncode == 2 and "facts found 1 problem(s)" in trusted.stderr
    assert "already trusted" in fab("trust-host", "xen01", "--config", cfg, "--yes").stdout


@pytest.mark.usefixtures("fresh_lab")  # the rgmanager lab, whatever ran before
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
    # Scripts read the kind, which says the same without the words.
    doc = fab("check", "--config", cfg, "--format", "json")
    no_traceback(doc)
    assert doc.returncode == 2
    rows = {r["host"]: r for r in json.loads(doc.stdout)["hosts"]}
    for host in ("xen01", "xen02"):
        assert rows[host]["error_kind"] == "host-key-changed"
        assert rows[host]["host_key"] == "CHANGED" and "host key CHANGED" in rows[host]["problem"]
    facts = fab("facts", "--config", cfg, "--format", "json")
    kinds = {h["name"]: h["error_kind"] for h in json.loads(facts.stdout)["hosts"]}
    assert kinds == {"xen01": "host-key-changed", "xen02": "host-key-changed"}
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


@pytest.mark.usefixtures("fresh_lab")  # the rgmanager lab, whatever ran before
def test_opt_out_is_explicit(lab, tmp_path):
    cfg, _ = _env(lab, tmp_path, check="off")
    # Every host answers; legacy07's unreadable config is the one problem (issue 19: exit 2).
    res = fab("facts", "--config", cfg)
    assert res.returncode == 2 and "facts found 1 problem(s)" in res.stderr, res.stderr


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
        assert rows["xen04"]["error_kind"] == "refused" and rows["xen04"]["host_key"] == "-"
        assert all(rows[h]["reachable"] for h in rows if h != "xen04")
        assert all(rows[h]["error_kind"] is None for h in rows if h != "xen04")
        assert len(res.stderr.strip().splitlines()) == 1
    finally:
        fresh_lab.inject("host-up", "xen04")


def _trusted(lab, tmp_path, extra_before: str = "", extra_after: str = ""):
    """A config whose known_hosts trusts xen01 and xen02, with ``extra`` lines around them."""
    cfg, known = _env(lab, tmp_path)
    for host in ("xen01", "xen02"):
        assert fab("trust-host", host, "--config", cfg, "--yes").returncode == 0
    known.write_text(extra_before + known.read_text() + extra_after)
    return cfg, known


CA_LINE = (
    "@cert-authority *.example.com ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIHs8X9Vq1l7G3Fk0Zr2bJg1b6mX3P1nYbqO5dD7mQ8kR\n"
)
SK_LINE = (
    "xen09 sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIHs8X9Vq1l7"
    "G3Fk0Zr2bJg1b6mX3P1nYbqO5dD7mQ8kRAAAABHNzaDo=\n"
)


def test_known_hosts_markers_are_read_as_openssh_reads_them(lab, tmp_path):
    """Issue 14 case 9: @cert-authority skipped with a note, @revoked refused, never a crash."""
    cfg, known = _trusted(lab, tmp_path, "# our hosts\n" + CA_LINE)
    res = fab("facts", "--config", cfg)
    no_traceback(res)
    # Every host answers; legacy07's unreadable config is the one problem (issue 19: exit 2).
    assert res.returncode == 2 and "facts found 1 problem(s)" in res.stderr, res.stderr
    assert "@cert-authority line skipped" in res.stderr
    # xen01's own key marked revoked: refused, named as revoked; xen02 still answers.
    line = next(x for x in known.read_text().splitlines() if x.startswith("[127.") or "xen01" in x)
    known.write_text(known.read_text() + "@revoked " + line + "\n")
    res = fab("check", "--config", cfg)
    no_traceback(res)
    assert res.returncode != 0
    assert "REVOKED" in res.stdout + res.stderr
    rows = json.loads(fab("check", "--config", cfg, "--format", "json").stdout)["hosts"]
    assert [r["error_kind"] for r in rows] == ["host-key-revoked", None]


def test_trust_host_keeps_every_line_it_does_not_own(lab, tmp_path):
    """Issue 14 case 9: comments, markers and unknown key types survive trust-host byte for byte."""
    cfg, known = _env(lab, tmp_path)
    before = "# keep me\n" + SK_LINE + CA_LINE + "\n"
    known.write_text(before)
    assert fab("trust-host", "xen01", "--config", cfg, "--yes").returncode == 0
    text = known.read_text()
    assert text.startswith(before) and len(text.splitlines()) == len(before.splitlines()) + 1
    # --replace touches only the line it owns.
    impostor = paramiko.Ed25519Key.from_private_key_file(str(lab.dir / "id_ed25519"))
    ours = text.splitlines()[-1]
    names = ours.split()[0]
    known.write_text(before + f"{names} ssh-ed25519 {impostor.get_base64()}\n# tail\n")
    assert fab("trust-host", "xen01", "--config", cfg, "--yes").returncode == 1
    assert fab("trust-host", "xen01", "--config", cfg, "--yes", "--replace").returncode == 0
    after = known.read_text()
    assert after == before + "# tail\n" + ours + "\n"


def test_the_configured_known_hosts_is_the_only_one_used(lab, tmp_path):
    """Issue 11 item 9: with ssh.known_hosts set, the ssh_config's file does not widen it."""
    cfg, known = _env(lab, tmp_path)
    other = tmp_path / "other_known_hosts"
    sshcfg = tmp_path / "ssh_config"
    sshcfg.write_text(
        re.sub(
            r"(?im)^\s*UserKnownHostsFile .*$", f"  UserKnownHostsFile {other}", sshcfg.read_text()
        )
    )
    # Trust the hosts in the ssh_config's file only (trust-host writes the configured one).
    for host in ("xen01", "xen02"):
        assert fab("trust-host", host, "--config", cfg, "--yes").returncode == 0
    other.write_text(known.read_text())
    known.write_text("")
    res = fab("facts", "--config", cfg)
    no_traceback(res)
    assert res.returncode != 0 and "unknown host key" in res.stdout + res.stderr
