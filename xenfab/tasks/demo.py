"""The embedded default job: rehearse a whole recovery on the lab, end to end, over real SSH."""

from __future__ import annotations

from invoke import task

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
    _banner("fab show-layout")
    common = dict(env=env, config=config, from_=None, strategy=None, exclude=None)
    common.update(without=None, explain=False, loc=None, dead=None, format="table")
    shown = core.preview(c, **common)
    print(_exit_line("show-layout", shown))
    _banner("fab start-all --yes (the layout above)")
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
            plan_shown=True,
        )
    finally:
        _banner("explore the lab")
        print(f"The lab keeps running in {lab_api.lab_dir()}; next, for example:")
        print(next_steps(env, config))
    if ran is not None:
        # The rehearsal's point: what a real recovery would leave down, and the code it ends with.
        _banner("outcome of fab start-all")
        print(show.still_down_text(ran.still))
        print(_exit_line("start-all", ran))


def next_steps(env: str, config: str | None = None) -> str:
    """The commands that explore the demo's lab, each with the --env (and --config) it needs."""
    import shlex

    where = f"--env {env}" + (f" --config {shlex.quote(config)}" if config else "")
    steps = [
        (f"fab facts {where}", "each host and guest now"),
        (f"fab show-layout --explain {where}", "why each guest went where"),
        (f"fab show-layout --format script {where}", "the plan as a script to run by hand"),
        ("fab lab.inject host-down --host xen03", "then: fab capacity " + where),
        ("fab lab.down", "stop the lab"),
    ]
    width = max(len(cmd) for cmd, _ in steps)
    return "\n".join(f"  {cmd:<{width}}  # {what}" for cmd, what in steps)


def _exit_line(task_name: str, outcome: core.Outcome) -> str:
    preview = task_name == "show-layout"
    meaning = {
        0: "every down guest would be up" if preview else "every down guest is up",
        2: "recovery would be incomplete" if preview else "recovery incomplete",
        3: "refused",
    }.get(int(outcome.code), outcome.code.name.lower())
    said = outcome.message or ""
    if said.split(":", 1)[0] in (meaning, "recovery incomplete"):
        # The task's own last line already says the meaning: say it once.
        return f"fab {task_name} exit code {int(outcome.code)}: {said}"
    tail = f" ({said})" if said else ""
    return f"fab {task_name} exit code {int(outcome.code)}: {meaning}{tail}"
