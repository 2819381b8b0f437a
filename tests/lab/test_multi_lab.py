"""Over a lab of 3 clusters: one run over several environments, each cluster on its own."""

from __future__ import annotations

import json
import os
import re

import pytest
from clitools import ROOT, answer_on_pty, fab, fab_interrupted, no_traceback

pytestmark = pytest.mark.lab
ENVS = "lab-c1,lab-c2,lab-c3"
GUEST_WORD = re.compile(r"\b[a-z]+\d\d\b")


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """Three small clusters (3 hosts, 8 guests each) in a lab of their own; c2 inquorate."""
    if not os.path.exists("/usr/sbin/sshd"):
        pytest.skip("/usr/sbin/sshd is missing")
    from xenfab import lab

    path = tmp_path_factory.mktemp("clusters")
    lab.up(path, clusters=3, hosts=3, guests=8, seed=1, boot_s=0.2)
    try:
        lab.inject(path, "inquorate", "c2-xen01")
        yield path
    finally:
        lab.down(path)


def _fab(path, *args):
    res = fab(*args, env={"XENFAB_LAB_DIR": str(path)})
    no_traceback(res)
    return res


def _names(path) -> set[str]:
    from xenfab import lab

    return {s["name"][3:] for s in lab.status(path)["services"]}


def test_every_line_naming_a_guest_names_its_environment(clusters):
    from xenfab import lab

    st = lab.status(clusters)
    by_cluster: dict[str, set[str]] = {}
    for s in st["services"]:
        by_cluster.setdefault(s["cluster"], set()).add(s["name"][3:])
    shared = by_cluster["lab-c1"] & by_cluster["lab-c3"]
    assert shared, "the scenario gives two clusters a guest name in common"
    res = _fab(clusters, "show-layout", "--env", ENVS)
    assert res.returncode == 2, res.stderr
    names = _names(clusters)
    lines = [ln for ln in res.stdout.splitlines() if set(GUEST_WORD.findall(ln)) & names]
    assert lines
    for line in lines:
        assert re.match(r"\s*\[lab-c[123]\]", line), line
    assert "SUMMARY: 3 cluster(s)" in res.stdout


def test_one_inquorate_cluster_is_refused_the_others_recover(clusters):
    from xenfab import lab

    before = {s["name"]: s["state"] for s in lab.status(clusters / "c2")["services"]}
    res = _fab(clusters, "start-all", "--env", ENVS, "--yes", "--format", "json")
    assert res.returncode == 2, res.stderr
    doc = json.loads(res.stdout)  # one document
    envs = doc["environments"]
    assert set(envs) == {"lab-c1", "lab-c2", "lab-c3"}
    refused = envs["lab-c2"]["refused"]
    assert refused and "not quorate" in refused
    row = {r["environment"]: r for r in doc["summary"]}
    assert row["lab-c2"]["started"] == 0 and "not quorate" in row["lab-c2"]["refused"]
    planned_c2 = {a["guest"] for a in envs["lab-c2"]["layout"]["assignments"]}
    still_c2 = {s["guest"] for s in doc["still_down"] if s["environment"] == "lab-c2"}
    assert planned_c2 and planned_c2 <= still_c2
    # Nothing of the refused cluster was touched: no start, no audit intent, states as before.
    c2 = lab.status(clusters / "c2")
    assert c2["starts"] == []
    assert {s["name"]: s["state"] for s in c2["services"]} == before
    audit = clusters / "c2" / "audit.jsonl"
    assert not audit.exists() or "intent" not in audit.read_text()
    for env, sub in (("lab-c1", "c1"), ("lab-c3", "c3")):
        planned = {a["guest"]: a["host"] for a in envs[env]["layout"]["assignments"]}
        started = {r["guest"]: r["host"] for r in envs[env]["results"] if r["outcome"] == "started"}
        assert planned and started == planned, env  # recovered fully, where planned
        assert all(h.startswith(f"{sub}-") for h in started.values())  # in its own cluster
        left = [s for s in doc["still_down"] if s["environment"] == env]
        assert {s["guest"] for s in left} == {u["guest"] for u in envs[env]["layout"]["unplaced"]}
        running = {s["name"][3:] for s in lab.status(clusters / sub)["services"]
                   if s["state"] == "started"}  # fmt: skip
        assert set(planned) <= running
    # Progress lines of the parallel engines each name their cluster.
    names = _names(clusters)
    for line in res.stderr.splitlines():
        if set(GUEST_WORD.findall(line)) & names:
            assert re.match(r"\[lab-c[13]\]|xenfab: ", line), line


def test_one_ctrl_c_stops_every_cluster_s_starts_and_waits_for_those_in_flight(tmp_path):
    """The first Ctrl-C is the flag each cluster's engine reads between two steps: 130."""
    from collections import Counter

    from xenfab import lab

    path = tmp_path / "two"
    lab.up(path, clusters=2, hosts=2, guests=8, seed=3, boot_s=1.0)
    try:
        res = fab_interrupted(
            "start-all",
            "--env",
            "lab-c1,lab-c2",
            "--yes",
            "--parallel",
            "1",
            when=lambda: bool(lab.status(path)["starts"]),
            env={"XENFAB_LAB_DIR": str(path)},
        )
        out, err = res.stdout, res.stderr
        no_traceback(res)
        assert res.returncode == 130, err
        st = lab.status(path)
        started = Counter((s["cluster"], s["guest"]) for s in st["starts"] if s["ok"])
        assert started and all(n == 1 for n in started.values()), started
        down = sum(1 for s in st["services"] if s["state"] in ("disabled", "failed"))
        assert down > 0  # one at a time per cluster: the Ctrl-C left some not started
        # Each cluster said it stopped its own way, and nothing was cut short in a step.
        assert err.count("interrupted: starting nothing new") == 2, err
        assert "STILL DOWN" in out
    finally:
        lab.down(path)


def test_step_across_clusters_asks_each_prefixed_and_q_ends_the_whole_run(tmp_path):
    """--step over two clusters: one terminal, questions named by cluster; q ends both."""
    import pty
    import sys

    from xenfab import lab

    path = tmp_path / "two"
    lab.up(path, clusters=2, hosts=2, guests=6, seed=3, boot_s=0.2)
    try:
        pid, fd = pty.fork()
        if pid == 0:  # the child: fab on the pty as its terminal
            os.chdir(ROOT)
            os.environ["XENFAB_LAB_DIR"] = str(path)
            args = ["-m", "fabric", "start-all", "--env", "lab-c1,lab-c2", "--step"]
            os.execv(sys.executable, [sys.executable, *args])
        try:
            text, asked = answer_on_pty(fd, b"[Enter=yes, s=skip, q=quit]", ["\n", "q\n"], 120)
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        text = text.replace("\r", "")
        assert asked == 2, text  # one start, then q: lab-c2 is never asked about
        questions = [ln for ln in text.splitlines() if "[Enter=yes, s=skip, q=quit]" in ln]
        assert all(ln.lstrip().startswith("[lab-c1]") for ln in questions), questions
        assert "quit at an earlier cluster's prompt" in text
        starts = lab.status(path)["starts"]
        assert [s["cluster"] for s in starts] == ["lab-c1"], starts
        assert os.waitstatus_to_exitcode(status) == 2, text
        assert "Traceback" not in text
    finally:
        lab.down(path)
