"""Several environments in one run: --env selection, the combined exit code, the combined view."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from xenfab.config import config_from_dict
from xenfab.errors import ConfigError, ExitCode
from xenfab.run.multi import ClusterRun, Prefixed, combined_code, is_multi
from xenfab.show import combined


def _cfg(envs: dict) -> object:
    return config_from_dict({"environments": envs}, "t.yaml")


def _env(**extra) -> dict:
    return {"hosts": ["h1"], "backend": "xl", "guest_config_dir": "/xc", **extra}


def test_env_picks_one_a_list_or_globs_in_config_order():
    cfg = _cfg({"dc1-a": _env(), "dc1-b": _env(), "dc2-a": _env()})
    assert cfg.select(None) == ["dc1-a"]
    assert cfg.select("dc2-a") == ["dc2-a"]
    assert cfg.select("dc1-*") == ["dc1-a", "dc1-b"]
    assert cfg.select("dc2-a, dc1-*,dc2-a") == ["dc2-a", "dc1-a", "dc1-b"]
    with pytest.raises(ConfigError, match=r"--env 'dc3-\*': no such environment"):
        cfg.select("dc1-a,dc3-*")
    assert not is_multi("dc1-a") and is_multi("dc1-*") and is_multi("a,b")
    # A list of nothing is not the default environment: it named none.
    for nothing in (",", " , ", ",,"):
        with pytest.raises(ConfigError, match=r"--env '[ ,]+': names no environment"):
            cfg.select(nothing)


def test_a_numbered_entry_is_one_environment_per_number():
    cfg = _cfg({"c{2..4}": _env(hosts=["n{n}-*"], description="cluster {n}")})
    assert list(cfg.environments) == ["c2", "c3", "c4"]
    assert cfg.environment("c3").hosts[0].name == "n3-*"
    assert cfg.environment("c4").description == "cluster 4"
    with pytest.raises(ConfigError, match="c3 is also given by name"):
        _cfg({"c3": _env(), "c{2..4}": _env()})
    with pytest.raises(ConfigError, match="a range of 1 to"):
        _cfg({"c{5..4}": _env()})


def _run(env: str, *, code=ExitCode.OK, refused=None, still=(), report=None, down=2):
    outcome = SimpleNamespace(
        code=code,
        refusal=SimpleNamespace(text=refused) if refused else None,
        still=[{"guest": g, "memory_mib": 512, "reason": "why"} for g in still],
        report=report,
    )
    layout = SimpleNamespace(assignments=[1] * down, unplaced=[])
    return ClusterRun(env, planned=SimpleNamespace(layout=layout), outcome=outcome)


def test_the_combined_exit_code():
    ok, bad = _run("a"), _run("b", code=ExitCode.REFUSED, refused="not quorate", still=("x01",))
    assert combined_code([ok, _run("c")])[0] is ExitCode.OK
    assert combined_code([bad, ClusterRun("d", error="no host")])[0] is ExitCode.REFUSED
    code, message = combined_code([ok, bad])
    assert code is ExitCode.INCOMPLETE and "1 of 2 cluster(s) refused" in message
    some = _run("e", code=ExitCode.INCOMPLETE, still=("y01",))
    assert combined_code([ok, some])[0] is ExitCode.INCOMPLETE


def test_still_down_and_summary_name_each_guest_s_environment():
    runs = [_run("a", still=("web01",)), _run("b", code=ExitCode.REFUSED, refused="lock held",
                                               still=("web01",))]  # fmt: skip
    rows = [row for run in runs for row in run.still]
    text = combined.still_down_text(rows, len(runs))
    assert "[a] web01 (512 MiB): why" in text and "[b] web01 (512 MiB): why" in text
    summary = combined.summary_text(runs)
    assert "lock held" in summary.splitlines()[-1]
    assert "none" in combined.still_down_text([], 2)


def test_prefixed_stream_writes_whole_lines_each_naming_its_cluster():
    out = io.StringIO()
    stream = Prefixed(out, "dc1")
    stream.write("starting web01")
    assert out.getvalue() == ""
    stream.write(" on h1\nstarted web01\n")
    assert out.getvalue() == "[dc1] starting web01 on h1\n[dc1] started web01\n"
    assert not stream.isatty()


def _ctrl_c(thread) -> None:
    """Ctrl-C as the waiting thread would get it: a KeyboardInterrupt raised there."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
    )


