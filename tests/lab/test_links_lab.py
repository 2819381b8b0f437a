"""Issue 19 case 7 over the lab: a config-dir link to a huge file, a FIFO, a directory, a device."""

from __future__ import annotations

import json
import os
import time

import pytest
from clitools import LAB_BOOT_S, fab, no_traceback

pytestmark = pytest.mark.lab

BAD = {
    "big40.cfg": "larger than 262144 bytes",
    "nonl300.cfg": "larger than 262144 bytes",
    "adir.cfg": "a symbolic link to a directory: not read",
    "afifo.cfg": "a symbolic link to a FIFO: not read",
    "azero.cfg": "a symbolic link to a device: not read",
}


def _facts(*args: str) -> tuple[dict, object, float]:
    started = time.monotonic()
    res = fab("facts", "--format", "json", *args)
    no_traceback(res)
    return json.loads(res.stdout), res, time.monotonic() - started


@pytest.mark.parametrize("env", ["lab", "lab-xl"])
def test_links_to_what_is_not_a_small_regular_file_are_refused_alone(lab, tmp_path, env):
    backend = "xl" if env == "lab-xl" else "rgmanager"
    lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend=backend)
    before, res, _ = _facts("--env", env)
    code = res.returncode
    store = tmp_path / "store"
    store.mkdir()
    with open(store / "forty", "wb") as fh:  # sparse files: no disk spent
        fh.truncate(40 * 1024 * 1024)
    with open(store / "nonl", "wb") as fh:  # 300 MB, not one newline
        fh.truncate(300 * 1024 * 1024)
    os.mkfifo(store / "fifo")
    cfgdir = lab.dir / "xenconfig"
    targets = {
        "big40.cfg": store / "forty",
        "nonl300.cfg": store / "nonl",
        "adir.cfg": store,
        "afifo.cfg": store / "fifo",
        "azero.cfg": "/dev/zero",
    }
    try:
        for name, target in targets.items():
            (cfgdir / name).symlink_to(target)
        after, res, took = _facts("--env", env)
        # The master's output stays small, every host reads, nothing waits on the FIFO.
        assert took < 30, took
        # Each refused link is a problem facts lists: exit 2 (it was `code` before them).
        assert res.returncode == 2 and code in (0, 2), (code, res.stderr)
        assert after["master"] == before["master"] and not [
            e for e in after["errors"] if e not in before["errors"]
        ], after["errors"]
        # Every guest as before: the bad links cost their own files only.
        assert {g["name"]: g["state"] for g in after["guests"]} == {
            g["name"]: g["state"] for g in before["guests"]
        }
        new = [w for w in after["warnings"] if w not in before["warnings"]]
        assert len(new) == len(BAD), new
        for name, why in BAD.items():
            assert any(f"{cfgdir / name}: " in w and why in w for w in new), (name, new)
    finally:
        for name in targets:
            (cfgdir / name).unlink(missing_ok=True)
        lab.reseed(guests=30, seed=1, boot_s=LAB_BOOT_S, latency_ms=0, backend="rgmanager")
