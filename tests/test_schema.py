"""The schema at the edge: every bad input is one line and exit 1, every good one is exact.

Covers issue 12's examples one by one (snapshot, config, command line), the generated docs, and
a property test that mutates valid configs and snapshots and runs show-layout on them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from clitools import fab, no_traceback
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenfab.config import config_from_dict, load_config, ssh_config_hosts
from xenfab.errors import ConfigError
from xenfab.snapshot import Snapshot, SnapshotError

ROOT = Path(__file__).resolve().parent.parent


def _snapshot() -> dict:
    host = {"reachable": True, "total_mib": 16384, "free_mib": 8192, "cpus": 8}
    return {
        "xenfab_snapshot": 1,
        "environment": "t",
        "taken_at": "2026-01-01T00:00:00Z",
        "master": "xen01",
        "quorate": True,
        "backend": "rgmanager",
        "hosts": [
            {
                "name": "xen01",
                **host,
                "domains": [{"name": "Domain-0", "mem_mib": 1024, "vcpus": 2}],
            },
            {"name": "xen02", **host, "domains": []},
            {"name": "xen03", **host, "free_mib": 512, "domains": []},
        ],
        "guests": [
            {"name": "lb01", "memory_mib": 1024, "vcpus": 1, "state": "disabled"},
            {"name": "db01", "memory_mib": 4096, "vcpus": 2, "state": "failed"},
            {"name": "web01", "memory_mib": 2048, "vcpus": 2, "state": "started", "owner": "xen02"},
        ],
        "errors": [],
        "warnings": [],
    }


def _config() -> dict:
    return {
        "default_env": "t",
        "policy": {"strategy": "most-free", "reserve_mib": 256},
        "start": {"max_starts_per_host": 2},
        "environments": {
            "t": {
                "hosts": ["xen01", "xen02", {"name": "xen03", "location": "dc2"}],
                "guest_config_dir": "/xenconfig",
                "ssh": {"connect_timeout": 5, "port": 22},
                "policy": {"exclude": ["xen03"]},
            }
        },
    }


def _write_snapshot(tmp_path: Path, data) -> str:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(data))
    return str(path)


# --- the snapshot examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["guests"][0].update(memory_mib="abc"),
            "guests[0].memory_mib: input should be",
        ),
        (lambda d: d["guests"][0].update(name=5), "guests[0].name: input should be a valid string"),
        (lambda d: d["hosts"][0].update(reachable="no"), "hosts[0].reachable: input should be a"),
        (lambda d: d["guests"][0].update(running_on="xen01"), "guests[0].running_on: input should"),
        (
            lambda d: d["hosts"][1].update(free_mib=float("nan")),
            "hosts[1].free_mib: input should be",
        ),
        (lambda d: d["hosts"][1].update(rtt_ms=float("inf")), "hosts[1].rtt_ms: input should be a"),
        (lambda d: d["hosts"][1].update(free_mib=-1), "hosts[1].free_mib: input should be greater"),
        (lambda d: d["hosts"][1].update(free_mib=True), "hosts[1].free_mib: input should be a"),
        (lambda d: d["guests"][0].update(name="lb01 "), "guests[0].name: 'lb01 ': empty or"),
        (
            lambda d: d["guests"].append(dict(d["guests"][0])),
            "guests[3]: 'lb01' is listed twice (also guests[0])",
        ),
        (
            lambda d: d["hosts"].append(dict(d["hosts"][0])),
            "hosts[3]: 'xen01' is listed twice (also hosts[0])",
        ),
        (lambda d: d["guests"][0].update(colour="red"), "guests[0].colour: unknown key"),
        (lambda d: d.update(quorate="yes"), "quorate: input should be a valid boolean"),
        (lambda d: d.update(xenfab_snapshot=True), "not a xenfab snapshot"),
        (lambda d: d["hosts"][0].pop("name"), "hosts[0].name: missing (required)"),
        (lambda d: d["hosts"][0]["domains"][0].update(vcpus=None), "domains[0].vcpus: input"),
    ],
)
def test_bad_snapshot_is_one_line_naming_the_key(tmp_path, mutate, message):
    data = _snapshot()
    mutate(data)
    with pytest.raises(SnapshotError) as err:
        Snapshot.load(_write_snapshot(tmp_path, data))
    text = str(err.value)
    assert message in text and text.startswith(str(tmp_path)) and "\n" not in text


def test_snapshot_deep_nesting_and_bad_bytes_are_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"xenfab_snapshot": 1, "hosts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SnapshotError, match="nested too deeply"):
        Snapshot.load(str(path))
    nested = _snapshot()
    nested["errors"] = [[[[["x"]]]]]
    with pytest.raises(SnapshotError, match=r"errors\[0\]: input should be a valid string"):
        Snapshot.from_dict(nested)
    raw = json.dumps(_snapshot()).encode().replace(b'"lb01"', b'"lb\xff01"')
    path.write_bytes(raw)
    with pytest.raises(SnapshotError, match=r"deep.json:1: not valid UTF-8"):
        Snapshot.load(str(path))


def test_valid_snapshot_round_trips_exactly(tmp_path):
    snap = Snapshot.load(_write_snapshot(tmp_path, _snapshot()))
    assert Snapshot.from_dict(json.loads(snap.to_json())) == snap
    assert snap.hosts[1].free_mib == 8192 and snap.guests[1].state == "failed"


# --- the config examples -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(default_env=["t"]), "f.yaml: default_env: input should be a valid"),
        (
            lambda d: d["environments"]["t"]["ssh"].update(connect_timeout=float("inf")),
            "f.yaml: environments.t.ssh.connect_timeout: input should be a finite number",
        ),
        (lambda d: d.update(audit_log=None), "f.yaml: audit_log: input should be a valid string"),
        (
            lambda d: d["environments"]["t"]["hosts"].append("xen01"),
            "f.yaml: environments.t.hosts[3]: 'xen01' is listed twice (also environments.t.hosts[0])",
        ),
        (
            lambda d: d["environments"]["t"]["hosts"].append({"name": "xen02"}),
            "environments.t.hosts[3]: 'xen02' is listed twice (also environments.t.hosts[1])",
        ),
        (lambda d: d["environments"]["t"]["hosts"].append("xen04 "), "hosts[3].name: 'xen04 '"),
        (lambda d: d["policy"].update(reserve_mib=float("nan")), "policy.reserve_mib: input"),
        (lambda d: d["policy"].update(reserve_mib=True), "policy.reserve_mib: input should be a"),
        (lambda d: d["policy"].update(reserve_mib=2**70), "policy.reserve_mib: input should be"),
        (lambda d: d["start"].update(max_starts_in_flight="8"), "start.max_starts_in_flight: in"),
        (lambda d: d["start"].update(tier_timeout_s=0), "start.tier_timeout_s: input should be"),
        (lambda d: d["policy"].update(max_starts_per_host=2), "moved to start.max_starts_per_host"),
        (
            lambda d: d["environments"]["t"]["policy"].update(tier_timeout_s=9),
            "environments.t.policy.tier_timeout_s: moved to environments.t.start.tier_timeout_s",
        ),
        (lambda d: d["environments"]["t"].update(master="xen09"), "environments.t.master: 'xen09'"),
        (lambda d: d["environments"]["t"]["ssh"].update(port=0), "environments.t.ssh.port: input"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(mutate, message):
    data = _config()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, "f.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_valid_config_is_typed_and_merged():
    cfg = config_from_dict(_config(), "f.yaml")
    env = cfg.environment()
    # reserve_mib from the file's policy, exclude from the environment's, both typed.
    assert env.policy.reserve_mib == 256 and env.policy.exclude == ["xen03"]
    assert env.policy.strategy == "most-free" and cfg.policy.exclude == []
    assert env.start.max_starts_per_host == 2 and env.start.max_starts_in_flight == 8
    assert env.ssh.connect_timeout == 5.0 and env.ssh.port == 22
    assert [h.name for h in env.hosts] == ["xen01", "xen02", "xen03"]


def _alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_fails_fast(tmp_path):
    bomb = _alias_bomb()
    assert len(bomb) < 2048
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    began = time.monotonic()
    with pytest.raises(ConfigError, match=r"bomb.yaml:2: alias \*a: aliases are not allowed"):
        load_config(str(path))
    assert time.monotonic() - began < 1.0


@pytest.mark.slow
def test_yaml_duplicate_key_bad_bytes_and_nesting(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("environments: {}\nenvironments: {}\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: key 'environments' given twice"):
        load_config(str(path))
    path.write_bytes(b"default_env: \xff\n")
    with pytest.raises(ConfigError, match=r"c.yaml:1: not valid UTF-8"):
        load_config(str(path))
    path.write_text("policy: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "\n" not in str(err.value)


def test_ssh_config_hosts_are_the_names_paramiko_reads(tmp_path):
    import paramiko

    text = (
        "Host xen01 xen02\n  User root\nhost xen03 !xen9* *\nMatch all\n  Port 22\n"
        'Host="xen04" xen05\n  Port 23\n'
    )
    path = tmp_path / "ssh_config"
    path.write_text(text)
    assert ssh_config_hosts(str(path)) == ["xen01", "xen02", "xen03", "xen04", "xen05"]
    # The same aliases paramiko resolves (its get_hostnames() fails on the Match block).
    plain = paramiko.SSHConfig.from_text(text.replace("Match all\n  Port 22\n", ""))
    assert {n for n in plain.get_hostnames() if n != "*" and "*" not in n and "!" not in n} == {
        "xen01",
        "xen02",
        "xen03",
        "xen04",
        "xen05",
    }
    assert ssh_config_hosts(str(tmp_path / "missing")) == []
    (tmp_path / "bad").write_text('Host "unclosed\n')
    with pytest.raises(ConfigError, match="bad: 1: cannot read ssh_config"):
        ssh_config_hosts(str(tmp_path / "bad"))


def test_cluster_backend_uses_the_one_host_name_rule():
    from xenfab import schema
    from xenfab.cluster import base

    assert base.HOST_NAME is schema.HOST_NAME


# --- the command line ----------------------------------------------------------------------


def _run(*argv: str) -> tuple[int, str, str]:
    """Run the xenfab program in this process: (exit code, stdout, stderr)."""
    from xenfab.tasks import program

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            program.run(["xenfab", *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["start-all", "--parallel", "abc"], "xenfab: --parallel: input should be a valid integer"),
        (["start-all", "--parallel", "-1"], "xenfab: --parallel: input should be greater than"),
        (["start-host", "xen01", "--parallel", "1.5"], "xenfab: --parallel: input should be"),
        (["lab.up", "--boot-s", "xyz"], "xenfab: --boot-s: input should be a valid number"),
        (["lab.up", "--hosts", "many"], "xenfab: --hosts: input should be a valid integer"),
        (["demo", "--boot-s", "nan"], "xenfab: --boot-s: input should be a finite number"),
        (["trust-host", ""], "xenfab: HOST: '': empty or surrounded by whitespace"),
        (["trust-host", "xen01;reboot"], "xenfab: HOST: 'xen01;reboot' is not a valid host name"),
        (["capacity", "--max-k", "two"], "xenfab: --max-k: input should be a valid integer"),
        (["capacity", "--time-budget", "-3"], "xenfab: --time-budget: input should be greater"),
        (["show-layout", "--strategy", "fastest"], "xenfab: --strategy: input should be"),
        (["show-layout", "--exclude", "xen 3"], "xenfab: --exclude: 'xen 3' is not a valid host"),
    ],
)
def test_cli_options_are_checked_by_the_schema(tmp_path, monkeypatch, argv, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_config()))
    snap = _write_snapshot(tmp_path, _snapshot())
    monkeypatch.setenv("XENFAB_CONFIG", str(cfg))
    monkeypatch.setenv("XENFAB_LAB_DIR", str(tmp_path / "lab"))
    if argv[0] in ("show-layout", "capacity"):
        argv = [*argv, "--from", snap]
    code, out, err = _run(*argv)
    assert code == 1, (out, err)
    assert err.strip().splitlines() == [err.strip()] and err.startswith(message), err
    assert "Traceback" not in err + out
    assert not (tmp_path / "lab").exists()  # nothing was started


def test_help_shows_that_numeric_options_take_a_value():
    for task, flags in (
        ("start-all", ("--parallel",)),
        ("lab.up", ("--boot-s", "--hosts", "--latency-ms")),
        ("demo", ("--boot-s",)),
        ("capacity", ("--max-k", "--time-budget")),
    ):
        _code, out, _err = _run("--help", task)
        for flag in flags:
            assert f"{flag}=" in out, (task, flag, out)


def test_fab_cli_one_line_without_traceback(tmp_path):
    # The real CLI, once: the same check as in-process, through `fab`.
    res = fab("start-all", "--parallel", "abc", "--config", str(tmp_path / "none.yaml"))
    no_traceback(res)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "xenfab: --parallel: input should be a valid integer, "
        "unable to parse string as an integer, got 'abc'"
    )


# --- reserve_mib: from the YAML to the fit test, through the schema and the planner only -------


def test_reserve_mib_reaches_the_fit_test(tmp_path, monkeypatch):
    data = _config()
    data["environments"]["t"]["policy"] = {}
    data["policy"] = {"reserve_mib": 7168, "strategy": "most-free"}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("XENFAB_CONFIG", str(cfg))
    snap = _write_snapshot(tmp_path, _snapshot())
    code, out, err = _run("show-layout", "--from", snap, "--format", "json")
    layout = json.loads(out)
    # 8192 free - 7168 reserved = 1024: lb01 (1024) fits, db01 (4096) fits nowhere.
    assert {a["guest"] for a in layout["assignments"]} == {"lb01"}
    assert [u["guest"] for u in layout["unplaced"]] == ["db01"]
    assert "Traceback" not in err


# --- generated docs -------------------------------------------------------------------------


def test_docs_tables_are_generated_from_the_schema():
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gendocs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    reference = (ROOT / "docs" / "configuration.md").read_text()
    assert "| `start.max_starts_in_flight` | `8` |" in reference
    assert "| `reserve_mib` | `0` |" in (ROOT / "docs" / "policy.md").read_text()


def test_stale_docs_are_detected(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gendocs
    finally:
        sys.path.pop(0)
    readme = (ROOT / "docs" / "configuration.md").read_text()
    stale = readme.replace(
        "| `start.max_starts_in_flight` | `8` |", "| `start.max_starts_in_flight` | `9` |"
    )
    assert stale != readme
    assert gendocs.render(stale, gendocs.BLOCKS["docs/configuration.md"]) == readme


# --- the property: mutated inputs give one line and exit 1, or an exact valid layout -------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "abc", " xen01", "xen01 ", "no", "1e9", "xen01;rm -rf /", "\u00e9\u0000"]),
    st.recursive(st.integers(0, 3), lambda inner: st.lists(inner, max_size=2), max_leaves=4),
    st.just({"unexpected": 1}),
    st.just([[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw, base):
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "drop", "extra"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "extra" and isinstance(parent, dict):
            parent["zz_" + str(draw(st.integers(0, 9)))] = copy.deepcopy(draw(JUNK))
        else:
            # A copy: st.just() hands out one object, and a later mutation must not change it.
            parent[path[-1]] = copy.deepcopy(draw(JUNK))
    return data


def _one_line_or_layout(code: int, out: str, err: str) -> dict | None:
    assert "Traceback" not in out + err
    if code == 1:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("xenfab: "), err
        return None
    assert code in (0, 2, 3), (code, err)
    layout = json.loads(out)
    assert isinstance(layout["assignments"], list)
    return layout


def _same(given, loaded) -> None:
    """Everything the input said is in the loaded snapshot, unchanged (nothing coerced)."""
    if isinstance(given, dict):
        for key, value in given.items():
            _same(value, loaded[key])
    elif isinstance(given, list):
        assert len(given) == len(loaded)
        for a, b in zip(given, loaded, strict=True):
            _same(a, b)
    else:
        # A whole number where a float is declared is the one conversion allowed.
        assert type(given) is type(loaded) or (type(given), type(loaded)) == (int, float), (
            given,
            loaded,
        )
        assert given == loaded  # NaN never equals: it must never be accepted


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.slow
@FUZZ
@given(data=mutated(_snapshot()), bad_bytes=st.sampled_from([None, b"\xff", b"\xc3", b"\x00"]))
def test_fuzzed_snapshots_give_one_line_or_an_exact_layout(tmp_path_factory, data, bad_bytes):
    tmp = tmp_path_factory.mktemp("fz")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(_config()))
    raw = json.dumps(data).encode()
    if bad_bytes is not None:
        raw = raw.replace(b'"lb01"', b'"lb' + bad_bytes + b'01"', 1)
    snap = tmp / "s.json"
    snap.write_bytes(raw)
    code, out, err = _run(
        "show-layout", "--from", str(snap), "--config", str(cfg), "--format", "json"
    )
    if _one_line_or_layout(code, out, err) is not None:
        loaded = Snapshot.load(str(snap)).to_dict()
        _same(json.loads(raw.decode("utf-8")), loaded)


def _config_kept(data: dict, cfg_path: Path) -> None:
    """An accepted config kept every scalar it was given, unconverted (defaults fill the rest)."""
    cfg = load_config(str(cfg_path))
    for name, raw in data["environments"].items():
        env = cfg.environment(name)
        for section, typed in (("policy", env.policy), ("start", env.start), ("ssh", env.ssh)):
            given = {**(data.get(section) or {})} if section != "ssh" else {}
            given.update(raw.get(section) or {})
            for key, value in given.items():
                if isinstance(value, (bool, int, float, str)) and key != "config":
                    _same(value, getattr(typed, key))


@pytest.mark.slow
@FUZZ
@given(data=mutated(_config()), bad_bytes=st.sampled_from([None, b"\xff", b"\xed\xa0\x80"]))
def test_fuzzed_configs_give_one_line_or_a_layout(tmp_path_factory, data, bad_bytes):
    tmp = tmp_path_factory.mktemp("fz")
    cfg = tmp / "c.yaml"
    try:
        text = yaml.safe_dump(data)
    except (yaml.YAMLError, ValueError):
        return  # not representable as YAML: not an input anyone can write
    raw = text.encode()
    if bad_bytes is not None:
        raw = raw.replace(b"xen01", b"xen" + bad_bytes + b"01", 1)
    cfg.write_bytes(raw)
    snap = _write_snapshot(tmp, _snapshot())
    code, out, err = _run("show-layout", "--from", snap, "--config", str(cfg), "--format", "json")
    if _one_line_or_layout(code, out, err) is not None:
        _config_kept(yaml.safe_load(raw.decode("utf-8")), cfg)