def _wait_run(monkeypatch, engine):
    """``multi._start_all`` over clusters a and b with ``engine``, in a thread of its own."""
    import threading

    from xenfab.run import RunRequest, multi

    monkeypatch.setattr(multi, "_engine", engine)
    runs = [ClusterRun(name, planned=SimpleNamespace()) for name in ("a", "b")]
    reports: dict = {}
    # The run waits in a thread of its own (pytest's workers may not run tests on the main
    # thread), and Ctrl-C is a KeyboardInterrupt raised there, as in a main thread at a prompt.
    waiter = threading.Thread(
        target=multi._start_all,
        args=(None, RunRequest(env="a,b", yes=True), runs, reports, {}, set()),
    )
    waiter.start()
    return waiter, reports


def test_a_first_ctrl_c_is_the_flag_every_cluster_s_engine_reads_between_two_steps(monkeypatch):
    """Each engine sees the shared count raised and ends its own way; none gets an exception."""
    import threading
    import time

    inside = {"a": threading.Event(), "b": threading.Event()}
    raised = []

    def engine(c, request, planned, *, out, prompt, interrupts):
        deadline = time.monotonic() + 30
        try:
            inside[request.env].set()
            while not interrupts and time.monotonic() < deadline:
                time.sleep(0.01)  # a turn of the loop: the flag is read between two steps
            time.sleep(0.05)  # the starts in flight are waited for
        except KeyboardInterrupt:
            raised.append(request.env)
        return SimpleNamespace(interrupted=bool(interrupts), env=request.env)

    waiter, reports = _wait_run(monkeypatch, engine)
    for event in inside.values():
        assert event.wait(30)
    _ctrl_c(waiter)
    waiter.join(30)
    assert not waiter.is_alive()
    assert sorted(reports) == ["a", "b"] and all(r.interrupted for r in reports.values())
    assert raised == []  # a step is never cut in the middle by the first Ctrl-C


def test_a_second_ctrl_c_gets_every_engine_out_of_its_wait(monkeypatch):
    """An engine stuck in a long wait (a remote read) is got out of it by the second Ctrl-C."""
    import threading
    import time

    inside = {"a": threading.Event(), "b": threading.Event()}
    counts = {}

    def engine(c, request, planned, *, out, prompt, interrupts):
        deadline = time.monotonic() + 30
        try:
            inside[request.env].set()
            while time.monotonic() < deadline:  # never reads the flag: a wait under way
                time.sleep(0.01)
        except KeyboardInterrupt:
            counts[request.env] = interrupts.count
            return SimpleNamespace(interrupted=True, env=request.env)
        return SimpleNamespace(interrupted=False, env=request.env)

    waiter, reports = _wait_run(monkeypatch, engine)
    for event in inside.values():
        assert event.wait(30)
    _ctrl_c(waiter)
    time.sleep(0.5)
    assert waiter.is_alive() and reports == {}  # the first only raised the flag
    _ctrl_c(waiter)
    waiter.join(30)
    assert not waiter.is_alive()
    assert sorted(reports) == ["a", "b"] and all(r.interrupted for r in reports.values())
    assert counts == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    ("ending", "why"),
    [({"interrupted": True}, "interrupted before"), ({"quit": True}, "quit at an earlier")],
)
def test_with_step_a_cluster_interrupted_or_quit_ends_the_run_for_those_not_begun(
    monkeypatch, ending, why
):
    from xenfab.run import RunRequest, multi
    from xenfab.start import prompter

    monkeypatch.setattr(prompter, "terminal_prompt", lambda: lambda text: "")
    began = []

    def engine(c, request, planned, *, out, prompt, interrupts):
        began.append(request.env)
        assert interrupts is None  # one at a time, on this thread: each its own signal count
        return SimpleNamespace(**{"interrupted": False, "quit": False, **ending}, env=request.env)

    monkeypatch.setattr(multi, "_engine", engine)
    runs = [ClusterRun(name, planned=SimpleNamespace()) for name in ("a", "b", "c")]
    reports: dict = {}
    refusals: dict = {}
    request = RunRequest(env="a,b,c", yes=True, step=True)
    multi._start_all(None, request, runs, reports, refusals, set())
    assert began == ["a"] and sorted(reports) == ["a"]
    assert sorted(refusals) == ["b", "c"]
    assert all(why in r.text for r in refusals.values()), refusals
