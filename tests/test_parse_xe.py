"""The xe parsers: records, maps, --minimal and errors, on real outputs and generated ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xenfab
from xenfab.parse import (
    ParseError,
    parse_xe_error,
    parse_xe_map,
    parse_xe_minimal,
    parse_xe_records,
)

FIXTURES = Path(__file__).parent / "fixtures" / "xe"
ANNOTATIONS = ["( RO)", "( RW)", "(SRO)", "(SRW)", "(MRO)", "(MRW)", "( RW) [DEPRECATED]"]
PROPS = settings(max_examples=150, derandomize=True, deadline=None, database=None)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def render(records: list[list[tuple[str, str, str]]], blank: str = "\n\n\n") -> str:
    """Records as xe prints them (cli_printer.ml multi_line_record): width = 4 + longest key."""
    out = []
    for fields in records:
        keys = [f"{k} {ann}" for k, ann, _ in fields]
        width = 4 + max(len(k) for k in keys)
        lines = [f"{keys[0].ljust(width)}: {fields[0][2]}"]
        lines += [
            f"{k.rjust(width)}: {v}" for k, (_, _, v) in zip(keys[1:], fields[1:], strict=True)
        ]
        out.append("\n".join(lines) + blank)
    return "".join(out)


def test_importable_from_xenfab():
    assert xenfab.parse_xe_records is parse_xe_records
    assert xenfab.parse_xe_map is parse_xe_map
    assert xenfab.parse_xe_error is parse_xe_error


def test_host_param_list_real_excerpt():
    [host] = parse_xe_records(fixture("host-param-list-xcpng75.txt"))
    assert host["uuid"] == "e9ba9347-0c02-4944-ab16-750affac025f"
    assert host["memory-total"] == "12874145792" and host["memory-free"] == "11626835968"
    assert host["current-operations"] == ""  # an empty value, its trailing space trimmed
    cpu = parse_xe_map(host["cpu_info"])
    assert cpu["cpu_count"] == "16"
    # Several spaces in a row and "@" inside a value are kept as printed.
    assert cpu["modelname"] == "Intel(R) Xeon(R) CPU           X5550  @ 2.67GHz"
    assert parse_xe_map(host["software-version"])["product_brand"] == "XCP-ng"


def test_vm_records_real_excerpts():
    [vm] = parse_xe_records(fixture("vm-param-list-xcpng821.txt"))
    assert vm["name-label"] == "PQ-UIO1-R1.IXP-Manager - 10.42.101.82"
    assert vm["snapshot-of"] == "<not in database>"
    assert vm["memory-static-max"] == "8589934592"
    [vm] = parse_xe_records(fixture("vm-list-params-all-xcpng.txt"))
    assert vm["memory-target"] == "<expensive field>"
    assert vm["power-state"] == "running"
    [vm] = parse_xe_records(fixture("vm-list-networks-map.txt"))
    assert parse_xe_map(vm["networks"]) == {"0/ip": "172.16.1.131"}


@pytest.mark.parametrize(
    ("name", "count"),
    [("sr-list-two-blank.txt", 4), ("network-list-one-blank.txt", 4)],
)
def test_record_separators_two_blank_lines_or_one(name, count):
    records = parse_xe_records(fixture(name))
    assert len(records) == count
    assert all(set(r) >= {"uuid", "name-label"} for r in records)


def test_pool_param_list():
    [pool] = parse_xe_records(fixture("pool-param-list-xcpng.txt"))
    assert pool["master"] == "eae75dd5-6ae2-474f-a04d-a982d52821e7"
    assert pool["ha-enabled"] == "false"
    assert parse_xe_map(pool["other-config"])["auto_poweron"] == "true"
    assert pool["default-SR"] == "<not in database>"


def test_records_without_blank_lines_split_on_unindented_lines():
    text = render(
        [[("uuid", "( RO)", "a"), ("name-label", "( RW)", "x")], [("uuid", "( RO)", "b")]],
        blank="\n",
    )
    assert [r["uuid"] for r in parse_xe_records(text)] == ["a", "b"]


def test_nothing_printed_is_no_records_and_garbage_is_a_parse_error():
    assert parse_xe_records("") == []
    assert parse_xe_records("\n\n") == []
    with pytest.raises(ParseError, match="not a field"):
        parse_xe_records("Error: No matching VMs found\n", source="xe vm-list")
    with pytest.raises(ParseError, match="twice"):
        parse_xe_records("uuid ( RO)    : a\n    uuid ( RO): b\n")


def test_map_keys_with_colons_and_values_with_separators():
    assert parse_xe_map("xs:main: XenServer Pack, version 6.5.0; a: b") == {
        "xs:main": "XenServer Pack, version 6.5.0",
        "a": "b",
    }
    # No escaping: an entry without its own key belongs to the value before it.
    assert parse_xe_map("note: one; two; k: v") == {"note": "one; two", "k": "v"}
    assert parse_xe_map("") == {}
    assert parse_xe_map("empty:") == {"empty": ""}
    with pytest.raises(ParseError):
        parse_xe_map("no key at all")


def test_minimal_escapes():
    assert parse_xe_minimal("a,b\\,c,d\\\\e\n") == ["a", "b,c", "d\\e"]
    assert parse_xe_minimal("\n") == []
    with pytest.raises(ParseError):
        parse_xe_minimal("a\nb\n")


# --- errors -----------------------------------------------------------------------------------

NEW_MEM = "Not enough server memory is available to perform this operation."
OLD_MEM = "Not enough host memory is available to perform this operation"


@pytest.mark.parametrize("sentence", [NEW_MEM, OLD_MEM])
def test_not_enough_memory_in_both_wordings(sentence):
    err = parse_xe_error(f"{sentence}\nneeded: 2164260864\navailable: 1073741824\n", 1)
    assert not err.ok and err.code == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert err.params == {"needed": "2164260864", "available": "1073741824"}
    assert "HOST_NOT_ENOUGH_FREE_MEMORY" in err.message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "There were no servers available to complete the specified operation.",
            "NO_HOSTS_AVAILABLE",
        ),
        (
            "There were no hosts available to complete the specified operation.",
            "NO_HOSTS_AVAILABLE",
        ),
        ("This operation cannot be completed as the server is not live.", "HOST_NOT_LIVE"),
        ("This operation cannot be completed as the host is not live.", "HOST_NOT_LIVE"),
        ("The specified host is disabled.\nhost: u (h)", "HOST_DISABLED"),
    ],
)
def test_codes_recovered_from_either_wording(text, code):
    assert parse_xe_error(text + "\n", 1).code == code


def test_bad_power_state_and_requires_sr():
    err = parse_xe_error(
        "You attempted an operation on a VM that was not in an appropriate power state at the "
        "time; for example, you attempted to start a VM that was already running. The "
        "parameters returned are the VM's handle, and the expected and actual VM state at the "
        "time of the call.\nvm: 1234 (web 01)\nexpected: halted\nactual: running\n",
        1,
    )
    assert err.code == "VM_BAD_POWER_STATE" and err.params["actual"] == "running"
    assert err.params["vm"] == "1234 (web 01)"
    err = parse_xe_error(
        "You attempted to run a VM on a host which doesn't have access to an SR needed by the "
        "VM. The VM has at least one VBD attached to a VDI in the SR.\nvm: a (b)\nsr: c (NFS)\n",
        1,
    )
    assert err.code == "VM_REQUIRES_SR" and err.params["sr"] == "c (NFS)"


def test_real_errors():
    err = parse_xe_error(fixture("error-sr-backend-failure-47.txt"), 1)
    assert err.code == "SR_BACKEND_FAILURE_47"
    assert err.message == (
        "SR_BACKEND_FAILURE_47: The SR is not available [opterr=ceph is not installed]"
    )
    err = parse_xe_error(fixture("error-internal-error-old-wording.txt"), 1)
    assert err.code == "INTERNAL_ERROR"
    assert err.params == {"message": "xenopsd internal error: Xenlight.Error(_)"}
    err = parse_xe_error(fixture("error-sr-backend-failure-vm-start.txt"), 1)
    assert err.code == "SR_BACKEND_FAILURE"
    assert err.params["status"] == "non-zero exit"
    assert "Traceback" in err.params["stderr"] and "blktap2.py" in err.params["stderr"]


def test_no_hosts_table_and_cli_failures():
    text = (
        "There are no suitable hosts to start this VM on.\n"
        "The following table provides per-host reasons for why the VM could not be started:\n\n"
        "xcp 01    : Not enough free memory\n"
        "    xcp 02: Host down\n\n\n"
        "There were no servers available to complete the specified operation.\n"
    )
    err = parse_xe_error(text, 1)
    assert err.code == "NO_HOSTS_AVAILABLE"
    assert err.params == {"xcp 01": "Not enough free memory", "xcp 02": "Host down"}
    err = parse_xe_error("Error: No matching VMs found\n", 1)
    assert (err.ok, err.code, err.message) == (False, None, "No matching VMs found")
    assert parse_xe_error("", 0).ok
    assert parse_xe_error("", 1).message == "xe exited 1 with no output"
    with pytest.raises(ParseError):
        parse_xe_error("x", "1")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------

KEY = st.from_regex(r"[a-z][a-z0-9_-]{0,20}(-[A-Z][a-z]+)?", fullmatch=True)
VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40
).map(str.strip)


@st.composite
def records(draw) -> list[list[tuple[str, str, str]]]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        keys = draw(st.lists(KEY, min_size=1, max_size=8, unique=True))
        out.append([(k, draw(st.sampled_from(ANNOTATIONS)), draw(VALUE)) for k in keys])
    return out


@pytest.mark.slow
@PROPS
@given(recs=records(), blank=st.sampled_from(["\n\n\n", "\n\n", "\n"]))
def test_rendered_records_parse_back(recs, blank):
    parsed = parse_xe_records(render(recs, blank))
    assert parsed == [{k: v for k, _, v in fields} for fields in recs]


MAP_KEY = st.from_regex(r"[a-z][a-z0-9_:/.-]{0,15}", fullmatch=True).filter(
    lambda k: not k.endswith(":")
)
MAP_VALUE = st.from_regex(r"[A-Za-z0-9 ,.()@:_-]{0,20}", fullmatch=True).filter(
    lambda v: "; " not in v and v == v.strip() and ": " not in v
)


@pytest.mark.slow
@PROPS
@given(st.dictionaries(MAP_KEY, MAP_VALUE, max_size=6))
def test_maps_round_trip(mapping):
    text = "; ".join(f"{k}: {v}" for k, v in mapping.items())
    assert parse_xe_map(text) == mapping


@PROPS
@given(st.lists(st.text(alphabet="ab,\\ x-", max_size=8), min_size=1, max_size=5))
def test_minimal_round_trip(values):
    line = ",".join(v.replace("\\", "\\\\").replace(",", "\\,") for v in values)
    if line.strip() != line or line == "":
        return  # xe's own line is never padded; an all-empty single value reads as none
    assert parse_xe_minimal(line + "\n") == values
