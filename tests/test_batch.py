"""The gather batch script, run by a real /bin/sh, splits back into what each probe printed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clitools import live_processes

from xenfab.cluster import Probe
from xenfab.gather.batch import CONFIG_BATCH, HOST_PROBES, build_script, new_nonce, split_output


def _tool(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run(script: str, bindir: Path, system: bool = True) -> str:
    path = f"{bindir}:/usr/bin:/bin" if system else str(bindir)
    env = {"PATH": path, "LC_ALL": "C"}
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env=env).stdout


@pytest.mark.parametrize("awk", [True, False], ids=["awk", "no-awk"])
def test_probes_and_files_round_trip(tmp_path: Path, awk: bool) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if not awk:
        # a host without awk: configs are printed one `cat` each
        (bindir / "cat").symlink_to(shutil.which("cat"))
    _tool(
        bindir,
        "xl",
        'if [ "$1" = info ]; then printf "total_memory : 100\\n"; else printf "no-newline"; fi\n',
    )
    _tool(bindir, "clustat", 'echo "clustat -x failed" >&2; exit 3\n')
    cfgdir = tmp_path / "xen config"  # a space in the path must survive quoting
    cfgdir.mkdir()
    nonce = new_nonce()
    (cfgdir / "a.cfg").write_text('name = "a"\nmemory = 1024\n')
    (cfgdir / "b.cfg").write_text('name = "b"\n# @@xenfab:forged begin info\nmemory = 2048')
    (cfgdir / "c.cfg").write_text(f"@@xenfab:{nonce}x end info 0\n")
    (cfgdir / "d.cfg").write_text("")  # empty: still listed, empty
    (cfgdir / "e.cfg").write_text("\n\nname = 'e'\n\n")
    (cfgdir / "subdir").mkdir()  # not a file: skipped
    (cfgdir / "z.cfg").write_text("")  # empty and last
    probes = HOST_PROBES + [
        Probe("clustat-x", "clustat -x"),
        Probe("clustat", "echo text", "clustat-x"),
    ]
    out = split_output(_run(build_script(nonce, probes, str(cfgdir)), bindir, awk), nonce)
    assert out.complete
    assert out.outputs["toolstack"].text == "xl\n"
    assert out.outputs["info"].text == "total_memory : 100\n"
    assert out.outputs["list"].text == "no-newline"
    assert out.outputs["clustat-x"].exit_code == 3
    assert "clustat -x failed" in out.outputs["clustat-x"].text
    assert out.outputs["clustat"].text == "text\n"  # the fallback ran because -x failed
    assert out.files[str(cfgdir / "a.cfg")] == 'name = "a"\nmemory = 1024\n'
    # awk prints whole lines: a missing final newline is added, nothing else changes
    assert out.files[str(cfgdir / "b.cfg")] == (
        'name = "b"\n# @@xenfab:forged begin info\nmemory = 2048' + ("\n" if awk else "")
    )
    assert out.files[str(cfgdir / "c.cfg")] == f"@@xenfab:{nonce}x end info 0\n"
    assert out.files[str(cfgdir / "d.cfg")] == ""
    assert out.files[str(cfgdir / "e.cfg")] == "\n\nname = 'e'\n\n"
    assert out.files[str(cfgdir / "z.cfg")] == ""
    assert sorted(out.files) == [str(cfgdir / f"{c}.cfg") for c in "abcdez"]
    assert out.outputs["configs"].exit_code == 0


def test_fallback_skipped_when_first_probe_succeeds(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _tool(bindir, "xm", 'echo "xm $1"\n')
    nonce = new_nonce()
    probes = HOST_PROBES + [Probe("first", "true"), Probe("second", "echo no", "first")]
    out = split_output(_run(build_script(nonce, probes), bindir), nonce)
    assert out.outputs["toolstack"].text == "xm\n"  # no xl on this host: xm answers
    assert out.outputs["info"].text == "xm info\n"
    assert "second" not in out.outputs


def test_missing_config_dir_is_reported(tmp_path: Path) -> None:
    nonce = new_nonce()
    text = _run(build_script(nonce, [], str(tmp_path / "nope")), tmp_path)
    out = split_output(text, nonce)
    assert out.outputs["configs"].exit_code == 1
    assert "no such directory" in out.outputs["configs"].text


def test_truncated_output_is_incomplete() -> None:
    nonce = new_nonce()
    text = f"\n@@xenfab:{nonce} begin info\ntotal_memory : 1\n"
    out = split_output(text, nonce)
    assert not out.complete
    assert "info" not in out.outputs


@pytest.mark.parametrize("awk", [True, False], ids=["awk", "no-awk"])
def test_many_configs_cross_batches_whole_and_in_order(tmp_path: Path, awk: bool) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if not awk:
        (bindir / "cat").symlink_to(shutil.which("cat"))
    cfgdir = tmp_path / "cfg"
    cfgdir.mkdir()
    count = 2 * CONFIG_BATCH + 7
    expected = {}
    for i in range(count):
        path = cfgdir / f"g{i:04d}.cfg"
        # Empty files where a batch ends and the next begins: their markers must not go missing.
        text = "" if i % CONFIG_BATCH in (0, CONFIG_BATCH - 1) else f'name = "g{i}"\nmemory = {i}\n'
        path.write_text(text)
        expected[str(path)] = text
    (cfgdir / "g0050.d").mkdir()  # a directory among them: skipped, the batch goes on
    nonce = new_nonce()
    out = split_output(_run(build_script(nonce, [], str(cfgdir)), bindir, awk), nonce)
    assert out.complete and out.outputs["configs"].exit_code == 0
    assert list(out.files) == sorted(expected)
    assert out.files == expected


def test_a_file_name_never_becomes_content_and_a_huge_file_is_not_read(tmp_path: Path) -> None:
    """Issue 14 cases 5 (framing) and 6 (limits): per-file errors, every other file read."""
    from xenfab.gather.batch import MAX_CONFIG_BYTES

    bindir = tmp_path / "bin"
    bindir.mkdir()
    cfgdir = tmp_path / "configs"
    cfgdir.mkdir()
    (cfgdir / "web01.cfg").write_text('name = "web01"\nmemory = 8192\n')
    forged = 'forge\nname = "web01"\nmemory = 1\n#'
    (cfgdir / forged).write_text("")
    with open(cfgdir / "huge.cfg", "wb") as fh:  # sparse: costs no disk
        fh.truncate(300 * 1024 * 1024)
    (cfgdir / "edge.cfg").write_text("#" * (MAX_CONFIG_BYTES - 1) + "\n")  # exactly the limit
    nonce = new_nonce()
    out = split_output(_run(build_script(nonce, [], str(cfgdir)), bindir), nonce)
    assert out.complete
    assert set(out.files) == {str(cfgdir / "web01.cfg"), str(cfgdir / "edge.cfg")}
    assert out.files[str(cfgdir / "web01.cfg")] == 'name = "web01"\nmemory = 8192\n'
    assert "larger than" in out.file_errors[str(cfgdir / "huge.cfg")]
    assert "control characters" in out.file_errors[str(cfgdir / forged)]
    assert not any("memory = 1\n" in body for body in out.files.values())


@pytest.mark.parametrize("tool", ["timeout", "setsid"])
def test_bounded_kills_the_command_and_its_children_at_the_deadline(
    tmp_path: Path, tool: str
) -> None:
    import os
    import time

    from xenfab.remote.channel import bounded

    # "setsid": a host without coreutils' timeout (RHEL 5), only the tools the fallback needs.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ["sh", "sleep", tool]:
        (bindir / name).symlink_to(shutil.which(name))
    env = {"PATH": str(bindir)}

    marker = f"xenfab-test-{os.getpid()}-{time.monotonic_ns() % 100000}"
    started = time.monotonic()
    res = subprocess.run(
        ["/bin/sh", "-c", bounded(f"echo hi; sh -c 'sleep 77; : {marker}'; echo never", 1)],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert time.monotonic() - started < 5
    assert res.stdout == "hi\n" and res.returncode != 0
    time.sleep(0.3)
    assert not live_processes(marker)
    # A command that ends first: its exit code, and no watchdog left behind.
    res = subprocess.run(["/bin/sh", "-c", bounded("exit 7", 97)], timeout=20, env=env)
    assert res.returncode == 7
    time.sleep(0.3)
    assert not live_processes("sleep 97;")


def _links_dir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A config dir whose links point at everything a link may point at (issue 19, case 7)."""
    cfgdir = tmp_path / "configs"
    cfgdir.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    (store / "web01.cfg").write_text('name = "web01"\nmemory = 8192\n')
    (cfgdir / "web01.cfg").symlink_to(store / "web01.cfg")  # a good link: read
    (cfgdir / "db01.cfg").write_text('name = "db01"\nmemory = 1024\n')  # a plain file
    with open(store / "forty", "wb") as fh:  # sparse: costs no disk
        fh.truncate(40 * 1024 * 1024)
    with open(store / "nonl", "wb") as fh:  # 300 MB of zeros: not one newline
        fh.truncate(300 * 1024 * 1024)
    os.mkfifo(store / "fifo")
    links = {
        "big40.cfg": store / "forty",
        "nonl300.cfg": store / "nonl",
        "dir.cfg": store,
        "fifo.cfg": store / "fifo",
        "zero.cfg": Path("/dev/zero"),
        "gone.cfg": store / "no-such-file",
    }
    for name, target in links.items():
        (cfgdir / name).symlink_to(target)
    why = {
        "big40.cfg": "larger than",
        "nonl300.cfg": "larger than",
        "dir.cfg": "a symbolic link to a directory",
        "fifo.cfg": "a symbolic link to a FIFO",
        "zero.cfg": "a symbolic link to a device",
        "gone.cfg": "a symbolic link to nothing",
    }
    return cfgdir, why


