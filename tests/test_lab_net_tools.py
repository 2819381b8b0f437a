"""The lab's ping and nc (net_tools) without sshd: the state decides, the real tools' words."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from xenfab.lab import emulator, net_tools, scenario


class _Capture(emulator.Stream):
    def __init__(self) -> None:
        self.out, self.err = "", ""

    def write(self, fd: int, text: str) -> None:
        if fd == 1:
            self.out += text
        else:
            self.err += text


@pytest.fixture
def lab_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    scenario.write_state(tmp_path, 3, 11, 18, 1, 0, ready_s=1)
    # A probe that waits (no answer) waits a tenth of a second here.
    monkeypatch.setattr(net_tools, "MAX_WAIT_S", 0.1)
    return tmp_path


def _booted(lab: Path, guest: str, ago: float) -> None:
    db = emulator.connect(str(lab))
    try:
        db.execute("DELETE FROM domains WHERE name = ?", (guest,))
        db.execute(
            "INSERT INTO domains(name, host, mem_mib, maxmem_mib, vcpus, domid, created) "
            "VALUES (?, 'xen01', 512, 512, 1, 90, ?)",
            (guest, time.time() - ago),
        )
    finally:
        db.close()


def _run(lab: Path, tool: str, *args: str) -> tuple[int, str, str]:
    cap = _Capture()
    rc = emulator.run(str(lab), "xen01", tool, list(args), cap)
    return rc, cap.out, cap.err


def test_a_guest_answers_once_booted_and_ready_and_not_before(lab_dir):
    assert _run(lab_dir, "nc", "-z", "-w", "2", "db01", "5432")[0] == 1  # no domain: times out
    _booted(lab_dir, "db01", 1.5)  # boot 1 s done, ready 1 s not yet: refused
    assert _run(lab_dir, "nc", "-z", "-v", "-w", "2", "db01", "5432")[2].endswith(
        "failed: Connection refused\n"
    )
    rc, out, _ = _run(lab_dir, "ping", "-c", "1", "-W", "1", "db01")
    assert rc == 1 and "100% packet loss" in out
    _booted(lab_dir, "db01", 2.5)
    assert _run(lab_dir, "nc", "-z", "-w", "2", "db01", "5432") == (0, "", "")
    rc, out, _ = _run(lab_dir, "ping", "-c", "1", "-W", "1", "db01")
    assert rc == 0 and "1 received, 0% packet loss" in out


def test_faults_never_ready_and_slow_boot(lab_dir):
    db = emulator.connect(str(lab_dir))
    try:
        net_tools._set_fault(db, "db01", never=True)
        net_tools._set_fault(db, "db02", extra_s=60)
    finally:
        db.close()
    for guest in ("db01", "db02"):
        _booted(lab_dir, guest, 30)
        assert _run(lab_dir, "nc", "-z", "-w", "2", guest, "5432")[0] == 1


def test_unknown_names_and_bad_arguments_fail_as_the_real_tools_do(lab_dir):
    assert _run(lab_dir, "ping", "-c", "1", "-W", "1", "nosuch") == (
        2,
        "",
        "ping: nosuch: Name or service not known\n",
    )
    assert _run(lab_dir, "nc", "-z", "-w", "2", "nosuch", "22") == (
        1,
        "",
        'nc: getaddrinfo for host "nosuch" port 22: Name or service not known\n',
    )
    assert _run(lab_dir, "nc", "-z", "-w", "2", "db01", "70000")[0:2] == (1, "")
    rc, _, err = _run(lab_dir, "ping", "-x", "db01")
    assert rc == 2 and err.startswith("ping: invalid option -- 'x'")
    assert _run(lab_dir, "ping", "-c", "1")[0] == 1
    assert _run(lab_dir, "nc", "-z", "db01")[0] == 1  # no port: usage
