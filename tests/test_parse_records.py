"""Tests for the shared record mixin and ParseError formatting."""

from __future__ import annotations

import pickle

import pytest

from xenfab.errors import XenfabError
from xenfab.parse import Clustat, HostInfo, Member, ParseError, Service


def test_parse_error_str_has_source_and_line() -> None:
    err = ParseError("bad value", source="node1:xl info", line=7)
    assert str(err) == "node1:xl info: 7: bad value"
    assert err.reason == "bad value" and err.source == "node1:xl info" and err.line == 7


@pytest.mark.parametrize(
    ("source", "line", "expected"),
    [(None, None, "msg"), ("f.cfg", None, "f.cfg: msg"), (None, 3, "3: msg")],
)
def test_parse_error_leaves_out_none_parts(source, line, expected) -> None:
    assert str(ParseError("msg", source, line)) == expected


def test_parse_error_is_value_error_and_xenfab_error() -> None:
    err = ParseError("x", "s", 1)
    assert isinstance(err, ValueError)
    assert isinstance(err, XenfabError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.line == 1


def test_record_mapping_access() -> None:
    info = HostInfo(total_mib=100, free_mib=50, cpus=4, xen_version="4.0.1", toolstack="xm")
    assert info["total_mib"] == 100
    assert info.get("cpus") == 4
    assert info.get("nope", "dflt") == "dflt"
    assert info.keys() == ["total_mib", "free_mib", "cpus", "xen_version", "toolstack"]
    assert dict(info) == info.as_dict()
    assert "free_mib" in info and "nope" not in info
    with pytest.raises(KeyError):
        info["nope"]
    with pytest.raises(AttributeError):
        info.cpus = 3  # type: ignore[misc]


def test_record_as_dict_is_deep() -> None:
    c = Clustat(
        quorate=True,
        members=[Member("n1", True, True, 1)],
        services={"vm:a": Service("started", "n1", None)},
        rgmanager_running=True,
    )
    d = c.as_dict()
    assert d["members"][0] == {"name": "n1", "online": True, "local": True, "node_id": 1}
    assert d["services"]["vm:a"]["owner"] == "n1"
    assert c["members"][0]["name"] == "n1"