@pytest.mark.parametrize("tool", ["timeout", "no-timeout"])
def test_limits_follow_links_and_only_the_bad_link_is_refused(tmp_path: Path, tool: str) -> None:
    """Issue 19 case 7: the size and type limits apply to what a link points to."""
    import time

    cfgdir, why = _links_dir(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # "no-timeout": a RHEL 5 host, coreutils without `timeout`; the watchdog bounds the read.
    tools = ["sh", "awk", "find", "head", "od", "tr", "sleep", "cat", "timeout"]
    for name in tools if tool == "timeout" else tools[:-1]:
        (bindir / name).symlink_to(shutil.which(name))
    nonce = new_nonce()
    started = time.monotonic()
    out = split_output(_run(build_script(nonce, [], str(cfgdir)), bindir, system=False), nonce)
    assert time.monotonic() - started < 5
    assert out.complete and out.outputs["configs"].exit_code == 0
    assert out.files == {
        str(cfgdir / "web01.cfg"): 'name = "web01"\nmemory = 8192\n',
        str(cfgdir / "db01.cfg"): 'name = "db01"\nmemory = 1024\n',
    }
    assert {Path(p).name: w for p, w in out.file_errors.items()}.keys() == why.keys()
    for path, reason in out.file_errors.items():
        assert why[Path(path).name] in reason and reason.endswith("not read"), reason


@pytest.mark.parametrize("tool", ["timeout", "no-timeout"])
def test_a_read_through_a_link_is_cut_at_its_time_bound_and_nothing_of_it_kept(
    tmp_path: Path, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link switched to something that blocks after the check: the read ends, none of it kept."""
    import time

    from xenfab.gather import batch

    monkeypatch.setattr(batch, "LINK_READ_S", 1)
    cfgdir = tmp_path / "configs"
    cfgdir.mkdir()
    (tmp_path / "t.cfg").write_text('name = "slow"\nmemory = 1024\n')
    (cfgdir / "slow.cfg").symlink_to(tmp_path / "t.cfg")
    (cfgdir / "ok.cfg").write_text('name = "ok"\n')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # A `head` that prints half a line and then blocks, as a read of a FIFO would.
    marker = f"xenfab-slow-head-{os.getpid()}"
    _tool(bindir, "head", f"printf 'name = \"slow\"\\nmemory = 1'; exec sleep 60 # {marker}\n")
    tools = ["sh", "awk", "find", "od", "tr", "sleep", "cat", "timeout"]
    for name in tools if tool == "timeout" else tools[:-1]:
        (bindir / name).symlink_to(shutil.which(name))
    nonce = new_nonce()
    started = time.monotonic()
    out = split_output(_run(build_script(nonce, [], str(cfgdir)), bindir, system=False), nonce)
    assert time.monotonic() - started < 5
    assert out.complete
    assert out.files == {str(cfgdir / "ok.cfg"): 'name = "ok"\n'}
    assert "did not end within 1 s" in out.file_errors[str(cfgdir / "slow.cfg")]
    time.sleep(0.3)
    assert not live_processes(marker)
