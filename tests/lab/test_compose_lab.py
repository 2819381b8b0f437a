"""A team's own fabfile composes xenfab's collection and runs its tasks against the lab."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from clitools import ROOT, fab

pytestmark = pytest.mark.lab

TEAM_FABFILE = '''\
"""Our team's fabfile: our own tasks, plus xenfab under "xen"."""
from invoke import Collection, task

import xenfab


@task
def hello(c):
    """Say hello (a team task)."""
    print("hello from the team")


ns = Collection(hello)
ns.add_collection(xenfab.ns, name="xen")
'''


def team_fab(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return fab(*args, cwd=cwd, drop_env=("XENFAB_CONFIG",))


@pytest.fixture
def team(tmp_path: Path) -> Path:
    d = tmp_path / "team"
    d.mkdir()
    (d / "fabfile.py").write_text(TEAM_FABFILE)
    return d


def test_list_shows_team_and_xenfab_tasks(team):
    res = team_fab(team, "--list")
    assert res.returncode == 0, res.stderr
    for name in ("hello", "xen.show-layout", "xen.start-all", "xen.start-host", "xen.lab.up"):
        assert name in res.stdout


def test_config_beside_the_fabfile_from_another_directory(fresh_lab, team, tmp_path):
    shutil.copy(ROOT / "fabfile_config.yaml", team / "fabfile_config.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = team_fab(elsewhere, "--search-root", str(team), "xen.show-layout", "--format", "json")
    layout = json.loads(res.stdout)
    assert layout["assignments"]
    assert res.returncode == (2 if layout["unplaced"] else 0), res.stderr


def test_config_from_the_team_fabric_yaml_section(fresh_lab, team):
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    (team / "fabric.yaml").write_text(yaml.safe_dump({"xenfab": cfg}))
    res = team_fab(team, "xen.start-all", "--yes")
    # Only the unreadable one is left, still down: the run ends saying so, exit 2.
    assert res.returncode == 2, res.stderr + res.stdout
    assert "legacy07" in res.stdout.split("STILL DOWN")[-1]
    down = [s for s in fresh_lab.status()["services"] if s["state"] in ("disabled", "failed")]
    assert [s["name"] for s in down] == ["vm:legacy07"]


def test_config_path_from_the_team_fabric_yaml(fresh_lab, team):
    (team / "fabric.yaml").write_text(
        yaml.safe_dump({"xenfab": {"config": str(ROOT / "fabfile_config.yaml")}})
    )
    res = team_fab(team, "xen.facts", "--format", "json")
    # facts exits 2 on the problem it lists: the lab's legacy07, whose config computes its name.
    assert res.returncode == 2, res.stderr
    assert "legacy-vm.cfg" in res.stderr and "name is computed" in res.stderr
    assert json.loads(res.stdout)["environment"] == "lab"


def test_no_config_says_where_it_looked(team):
    res = team_fab(team, "xen.facts")
    assert res.returncode == 1
    assert "no configuration found" in res.stderr and str(team) in res.stderr
    assert "Traceback" not in res.stderr


def test_readme_real_cluster_steps_work_from_a_directory_of_your_own(fresh_lab, tmp_path):
    """docs/deploying.md's one-line fabfile.py, and the `xenfab` command, outside the checkout."""
    readme = (ROOT / "docs" / "deploying.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("echo 'from xenfab import ns"))
    own = tmp_path / "xen"
    own.mkdir()
    subprocess.run(["bash", "-c", line.split("   #")[0]], cwd=own, check=True)
    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    (own / "fabfile_config.yaml").write_text(yaml.safe_dump(cfg))
    res = team_fab(own, "check")
    assert res.returncode == 0, res.stderr
    assert "environment lab" in res.stdout
    xenfab_cmd = shutil.which("xenfab") or str(Path(sys.executable).parent / "xenfab")
    res = subprocess.run(
        [xenfab_cmd, "check"], cwd=own, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
