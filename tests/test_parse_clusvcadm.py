"""Tests for parse_clusvcadm: clusvcadm's messages and exit statuses."""

from __future__ import annotations

import pytest

from xenfab.parse import ParseError, parse_clusvcadm


def test_success_with_member() -> None:
    text = "Member node2 trying to enable vm:web01...Success\nvm:web01 is now running on node2\n"
    r = parse_clusvcadm(text, 0, source="node1")
    assert r.ok and r.member == "node2" and r.message == "Success"
    assert r.running_on == "node2" and not r.already_running and r.exit_code == 0
    assert r["ok"] is True and r.as_dict()["member"] == "node2"


def test_success_started_elsewhere_warning() -> None:
    text = (
        "Member node2 trying to enable vm:web01...Success\n"
        "Warning: vm:web01 is now running on node3\n"
    )
    r = parse_clusvcadm(text, 0)
    assert r.ok and r.member == "node2" and r.running_on == "node3"


def test_local_machine() -> None:
    text = "Local machine trying to enable vm:a...Success\nvm:a is now running on node1\n"
    r = parse_clusvcadm(text, 0)
    assert r.ok and r.member is None and r.running_on == "node1"


def test_closest_match_preamble() -> None:
    text = (
        "'node2' not in membership list\n"
        "Closest match: 'node2.example.com'\n"
        "Member node2.example.com trying to enable vm:web01...Success\n"
        "vm:web01 is now running on node2.example.com\n"
    )
    r = parse_clusvcadm(text, 0)
    assert r.ok and r.member == "node2.example.com"


def test_closest_match_without_action_line() -> None:
    text = "'node2' not in membership list\nClosest match: 'node2.example.com'\n"
    r = parse_clusvcadm(text, 0)
    assert r.member == "node2.example.com"


@pytest.mark.parametrize(
    "text",
    [
        "'nodeX' not in membership list\nNo matches for 'nodeX' found\n",
        "'node' not in membership list\nMore than one possible match for 'node' found\n",
    ],
)
def test_no_member_match(text: str) -> None:
    r = parse_clusvcadm(text, 1)
    assert not r.ok and r.member is None and "found" in r.message


def test_already_running() -> None:
    r = parse_clusvcadm("Local machine trying to enable vm:a...Service is already running\n", 0)
    assert r.ok and r.already_running and r.member is None
    assert r.message == "Service is already running"


@pytest.mark.parametrize(
    ("result", "code"),
    [
        ("Failure", 255),
        ("Aborted; service failed", 254),
        ("Service does not exist", 252),
        ("Temporary failure; try again", 250),
        ("Operation violates dependency rule", 249),
        ("Invalid operation for resource", 248),
        ("Operation requires quorum", 247),
        ("Failure: Service is frozen", 245),
        ("Target node dead / nonexistent", 244),
        ("Fencing operation pending; try again later", 243),
        ("Service not runnable", 241),
        ("Permissing denied", 238),
    ],
)
def test_failures(result: str, code: int) -> None:
    r = parse_clusvcadm(f"Member n1 trying to enable vm:a...{result}\n", code)
    assert not r.ok and r.message == result and r.exit_code == code and r.member == "n1"
    assert r.running_on is None


def test_failure_text_with_exit_zero_is_not_ok() -> None:
    assert not parse_clusvcadm("Member n1 trying to enable vm:a...Failure\n", 0).ok


def test_truncated_line_gets_exit_meaning() -> None:
    r = parse_clusvcadm("Member n1 trying to enable vm:a...", 247)
    assert not r.ok and r.member == "n1"
    assert "RG_EQUORUM" in r.message and "Operation requires quorum" in r.message
    assert "trying to enable vm:a" in r.message


def test_empty_output_with_error_exit() -> None:
    r = parse_clusvcadm("", 255)
    assert not r.ok and r.message == "exit 255 = RG_EFAIL: Failure"


def test_quiet_success() -> None:
    r = parse_clusvcadm("", 0)
    assert r.ok and r.message == "" and r.member is None


def test_negative_exit_code_is_understood() -> None:
    assert "RG_EFAIL" in parse_clusvcadm("", -1).message


def test_result_pushed_to_next_line() -> None:
    r = parse_clusvcadm("Member n1 trying to enable vm:a...\nFailure\n", 255)
    assert r.message == "Failure" and not r.ok


@pytest.mark.parametrize(
    "text",
    [
        "Could not connect to cluster service\n",
        "Local machine trying to enable vm:a...Could not connect to resource group manager\n",
    ],
)
def test_could_not_connect(text: str) -> None:
    r = parse_clusvcadm(text, 1)
    assert not r.ok and r.message.startswith("Could not connect to")


def test_disable_relocate_migrate() -> None:
    r = parse_clusvcadm("Local machine disabling vm:a...Success\n", 0)
    assert r.ok and r.member is None and r.running_on is None
    text = "Trying to relocate vm:a to node3...Success\nvm:a is now running on node3\n"
    r = parse_clusvcadm(text, 0)
    assert r.ok and r.member == "node3" and r.running_on == "node3"
    r = parse_clusvcadm("Trying to migrate vm:a to node2...Success\n", 0)
    assert r.ok and r.member == "node2"
    r = parse_clusvcadm("Trying to relocate vm:a...Success\nvm:a is now running on n4\n", 0)
    assert r.member is None and r.running_on == "n4"


def test_crlf_and_trailing_spaces() -> None:
    r = parse_clusvcadm(
        "Member n1 trying to enable vm:a...Success  \r\nvm:a is now running on n1 \r\n", 0
    )
    assert r.ok and r.message == "Success" and r.running_on == "n1"


def test_migration_requires_member() -> None:
    r = parse_clusvcadm("Migration requires a target cluster member\n", 1)
    assert not r.ok and r.message == "Migration requires a target cluster member"


def test_exit_code_must_be_int() -> None:
    with pytest.raises(ParseError):
        parse_clusvcadm("", "0")  # type: ignore[arg-type]


def test_chained_calls_report_the_last_action() -> None:
    text = (
        "Local machine disabling vm:a...Success\n"
        "Member n2 trying to enable vm:a...Success\n"
        "vm:a is now running on n2\n"
    )
    r = parse_clusvcadm(text, 0)
    assert r.ok and r.member == "n2" and r.running_on == "n2" and r.message == "Success"
