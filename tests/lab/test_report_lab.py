"""fab report end to end (issue 21): start-all on the lab, its Gantt, then its run as HTML.

One start-all (the cost of this file), then reads of its audit log: the report of the last run,
the JSON timeline, and the one-line refusals of bad input.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from clitools import ROOT, fab, no_traceback

pytestmark = pytest.mark.lab


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def test_start_all_then_report(fresh_lab, tmp_path):
    ran = fab("start-all", "--yes")
    no_traceback(ran)
    assert ran.returncode == 2, ran.stderr  # legacy07 fits nowhere, as in every lab run
    out = ran.stdout.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("Timeline per host"))
    # A host's first lane names it: its plan lane when the plan has expected times, else run.
    lanes = [line for line in out[head:] if " run  |" in line or " plan |" in line]
    starts = [s for s in fresh_lab.status()["starts"] if s["ok"]]
    hosts = {s["host"] for s in starts}
    assert {line.split()[0] for line in lanes if not line.startswith(" ")} == hosts
    assert sum(" run  |" in line for line in lanes) == len(hosts)  # one actual lane each
    assert all(len(line) <= 100 for line in out[head:])
    # The Gantt comes with the results, before the STILL DOWN block that ends stdout.
    assert head < max(i for i, line in enumerate(out) if line.startswith("STILL DOWN"))

    page = tmp_path / "run.html"
    res = fab("report", "--out", str(page), "--format", "json")
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["path"] == str(page) and f"written to {page}" in res.stderr
    timeline = {e["guest"]: e for e in doc["timeline"]}
    assert set(timeline) == {s["guest"] for s in starts}
    for e in timeline.values():
        assert e["outcome"] == "started"
        # Order of events, not their speed: command, then accepted, then ready.
        assert 0 <= e["sent_s"] <= e["accepted_s"] <= e["ready_s"]
        # The plan's figures, read back from the audit log alone: a tier and a planned ready.
        assert e["tier"] >= 1 and e["planned_ready_s"] is not None and e["planned_ready_s"] > 0
    assert doc["unnamed_down"] == 1 and doc["still_down"] == []

    tags = _Tags()
    tags.feed(page.read_text())
    rows = [a for t, a in tags.tags if t == "g" and a.get("class") == "guest"]
    lanes_html = [a["data-host"] for t, a in tags.tags if t == "g" and a.get("class") == "lane"]
    assert sorted(r["data-guest"] for r in rows) == sorted(timeline)
    assert lanes_html == sorted(hosts)
    assert not [t for t, _ in tags.tags if t in ("script", "link", "img")]

    # The same run by its id, in the default place (the working directory).
    config = str(ROOT / "fabfile_config.yaml")
    again = fab("-r", str(ROOT), "report", "--run", doc["run"], "--config", config, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / f"xenfab-report-{doc['run']}.html").exists()

    bad = fab("report", "--run", "no-such-run", "--out", str(tmp_path / "x.html"))
    no_traceback(bad)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("xenfab: ")
    assert "no run 'no-such-run'" in bad.stderr and not (tmp_path / "x.html").exists()
