"""Gather: one SSH round trip per host, in parallel, then assemble a Snapshot.

Every host runs one batched script (toolstack, ``xl info``, ``xl list``); the master also reads the
cluster state and the shared guest config directory, which is read once.
"""

from __future__ import annotations

import datetime as _dt
from concurrent.futures import ThreadPoolExecutor

from ..cluster import backend as get_backend
from ..config import Environment, HostEntry, resolve_hosts, ssh_config_hosts
from ..errors import ConfigError
from ..snapshot import Snapshot
from . import ssh
from .assemble import HostReport, assemble
from .batch import build_script, new_nonce, split_output


def environment_hosts(env: Environment, only: list[str] | None = None) -> list[HostEntry]:
    """The environment's hosts, patterns expanded; ``only`` narrows to those names."""
    hosts = resolve_hosts(env, ssh_config_hosts(env.ssh.config))
    if not hosts:
        raise ConfigError(f"environment {env.name}: its host patterns match no host")
    if only:
        unknown = [h for h in only if h not in {e.name for e in hosts}]
        if unknown:
            raise ConfigError(f"environment {env.name}: no host {', '.join(unknown)}")
        hosts = [h for h in hosts if h.name in only]
    return hosts


def gather(
    env: Environment, base_config: object | None = None, without: list[str] | None = None
) -> Snapshot:
    """Ask every host of ``env`` for its facts, in parallel; an unreachable host is reported."""
    backend = get_backend(env.backend, env.backend_options)
    entries = environment_hosts(env)
    cfg = ssh.fabric_config(env, base_config)
    nonce = new_nonce()
    master = env.master or entries[0].name
    if master not in {e.name for e in entries}:
        raise ConfigError(f"environment {env.name}: master {master} is not one of its hosts")
    cluster_probes = backend.state_probes()
    host_probes = backend.host_probes()
    host_script = build_script(nonce, host_probes)
    master_script = build_script(nonce, host_probes + cluster_probes, env.guest_config_dir)

    def ask(entry: HostEntry) -> HostReport:
        script = master_script if entry.name == master else host_script
        return _report(ssh.run(entry.name, script, env, cfg), nonce, entry.name == master)

    workers = max(1, min(env.ssh.parallel, len(entries)))
    # The master runs the longest script (cluster state, every guest config): it goes first so
    # that it never waits for a free worker behind the other hosts.
    order = sorted(entries, key=lambda e: e.name != master)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gather") as pool:
        reports = {r.name: r for r in pool.map(ask, order)}
    used_master = master
    if reports[master].error is not None:
        # The master is down: ask the first host that answered to read the cluster instead.
        used_master = None
        for entry in entries:
            if reports[entry.name].error is None and entry.name != master:
                cluster_only = build_script(nonce, cluster_probes, env.guest_config_dir)
                extra = _report(ssh.run(entry.name, cluster_only, env, cfg), nonce, True)
                if extra.error is None:
                    reports[entry.name].outputs.update(extra.outputs)
                    reports[entry.name].files = extra.files
                    reports[entry.name].file_errors = extra.file_errors
                    used_master = entry.name
                    break
    taken_at = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    snap = assemble(
        env.name, taken_at, entries, reports, used_master, backend, env.guest_config_dir
    )
    if used_master is None:
        snap.errors.append(f"no host could read the cluster state (master {master} unreachable)")
    elif used_master != master:
        snap.errors.append(f"master {master} unreachable; cluster state read on {used_master}")
    return snap


def _report(result: ssh.RunResult, nonce: str, is_master: bool) -> HostReport:
    if result.error is not None or result.output is None:
        return HostReport(result.host, error=result.error or "no output", seconds=result.seconds)
    split = split_output(result.output.text, nonce)
    report = HostReport(result.host, split.outputs, split.files, seconds=result.seconds)
    report.file_errors = dict(split.file_errors)
    if not split.complete:
        report.error = (
            f"{result.host}: the gather script stopped early (exit {result.output.exit_code})"
        )
    return report
