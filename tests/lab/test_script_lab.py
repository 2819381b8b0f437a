"""`fab show-layout --format script`, run by hand on the lab the way an admin would run it."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from clitools import fab, no_traceback

pytestmark = pytest.mark.lab


def _script(*env: str) -> tuple[str, dict]:
    res = fab("show-layout", "--format", "script", *env)
    no_traceback(res)
    # legacy07 (its config computes its name) fits nowhere in the default scenario: exit 2.
    assert res.returncode == 2, res.stderr
    layout = json.loads(fab("show-layout", "--format", "json", *env).stdout)
    return res.stdout, layout


def _readable(text: str) -> None:
    assert text.startswith("#!/bin/sh\n")
    assert "NO audit record" in text and "NO lock" in text
    assert all(len(line) <= 100 for line in text.splitlines()), max(text.splitlines(), key=len)
    check = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    assert text.count("up() {") == 1  # the guard is defined once


def _running(lab) -> set[str]:
    return {
        s["name"].removeprefix("vm:")
        for s in lab.status()["services"]
        if s["state"] in ("started", "running")
    }


def _until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not up in time"
        time.sleep(0.2)


def test_rgmanager_script_brings_the_planned_guests_up_on_the_master(fresh_lab):
    text, layout = _script()
    _readable(text)
    planned = [a["guest"] for a in layout["assignments"]]
    lines = [ln for ln in text.splitlines() if ln.startswith("up ")]
    assert [ln.split()[1] for ln in lines] == sorted(
        planned, key=lambda g: next(a["tier"] for a in layout["assignments"] if a["guest"] == g)
    )
    # A failed service's line carries its state: the guard re-reads it before clusvcadm -d.
    failed = [a["guest"] for a in layout["assignments"] if a["state"] == "failed"]
    assert failed and all(
        f"up {g} " in text and re.search(rf"^up {g} \S+ failed$", text, re.M) for g in failed
    )
    assert fresh_lab.status()["starts"] == []
    run = subprocess.run(
        ["ssh", "-F", str(fresh_lab.ssh_config), "xen01", "sh -s"],
        input=text,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 start(s) skipped or failed" in run.stdout
    _until(lambda: set(planned) <= _running(fresh_lab))  # the lab boots each in 1 s
    # Run again: every guard refuses (each guest reads started now), nothing is sent twice.
    starts = len(fresh_lab.status()["starts"])
    again = subprocess.run(
        ["ssh", "-F", str(fresh_lab.ssh_config), "xen01", "sh -s"],
        input=text,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == len(planned), again.stdout + again.stderr
    assert again.stdout.count("SKIP ") == len(planned)
    assert len(fresh_lab.status()["starts"]) == starts


def test_xl_script_has_a_section_per_host_each_run_on_its_host(xl_lab):
    text, layout = _script("--env", "lab-xl")
    _readable(text)
    hosts = sorted({a["host"] for a in layout["assignments"]})
    assert len(hosts) > 1
    for host in hosts:
        assert f"# ===== on {host} " in text
    for host in hosts:
        run = subprocess.run(
            ["ssh", "-F", str(xl_lab.ssh_config), host, f"sh -s {host}"],
            input=text,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, (host, run.stdout + run.stderr)
    after = json.loads(fab("facts", "--format", "json", "--env", "lab-xl").stdout)
    where = {d["name"]: h["name"] for h in after["hosts"] for d in h["domains"]}
    assert {a["guest"]: where.get(a["guest"]) for a in layout["assignments"]} == {
        a["guest"]: a["host"] for a in layout["assignments"]
    }
    # A host with no section is told so, and nothing runs there.
    nobody = subprocess.run(
        ["ssh", "-F", str(xl_lab.ssh_config), hosts[0], "sh -s xen99"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nobody.returncode == 1 and "no section here" in nobody.stderr
