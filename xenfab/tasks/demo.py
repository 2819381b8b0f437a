"""The embedded default job: rehearse a whole recovery on the lab, end to end, over real SSH."""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from ..cluster import names
from . import core
from ._common import cli


def _banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(3, 72 - len(text)), flush=True)


@task(
    help={
        "hosts": "simulated Xen hosts (1-100)",
        "guests": "guests in the cluster",
        "seed": "scenario seed (same seed, same crash)",
        "boot_s": "seconds a guest takes from `starting` to `started`",
        "config": "config file (default: fabfile_config.yaml; its lab environment is used)",
        "backend": "the lab's cluster manager, one of "
        + ", ".join(names())
        + " (default rgmanager, environment lab; otherwise environment lab-BACKEND)",
    }
)
@cli
def demo(c, hosts=None, guests=None, seed=None, boot_s=None, config=None, backend=None):
    """Rehearse a recovery on the lab: lab up, show the layout, start all, show the result."""
    from .. import lab as lab_api
    from .. import show
    from .lab import lab_options

    opts = lab_options(hosts=hosts, guests=guests, seed=seed, boot_s=boot_s)
    backend = backend or "rgmanager"
    env = "lab" if backend == "rgmanager" else f"lab-{backend}"
    _banner(f"lab up ({backend}): simulated Xen hosts, just after a crash")
    info = lab_api.up(lab_api.lab_dir(), backend=backend, **opts)
    # The lab's own count, as its backend's tools see the guests (the same scenario either way).
    down = info["summary"]["down"]
    print(
        f"lab on 127.0.0.11.. port {info['port']}: {len(info['hosts'])} Xen hosts; "
        f"{down} of {len(info['services'])} guests down"
    )
    _banner("fab show-layout --explain")
    common = dict(env=env, config=config, from_=None, strategy=None, exclude=None)
    common.update(without=None, explain=False, loc=None, dead=None, format="table")
    shown = core.preview(c, **{**common, "explain": True})
    print(_exit_line("show-layout", shown))
    _banner("fab start-all --yes")
    ran = None
    try:
        ran = core._start(
            c,
            None,
            **common,
            yes=True,
            dry_run=False,
            parallel=None,
            step=False,
            break_lock=False,
        )
        print(_exit_line("start-all", ran))
    finally:
        _banner("fab facts (after)")
        try:
            core.facts(c, env=env, config=config)
        except Exit as exc:
            print(f"(fab facts would exit {exc.code}: {exc.message})")
        finally:
            print(f"\nThe lab keeps running ({lab_api.lab_dir()}); stop it with: fab lab.down")
    if ran is not None:
        # The rehearsal's point: what a real recovery would leave down, and the code it ends with.
        _banner("outcome of fab start-all")
        print(show.still_down_text(ran.still))
        print(_exit_line("start-all", ran))


def _exit_line(task_name: str, outcome: core.Outcome) -> str:
    preview = task_name == "show-layout"
    meaning = {
        0: "every down guest would be up" if preview else "every down guest is up",
        2: "recovery would be incomplete" if preview else "recovery incomplete",
        3: "refused",
    }.get(int(outcome.code), outcome.code.name.lower())
    said = outcome.message or ""
    if said.startswith(meaning):
        # The task's own last line already starts with the meaning: say it once.
        return f"fab {task_name} exit code {int(outcome.code)}: {said}"
    tail = f" ({said})" if said else ""
    return f"fab {task_name} exit code {int(outcome.code)}: {meaning}{tail}"
