"""Gather: one SSH round trip per host, in parallel, then assemble a Snapshot.

Every host runs one batched script (toolstack, ``xl info``, ``xl list``); the master also reads the
cluster state and the shared guest config directory, which is read once.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from ..cluster import ClusterBackend, Probe
from ..cluster import backend as get_backend
from ..config import Environment, HostEntry, resolve_hosts, ssh_config_hosts
from ..errors import ConfigError
from ..remote import RunResult, fabric_config, run, run_all
from ..snapshot import LockSeen, Snapshot
from .assemble import HostReport, assemble, lock_seen
from .batch import build_script, new_nonce, split_output
from .lockfile import PEEK_PROBE, peek_command


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
    env: Environment,
    base_config: object | None = None,
    without: list[str] | None = None,
    lock_path: str | None = None,
    history: str | None = None,
    progress: Callable[[list[str]], Any] | None = None,
) -> Snapshot:
    """Ask every host of ``env`` for its facts, in parallel; an unreachable host is reported.

    ``progress(hosts)``: a context manager told of each host that ``answered(host)`` (the
    tasks pass show.progress.gathering: on a terminal, which hosts it still waits for).

    With ``lock_path``, the batch of the run lock's host also reads who holds that lock
    (``Snapshot.lock``): no extra round trip, and the lock is never taken. With ``history`` (a
    directory: xenfab.history.history_dir), the snapshot is kept there; when it cannot be, a
    warning says so and the gather stands.
    """
    backend = get_backend(env.backend, env.backend_options)
    entries = environment_hosts(env)
    cfg = fabric_config(env, base_config)
    nonce = new_nonce()
    master = env.master or entries[0].name
    if master not in {e.name for e in entries}:
        raise ConfigError(f"environment {env.name}: master {master} is not one of its hosts")
    cluster_probes = backend.state_probes()
    host_probes = backend.host_probes()
    # The lock lives where the engine will take it: the backend's lock host for this reader.
    lock_at = backend.lock_host(master, master)
    lock_probes = [Probe(PEEK_PROBE, peek_command(lock_path))] if lock_path else []
    names = {e.name for e in entries}
    # Only the backends whose inventory is config files read guest_config_dir.
    config_dir = env.guest_config_dir if backend.reads_guest_configs else None
    host_script = build_script(nonce, host_probes)
    # A master that answers for every host (an XAPI pool) is the only host asked.
    scripts = {} if backend.master_only else {name: host_script for name in names}
    scripts[master] = build_script(
        nonce,
        host_probes + cluster_probes + (lock_probes if lock_at == master else []),
        config_dir,
    )
    if lock_probes and lock_at != master:
        # xl's lock host may be any host, even one outside the environment (asked for the lock
        # alone, in the same parallel round).
        probes = host_probes if lock_at in names else []
        scripts[lock_at] = build_script(nonce, probes + lock_probes)
    # The master runs the longest script (cluster state, every guest config): it goes first so
    # that it never waits for a free worker behind the other hosts.
    order = sorted((e.name for e in entries if e.name in scripts), key=lambda n: n != master)
    order += [name for name in scripts if name not in names]
    reports: dict[str, HostReport] = {}

    def split(result: RunResult) -> None:
        reports[result.host] = _report(result, nonce)

    with (progress or _Quiet)(order) as waiting:
        results = run_all(
            order,
            scripts.__getitem__,
            env,
            cfg,
            each=lambda result: (waiting.answered(result.host), split(result)),
        )
    used_master = master
    if reports[master].error is not None:
        # The master is down: ask the first host that answered to read the cluster instead.
        used_master = None
        answered = results.succeeded
        for entry in entries:
            if backend.master_only and entry.name != master and entry.name not in reports:
                # Not asked yet (only the master was): ask it now, as the stand-in reader.
                reports[entry.name] = HostReport(entry.name)
                answered = {*answered, entry.name}
            if entry.name in answered and entry.name != master and not reports[entry.name].error:
                # Where this reader's lock lives, if not asked already (rgmanager: the reader).
                at = backend.lock_host(entry.name, master)
                extra_lock = lock_probes if at == entry.name != lock_at else []
                # A master-only backend asks the stand-in for every host's facts too.
                extra_probes = host_probes if backend.master_only else []
                cluster_only = build_script(
                    nonce, extra_probes + cluster_probes + extra_lock, config_dir
                )
                extra = _report(run(entry.name, cluster_only, env, cfg), nonce)
                if backend.master_only:
                    reports[entry.name] = extra
                if extra.error is None:
                    reports[entry.name].outputs.update(extra.outputs)
                    reports[entry.name].files = extra.files
                    reports[entry.name].file_errors = extra.file_errors
                    used_master = entry.name
                    break
    taken_at = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    snap = assemble(env.name, taken_at, entries, reports, used_master, backend, config_dir or "")
    if lock_path:
        snap.lock = _lock(backend, used_master, master, lock_path, reports)
    if used_master is None:
        snap.errors.append(f"no host could read the cluster state (master {master} unreachable)")
    elif used_master != master:
        snap.errors.append(f"master {master} unreachable; cluster state read on {used_master}")
    if history is not None:
        from ..history import HistoryError, record

        try:
            record(snap, history)
        except HistoryError as exc:
            snap.warnings.append(str(exc))
    return snap


def _lock(
    backend: ClusterBackend,
    reader: str | None,
    master: str,
    path: str,
    reports: dict[str, HostReport],
) -> LockSeen:
    """The lock where the engine would take it: the backend's lock host for ``reader``."""
    if reader is None:
        return LockSeen(host=master, path=path, error="no host could read the cluster state")
    at = backend.lock_host(reader, master)
    return lock_seen(at, path, reports.get(at))


def _report(result: RunResult, nonce: str) -> HostReport:
    if not result.ok:
        # The remote layer's kind goes along with its message, for code that decides on it.
        kind = result.failure.kind if result.failure is not None else None
        return HostReport(
            result.host, error=result.error or "no output", error_kind=kind, seconds=result.seconds
        )
    split = split_output(result.output.text, nonce)
    report = HostReport(result.host, split.outputs, split.files, seconds=result.seconds)
    report.file_errors = dict(split.file_errors)
    if not split.complete:
        report.error = (
            f"{result.host}: the gather script stopped early (exit {result.output.exit_code})"
        )
    return report


class _Quiet:
    """No progress shown: the default of callers with no terminal of their own."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def answered(self, host: str) -> None:
        """Nothing to say."""
