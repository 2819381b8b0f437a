"""The embedded default job: rehearse a whole recovery on the lab, end to end, over real SSH."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from invoke import task

from ..cluster import names
from ..errors import ConfigError
from ..run import RunOutcome, RunRequest
from . import core
from ._common import cli, load

if TYPE_CHECKING:
    from ..config import Environment


def _banner(text: str, first: bool = False) -> None:
    print(("" if first else "\n") + f"=== {text} " + "=" * max(3, 72 - len(text)), flush=True)


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
    # Before the lab starts: an environment that does not use the lab's ssh_config is refused
    # without starting anything.
    lab_dir = str(lab_api.lab_dir())
    environment = _lab_environment(c, config, env, lab_dir)
    _banner(f"lab up ({backend}): simulated Xen hosts, just after a crash", first=True)
    info = lab_api.up(lab_dir, backend=backend, **opts)
    # Once it runs: every host the environment names must be one of this lab's addresses.
    _check_reaches_lab(environment, info, lab_dir)
    # The lab's own count, as its backend's tools see the guests (the same scenario either way).
    down = info["summary"]["down"]
    print(
        f"lab on 127.0.0.11.. port {info['port']}: {len(info['hosts'])} Xen hosts; "
        f"{down} of {len(info['services'])} guests down"
    )
    _banner("fab show-layout")
    request = RunRequest(env=env, config=config)
    shown = core.preview(c, request)
    print(_exit_line("show-layout", shown))
    _banner("fab start-all --yes (the layout above)")
    ran = None
    try:
        ran = core.start(c, replace(request, yes=True, plan_shown=True))
    finally:
        _banner("explore the lab")
        print(f"The lab keeps running in {lab_api.lab_dir()}; next, for example:")
        print(next_steps(env, config))
    if ran is not None:
        # The rehearsal's point: what a real recovery would leave down, and the code it ends with.
        _banner("outcome of fab start-all")
        print(show.still_down_text(ran.still))
        print(_exit_line("start-all", ran))


def _lab_ssh_config(lab_dir: str) -> str:
    return os.path.realpath(os.path.join(lab_dir, "ssh_config"))


def _lab_environment(c, config: str | None, env: str, lab_dir: str) -> Environment:
    """The environment the demo will drive, refused unless it uses the lab's own ssh_config.

    A team's config may call a real cluster ``lab``: the demo runs `start-all --yes`, so it
    drives only what reaches the lab it starts (README: fab demo).
    """
    _cfg, environment = load(c, config, env)
    want = _lab_ssh_config(lab_dir)
    have = environment.ssh.config
    if not have or os.path.realpath(have) != want:
        raise ConfigError(
            f"demo: environment {env} uses ssh_config {have or '(Fabric default)'}, not the "
            f"lab's {want}: the demo drives only the lab it starts; nothing was started"
        )
    return environment


def _check_reaches_lab(environment: Environment, info: dict, lab_dir: str) -> None:
    """Refuse unless every host of ``environment`` resolves to this lab's loopback addresses."""
    import paramiko

    from ..gather import environment_hosts

    lab_addresses = {str(h["address"]) for h in info.get("hosts", [])}
    port = int(info["port"])
    ssh = paramiko.SSHConfig.from_path(_lab_ssh_config(lab_dir))
    for entry in environment_hosts(environment):
        seen = ssh.lookup(entry.name)
        address = str(seen.get("hostname", entry.name))
        to = environment.ssh.port or int(seen.get("port", 22))
        try:
            loopback = ipaddress.ip_address(address).is_loopback
        except ValueError:
            loopback = False
        if not loopback or address not in lab_addresses or to != port:
            raise ConfigError(
                f"demo: host {entry.name} of environment {environment.name} resolves to "
                f"{address}:{to}, not to the lab on 127.0.0.x:{port}: the demo drives only the "
                f"lab it starts; no guest was started (fab lab.down stops the lab)"
            )


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


def _exit_line(task_name: str, outcome: RunOutcome) -> str:
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
