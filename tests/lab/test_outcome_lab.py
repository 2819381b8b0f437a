"""How every run ends (issue 11): exit codes, the STILL DOWN block, one JSON document, refusals.

Each test runs the real `fab` over the lab and checks the last lines, the exit code, and (from
the lab's own record of starts) that nothing was started twice.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest
from clitools import ROOT, fab, fab_interrupted, no_traceback

pytestmark = pytest.mark.lab
DOWN = ("disabled", "failed", "stopped")


def down_services(lab) -> set[str]:
    return {s["name"][3:] for s in lab.status()["services"] if s["state"] in DOWN}


def never_twice(lab) -> None:
    # A failed attempt is recorded too (and retried elsewhere): only successes count.
    counts = Counter(s["guest"] for s in lab.status()["starts"] if s["ok"])
    assert all(n == 1 for n in counts.values()), counts


def block(stdout: str) -> tuple[str, list[str]]:
    """The closing STILL DOWN block: its head line and its guest lines; it must end stdout."""
    lines = stdout.rstrip("\n").splitlines()
    head = max(i for i, line in enumerate(lines) if line.startswith("STILL DOWN"))
    rest = lines[head + 1 :]
    if "" in rest:
        # Then only its footnotes: a reason too long for its line is said whole once, below.
        notes = rest[rest.index("") + 1 :]
        assert all(re.match(r"  \[\d+\] |\s{5,}\S", line) for line in notes), notes
        rest = rest[: rest.index("")]
    assert all(line.startswith("  ") for line in rest), rest  # nothing after the block
    return lines[head], [line.split()[0] for line in rest]


def expected_code(still: list) -> int:
    return 2 if still else 0


def test_every_task_prints_one_json_document(fresh_lab, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    runs = {}
    for args in (
        ("facts",),
        ("check",),
        ("capacity",),
        ("show-layout",),
        ("start-all", "--dry-run"),
        ("start-host", "xen06", "--dry-run"),
        ("lab.status",),
        ("start-all", "--yes"),
    ):
        res = fab(*args, "--format", "json", env=env)
        no_traceback(res)
        runs[args[0] + " ".join(args[1:])] = (res, json.loads(res.stdout))
    res, layout = runs["show-layout"]
    for key in ("warnings", "gather_errors", "quorate", "taken_at", "age_s", "refused"):
        assert key in layout, key
    assert layout["quorate"] is True and layout["refused"] is None and layout["age_s"] >= 0
    assert res.returncode == expected_code(layout["unplaced"]), res.stderr
    res, dry = runs["start-all--dry-run"]
    assert dry["dry_run"] is True and dry["layout"]["assignments"] == layout["assignments"]
    assert res.returncode == expected_code(dry["still_down"])
    res, ran = runs["start-all--yes"]
    assert ran["dry_run"] is False and ran["counts"]["started"] == len(layout["assignments"])
    assert "starting" in res.stderr  # the progress went to stderr
    assert [(u["guest"], u["reason"]) for u in ran["layout"]["unplaced"]] == [
        (s["guest"], s["reason"]) for s in ran["still_down"]
    ]
    assert res.returncode == expected_code(ran["still_down"]), res.stderr
    never_twice(fresh_lab)
    # A lab run's audit log is the lab's, never the admin's real one.
    assert (fresh_lab.dir / "audit.jsonl").exists()
    assert not (home / ".local" / "state" / "xenfab").exists()


def test_inquorate_is_refused_first_and_exits_3(fresh_lab):
    fresh_lab.inject("inquorate")
    try:
        shown = fab("show-layout")
        assert shown.returncode == 3, shown.stderr
        assert shown.stdout.startswith("REFUSED: the cluster is not quorate")
        head, guests = block(shown.stdout)
        assert guests and "not quorate" in shown.stderr.strip().splitlines()[-1]
        facts = fab("facts")
        assert facts.returncode == 3 and "not quorate" in facts.stderr
        started = fab("start-all", "--yes")
        assert started.returncode == 3 and started.stdout.startswith("REFUSED")
        assert sorted(block(started.stdout)[1]) == sorted(guests)
        as_json = fab("start-all", "--yes", "--format", "json")
        doc = json.loads(as_json.stdout)
        assert as_json.returncode == 3 and "not quorate" in doc["refused"]
        assert doc["layout"]["quorate"] is False
        # A closed stdout keeps the code and the error line.
        piped = subprocess.run(
            [
                "bash",
                "-c",
                f'"{sys.executable}" -m fabric check | true; exit "${{PIPESTATUS[0]}}"',
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert piped.returncode == 3 and "not quorate" in piped.stderr, piped.stderr
        no_traceback(piped)
        assert fresh_lab.status()["starts"] == []
    finally:
        fresh_lab.inject("quorate")


def test_failed_start_ends_still_down_with_exit_2(fresh_lab):
    layout = json.loads(fab("show-layout", "--format", "json").stdout)
    victim = layout["assignments"][0]["guest"]
    fresh_lab.inject("start-fails", victim)
    res = fab("start-all", "--yes")
    no_traceback(res)
    assert res.returncode == 2, res.stderr
    head, guests = block(res.stdout)
    assert victim in guests and "recovery incomplete" in res.stderr
    never_twice(fresh_lab)


def test_ctrl_c_during_starts_exits_130_and_lists_what_was_not_started(fresh_lab):
    res = fab_interrupted(
        "start-all", "--yes", "--parallel", "1", when=lambda: bool(fresh_lab.status()["starts"])
    )
    out, err = res.stdout, res.stderr
    assert res.returncode == 130, err
    no_traceback(res)
    head, guests = block(out)
    started = {s["guest"] for s in fresh_lab.status()["starts"] if s["ok"]}
    assert guests and started.isdisjoint(guests)
    assert "interrupted" in err.strip().splitlines()[-1]
    never_twice(fresh_lab)


def test_start_host_refuses_an_empty_unknown_excluded_or_down_host(fresh_lab):
    for args, says in (
        (("",), "no host given"),
        ((",",), "no host given"),
        (("xen09",), "no host xen09"),
        (("xen03", "--exclude", "xen03"), "xen03 is excluded"),
    ):
        res = fab("start-host", *args, "--yes")
        no_traceback(res)
        assert res.returncode == 1 and says in res.stderr, (args, res.stderr)
    fresh_lab.inject("host-down", "xen03")
    try:
        res = fab("start-host", "xen03", "--yes")
        assert res.returncode == 1 and "xen03 is unreachable" in res.stderr, res.stderr
        assert "--dead xen03" in res.stderr
        typo = fab("show-layout", "--dead", "xen3")
        assert typo.returncode == 1 and "--dead: no host xen3" in typo.stderr
    finally:
        fresh_lab.inject("host-up", "xen03")
    assert fresh_lab.status()["starts"] == []


def test_escape_sequences_from_a_host_never_reach_the_terminal(fresh_lab):
    evil = fresh_lab.dir / "xenconfig" / "evil.cfg"
    evil.write_text('name="evil\x1b]0;pwned\x07\x1b[31m"\nmemory=512\nvcpus=1\n')
    try:
        for args in (("facts",), ("show-layout",)):
            res = fab(*args)
            assert "\x1b" not in res.stdout + res.stderr and "\x07" not in res.stdout
        assert "evil\\x1b]0;pwned\\x07" in fab("facts").stdout
    finally:
        evil.unlink()


def test_demo_ends_with_the_still_down_block_and_the_code(lab, tmp_path):
    # Its own lab (the demo restarts the lab it runs in): the session's stays as it is.
    env = {"XENFAB_LAB_DIR": str(tmp_path / "demo")}
    try:
        res = fab("demo", "--guests", "30", "--boot-s", "0.5", env=env)
    finally:
        fab("lab.down", env=env)
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.rstrip().splitlines()
    assert len(lines) < 100, res.stdout  # readable in one scroll, each part said once
    assert lines[-1].startswith("fab start-all exit code ")
    code = int(lines[-1].split()[4].rstrip(":"))
    head = max(i for i, line in enumerate(lines) if line.startswith("STILL DOWN"))
    still = lines[head + 1 : -1]
    assert all(line.startswith("  ") for line in still)
    assert code == (2 if still else 0)
    assert code == 2 and any(line.split()[0] == "legacy07" for line in still), still
    assert lines[-1].count("recovery incomplete") == 1, lines[-1]  # the meaning said once


# -- the runs of issue 11's list, each ending with the right block and code ---------------------


def _config(lab, tmp_path, **env_extra) -> str:
    import yaml

    cfg = yaml.safe_load((ROOT / "fabfile_config.yaml").read_text())
    cfg["environments"]["lab"].update(env_extra)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_missing_config_dir_leaves_every_down_guest_still_down(fresh_lab, tmp_path):
    cfg = _config(fresh_lab, tmp_path, guest_config_dir=str(tmp_path / "nowhere"))
    res = fab("show-layout", "--config", cfg)
    no_traceback(res)
    assert res.returncode == 2, res.stderr
    head, guests = block(res.stdout)
    assert set(guests) == down_services(fresh_lab)
    doc = json.loads(fab("show-layout", "--config", cfg, "--format", "json").stdout)
    assert doc["complete"] is False and {u["guest"] for u in doc["unplaced"]} == set(guests)
    started = fab("start-all", "--yes", "--config", cfg)
    assert started.returncode == 2 and set(block(started.stdout)[1]) == set(guests)
    assert fresh_lab.status()["starts"] == []


def test_a_failed_start_is_not_lost_to_the_next_run(fresh_lab):
    fresh_lab.inject("start-fails", "web01")
    first = fab("start-all", "--yes")
    assert first.returncode == 2, first.stderr
    assert {"web01", "legacy07"} <= set(block(first.stdout)[1])
    fresh_lab.inject("start-ok", "web01")
    again = fab("start-all", "--yes")
    assert again.returncode == 2, again.stderr
    assert block(again.stdout)[1] == ["legacy07"]
    assert "web01" not in down_services(fresh_lab)
    never_twice(fresh_lab)


def test_a_typo_in_exclude_is_an_error_before_anything_starts(fresh_lab):
    res = fab("start-all", "--yes", "--exclude", "xen3")
    no_traceback(res)
    assert res.returncode == 1 and "xen3" in res.stderr
    assert fresh_lab.status()["starts"] == []


def test_an_unreadable_owner_keeps_its_guests_still_down_until_declared_dead(fresh_lab):
    owned = {
        s["name"][3:]
        for s in fresh_lab.status()["services"]
        if s["state"] == "started" and s["owner"] == "xen03"
    }
    assert owned
    # The cluster still shows xen03 a member, but xen03 cannot list its domains: the guests
    # the cluster shows there may still run; only --dead moves them.
    fresh_lab.inject("command-fails", "xen03")
    try:
        shown = fab("show-layout")
        assert shown.returncode == 2, shown.stderr
        assert owned <= set(block(shown.stdout)[1])
        assert "--dead xen03" in shown.stdout
        dead = fab("start-all", "--yes", "--dead", "xen03")
        assert dead.returncode == 2, dead.stderr
        assert not owned & set(block(dead.stdout)[1]), dead.stdout
        assert owned <= {s["guest"] for s in fresh_lab.status()["starts"] if s["ok"]}
        never_twice(fresh_lab)
        audit = [json.loads(line) for line in (fresh_lab.dir / "audit.jsonl").open()]
        assert any("xen03" in json.dumps(r) and "declared dead" in json.dumps(r) for r in audit)
    finally:
        fresh_lab.inject("command-ok", "xen03")
