"""Shared fixtures: the rehearsal lab (real sshd on loopback) for tests marked ``lab``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clitools import LAB_BOOT_S

SSHD = "/usr/sbin/sshd"


class LabHandle:
    """A running lab as the tests see it: its directory, ssh_config and controls."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.ssh_config = path / "ssh_config"

    def status(self) -> dict:
        """The lab's status (hosts, services, quorum, starts, sshd PIDs)."""
        from xenfab import lab

        return lab.status(self.dir)

    def inject(self, kind: str, *args: str) -> dict:
        """Inject a fault (see xenfab.lab.inject)."""
        from xenfab import lab

        return lab.inject(self.dir, kind, *args)

    def reseed(self, **kw) -> dict:
        """A fresh scenario while sshd keeps running (see xenfab.lab.reseed)."""
        from xenfab import lab

        return lab.reseed(self.dir, **kw)

    def ssh(self, host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command on a lab host with the system ssh client."""
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), host, command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A 6-host, 30-guest lab (seed 1, boot LAB_BOOT_S) for the whole session; stopped at the end."""
    if not os.path.exists(SSHD):
        pytest.skip(f"{SSHD} is missing: install openssh-server to run the lab tests")
    from xenfab import lab as lab_mod

    path = tmp_path_factory.mktemp("lab")
    saved = os.environ.get("XENFAB_LAB_DIR")
    os.environ["XENFAB_LAB_DIR"] = str(path)
    try:
        lab_mod.up(path, hosts=6, guests=30, seed=1, latency_ms=0, boot_s=1)
        yield LabHandle(path)
    finally:
        lab_mod.down(path)
        if saved is None:
            os.environ.pop("XENFAB_LAB_DIR", None)
        else:
            os.environ["XENFAB_LAB_DIR"] = saved


@pytest.fixture
def fresh_lab(lab: LabHandle) -> LabHandle:
    """The session lab, reseeded to its default scenario before the test."""
    lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="rgmanager")
    return lab


@pytest.fixture
def xl_lab(lab: LabHandle) -> LabHandle:
    """The session lab, reseeded to its default scenario with no cluster manager (xl)."""
    lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="xl")
    return lab


@pytest.fixture
def xe_lab(lab: LabHandle) -> LabHandle:
    """The session lab, reseeded to its default scenario as an XCP-ng pool (xe on the master)."""
    lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="xe")
    return lab
