"""Tests for parse_clusvcadm."""

from __future__ import annotations

from xenfab.parse import parse_clusvcadm


def test_success_with_member() -> None:
    text = "Member node2 trying to enable vm:web01...Success\nvm:web01 is now running on node2\n"
    r = parse_clusvcadm(text, 0)
    assert r.ok and r.member == "node2" and r.message == "Success"
    assert r.running_on == "node2" and not r.already_running


def test_already_running() -> None:
    r = parse_clusvcadm("Local machine trying to enable vm:a...Service is already running\n", 0)
    assert r.ok and r.already_running and r.member is None


def test_failure() -> None:
    r = parse_clusvcadm("Member n1 trying to enable vm:a...Failure\n", 255)
    assert not r.ok and r.message == "Failure" and r.exit_code == 255


def test_truncated_line_gets_exit_meaning() -> None:
    r = parse_clusvcadm("Member n1 trying to enable vm:a...", 247)
    assert not r.ok and "RG_EQUORUM" in r.message


def test_could_not_connect() -> None:
    r = parse_clusvcadm("Could not connect to cluster service\n", 1)
    assert not r.ok and r.message == "Could not connect to cluster service"
