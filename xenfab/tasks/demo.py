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
    from .lab import lab_options

    opts = lab_options(hosts=hosts, guests=guests, seed=seed, boot_s=boot_s)
    backend = backend or "rgmanager"
    env = "lab" if backend == "rgmanager" else f"lab-{backend}"
    _banner(f"lab up ({backend}): simulated Xen hosts, just after a crash")
    info = lab_api.up(lab_api.lab_dir(), backend=backend, **opts)
    # The lab's own record of each guest (the same scenario whatever the backend).
    down = sum(1 for s in info["services"] if s["state"] in ("disabled", "failed"))
    print(
        f"lab on 127.0.0.11.. port {info['port']}: {len(info['hosts'])} Xen hosts; "
        f"{down} of {len(info['services'])} guests down"
    )
    _banner("fab show-layout --explain")
    core.show_layout(c, env=env, config=config, explain=True)
    _banner("fab start-all --yes")
    try:
        core.start_all(c, env=env, config=config, yes=True)
    finally:
        _banner("fab facts (after)")
        try:
            core.facts(c, env=env, config=config)
        finally:
            print(f"\nThe lab keeps running ({lab_api.lab_dir()}); stop it with: fab lab.down")
