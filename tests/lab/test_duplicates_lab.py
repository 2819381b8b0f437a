"""Issue 19 on the lab: a hand `xl create` of a running guest is said by every task (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from clitools import ROOT, default_signals, fab, live_pids, no_traceback

pytestmark = pytest.mark.lab


def _running(lab) -> tuple[str, str, str]:
    """A guest the cluster runs, its host, and another host to hand-start a copy on."""
    svc = next(s for s in lab.status()["services"] if s["state"] == "started")
    other = next(h["name"] for h in lab.status()["hosts"] if h["name"] != svc["owner"])
    return svc["name"][3:], svc["owner"], other


def _dup_line(guest: str, hosts: list[str]) -> str:
    return f"DUPLICATE: {guest} runs on {' and '.join(sorted(hosts))}: stop one copy by hand"


def test_a_hand_started_copy_is_said_by_every_task_with_exit_2(fresh_lab):
    guest, owner, other = _running(fresh_lab)
    fresh_lab.inject("hand-start", guest, other)
    hosts = sorted([owner, other])
    want = [{"guest": guest, "hosts": hosts}]
    for args in (("facts",), ("check",), ("show-layout",)):
        res = fab(*args)
        no_traceback(res)
        assert res.returncode == 2, (args, res.stderr)
        assert _dup_line(guest, hosts) in res.stdout, args
        assert f"DUPLICATE: {guest} runs on" in res.stderr.strip().splitlines()[-1], args
    facts = fab("facts", "--format", "json")
    assert facts.returncode == 2 and json.loads(facts.stdout)["duplicates"] == want
    check = fab("check", "--format", "json")
    assert check.returncode == 2 and json.loads(check.stdout)["duplicates"] == want
    shown = fab("show-layout", "--format", "json")
    layout = json.loads(shown.stdout)
    assert shown.returncode == 2 and layout["duplicates"] == want
    assert any(s["guest"] == guest and "DUPLICATE" in s["reason"] for s in layout["skipped"])
    ran = fab("start-all", "--yes", "--format", "json")
    no_traceback(ran)
    assert ran.returncode == 2, ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["duplicates"] == want and doc["layout"]["duplicates"] == want
    assert guest not in {s["guest"] for s in fresh_lab.status()["starts"]}
    table = fab("start-all", "--yes")
    assert table.returncode == 2 and _dup_line(guest, hosts) in table.stdout


def test_a_down_guest_running_twice_is_never_started(fresh_lab):
    svc = next(s for s in fresh_lab.status()["services"] if s["state"] == "disabled")
    guest = svc["name"][3:]
    hosts = sorted(h["name"] for h in fresh_lab.status()["hosts"])[:2]
    for h in hosts:
        fresh_lab.inject("hand-start", guest, h)
    res = fab("start-all", "--yes")
    no_traceback(res)
    assert res.returncode == 2, res.stderr
    assert _dup_line(guest, hosts) in res.stdout
    assert guest not in {s["guest"] for s in fresh_lab.status()["starts"]}
    assert f"DUPLICATE: {guest} runs on {hosts[0]} and {hosts[1]}: never started" in res.stdout


def test_a_copy_started_during_the_run_is_found_by_its_last_round(fresh_lab):
    # Some guests started first; then a hand start of one of them fires during the next run.
    layout = json.loads(fab("show-layout", "--format", "json").stdout)
    first = layout["assignments"][0]
    res = fab("start-host", first["host"], "--yes")
    assert fresh_lab.status()["starts"], res.stderr
    other = next(h["name"] for h in fresh_lab.status()["hosts"] if h["name"] != first["host"])
    fresh_lab.inject("hand-start-on-start", first["guest"], other)
    ran = fab("start-all", "--yes", "--format", "json")
    no_traceback(ran)
    assert ran.returncode == 2, ran.stderr
    doc = json.loads(ran.stdout)
    want = {"guest": first["guest"], "hosts": sorted([first["host"], other])}
    # Not in the gathered facts: only the run's last round of domain lists saw it.
    assert doc["layout"]["duplicates"] == []
    assert doc["duplicates_checked"] is True and want in doc["duplicates"]
    assert f"DUPLICATE: {first['guest']} runs on" in ran.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_during_a_slow_gather_exits_130_with_the_last_line(fresh_lab, sig):
    fresh_lab.inject("slow", "xen03", "5000")
    tools = f"{fresh_lab.dir}/hosts/xen03/bin/"
    earlier = set(live_pids(tools))  # a command an earlier test left is not this gather's
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fabric", "facts"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
            preexec_fn=default_signals,
        )
        try:
            # Inside the gather (not in start-up, however loaded the machine): xen03's slow
            # command is running on the lab host, where it takes 5 s.
            deadline = time.monotonic() + 120
            while not set(live_pids(tools)) - earlier and time.monotonic() < deadline:
                time.sleep(0.05)
            assert set(live_pids(tools)) - earlier, "the gather never reached xen03"
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        fresh_lab.inject("slow", "xen03", "0")
    assert proc.returncode == 130, err
    no_traceback(subprocess.CompletedProcess([], 130, out, err))
    assert err.strip().splitlines()[-1] == "xenfab: interrupted"
