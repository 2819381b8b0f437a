"""What a run starts from: the config and environment, the facts, their refusal, the plan.

The library side of every task (no Invoke here): the tasks call these and render the answers.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..cluster import ClusterBackend
    from ..config import Environment, XenfabConfig
    from ..plan import Layout, Policy
    from ..snapshot import Snapshot

FORMATS = ("table", "json")


class RefusalKind(str, Enum):
    """Why a start is refused before any change (the text says it to the operator)."""

    QUORUM = "quorum"  # the cluster is not quorate, or no host could read it
    LOCK_HELD = "lock-held"  # the facts show another run holding the run lock
    NO_TERMINAL = "no-terminal"  # no --yes and no terminal to confirm on
    ENGINE = "engine"  # the engine refused before its first start (live lock, quorum, liveness)


@dataclass(frozen=True)
class Refusal:
    """A typed refusal: its kind (for decisions) and its text (for people)."""

    kind: RefusalKind
    text: str


def check_format(fmt: str) -> str:
    """Validate a ``--format`` value."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def split_list(value: str | None) -> list[str]:
    """``a,b, c`` -> ``['a', 'b', 'c']`` (for --exclude, --without)."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def saved_snapshot(path: str, env: Environment) -> Snapshot:
    """The snapshot ``--from PATH``, refused (one line) when it is of another environment."""
    from ..snapshot import DEFAULT_BACKEND, Snapshot, SnapshotError

    snap = Snapshot.load(path)
    # The environment's policy, backend and lock would be applied to another cluster's facts.
    if snap.environment != env.name:
        raise SnapshotError(
            f"--from {path}: a snapshot of environment {snap.environment!r}, not of "
            f"{env.name!r} (give --env {snap.environment})"
        )
    if (snap.backend or DEFAULT_BACKEND) != env.backend:
        raise SnapshotError(
            f"--from {path}: a snapshot of backend {snap.backend or DEFAULT_BACKEND}, not "
            f"of {env.backend} (environment {env.name})"
        )
    return snap


def load(
    c: Any, config: str | None, env: str | None, loc: str | None = None
) -> tuple[XenfabConfig, Environment]:
    """The configuration and environment a task runs with (see docs/configuration.md)."""
    cfg, environment = _load(c, config, env)
    # `fab -S FILE` names the ssh_config to use: it wins over the environment's own.
    from ..remote.sshconfig import runtime_ssh_path

    runtime_ssh = runtime_ssh_path(getattr(c, "config", None))
    if runtime_ssh:
        from ..schema import control_char

        bad = control_char(str(runtime_ssh))
        if bad is not None:
            raise ConfigError(f"-S {runtime_ssh!r}: a path with a control character ({bad})")
        environment.ssh.config = os.path.expanduser(runtime_ssh)
    if loc:
        environment = environment.at_location(loc)
    return cfg, environment


def _load(c: Any, config: str | None, env: str | None) -> tuple[XenfabConfig, Environment]:
    from ..config import config_from_dict, find_config, load_config

    inv = getattr(c, "config", None)
    section = None
    try:
        section = inv.get("xenfab") if inv is not None else None
    except Exception:  # noqa: BLE001 - a Context without config data is fine
        section = None
    if config is None and not os.environ.get("XENFAB_CONFIG") and isinstance(section, dict):
        if "environments" in section:
            cfg = config_from_dict(_plain(section), path="Fabric config section 'xenfab'")
            return cfg, cfg.environment(env)
        if section.get("config"):
            config = os.path.expanduser(str(section["config"]))
    project = getattr(inv, "_project_prefix", None) if inv is not None else None
    dirs = (project.rstrip(os.sep),) if project else ()
    path = find_config(config, dirs)
    cfg = load_config(path)
    return cfg, cfg.environment(env)


def _plain(value: Any) -> Any:
    # Invoke hands config sections over as DataProxy objects; the validator wants plain data.
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def gather_facts(c: Any, cfg: XenfabConfig, env: Environment, from_: str | None) -> Snapshot:
    """The facts a run plans from: a saved snapshot (``--from``), else a fresh gather."""
    if from_:
        return saved_snapshot(from_, env)
    from ..gather import gather
    from ..show.progress import gathering
    from ..start.lock import configured_path

    # The run lock is read in the same round trip, so a held one is said before any prompt.
    # Every gather is kept in the history: a host declared dead later is known by it.
    lock = configured_path(cfg, env)
    return gather(
        env,
        base_config=c.config,
        lock_path=lock,
        history=history_of(cfg, env),
        progress=gathering,
    )


def history_of(cfg: XenfabConfig, env: Environment) -> str:
    """The environment's history directory, beside its audit log (the lab's: in the lab)."""
    from ..history import history_dir

    return history_dir(cfg.audit_log_of(env), env.name)


def _recall(cfg: XenfabConfig, env: Environment, dead: list[str]):
    """What the history remembers of the ``dead`` hosts (plan.recall.Recall), or None."""
    if not dead:
        return None
    from ..cluster import backend as get_backend
    from ..history import recall

    auto_dir = get_backend(env.backend, env.backend_options).options.get("auto_dir")
    return recall(history_of(cfg, env), dead, env.name, auto_dir)


def _timing(cfg: XenfabConfig, env: Environment, snap: Snapshot, request: Any):
    """The run's start caps and each guest's expected start time (plan.timing.Timing)."""
    from ..history import start_history
    from ..plan.timing import Timing, expected_times

    caps = env.start
    samples, gap = start_history(cfg.audit_log_of(env), env.name)
    return Timing(
        per_host=caps.max_starts_per_host,
        in_flight=getattr(request, "parallel", None) or caps.max_starts_in_flight,
        boot_estimate_s=caps.boot_estimate_s,
        estimates=expected_times(snap.guests, samples, caps.boot_estimate_s),
        dispatch_s=gap,
    )


def refusal_of(snap: Snapshot, *, lock: bool = True) -> Refusal | None:
    """Why a start on these facts would be refused before any change, or None.

    ``lock``: also refuse when the facts show another run holding the run lock (not for a
    saved snapshot, a dry run or --break-lock). The engine still takes the lock itself.
    """
    from ..cluster import backend as get_backend
    from ..start.lock import seen_refusal
    from ..start.reader import quorum_refusal

    where = f"read on {snap.master}" if snap.master else "no host could read the cluster"
    backend = get_backend(snap.backend)
    # A backend with no quorum (xl: no cluster manager) has no quorum to refuse on.
    why = quorum_refusal(snap.quorate, where, backend) if backend.quorum else None
    if why is not None:
        return Refusal(RefusalKind.QUORUM, why)
    held = seen_refusal(snap.lock) if lock else None
    return Refusal(RefusalKind.LOCK_HELD, held) if held is not None else None


def refusal(snap: Snapshot, *, lock: bool = True) -> str | None:
    """The text of ``refusal_of`` (for callers that only say it)."""
    found = refusal_of(snap, lock=lock)
    return found.text if found is not None else None


def run_policy(
    cfg: XenfabConfig,
    env: Environment,
    strategy: str | None = None,
    exclude: list[str] | None = None,
) -> Policy:
    """The environment's policy with this run's --strategy and --exclude (added to its own)."""
    from ..plan.policy import with_run_options

    return with_run_options(env.policy, strategy, exclude)


def check_dead(snap: Snapshot, dead: list[str], *, answered: bool = False) -> list[str]:
    """The --dead hosts, each one of the environment's hosts (a typo is an error, not a no-op).

    ``answered``: also refuse a host that answered this run's gather (it listed its domains):
    a host that answers is not dead, and declaring it so would start its running guests again
    elsewhere. Off for what-ifs (capacity) and saved snapshots, where --dead is a premise.
    """
    unknown = [d for d in dead if snap.host(d) is None]
    if unknown:
        raise ConfigError(
            f"--dead: no host {', '.join(unknown)} in environment {snap.environment} "
            f"(hosts: {', '.join(h.name for h in snap.hosts)})"
        )
    if answered:
        from ..start.reader import answered as answered_text

        for name in dead:
            host = snap.host(name)
            if host is not None and host.reachable:
                said = answered_text(name, snap.taken_at, (d.name for d in host.domains))
                raise ConfigError(
                    f"--dead {name}: {said}; declare dead only a host that is powered off or "
                    "fenced (nothing was started)"
                )
    return dead


@dataclass
class Planned:
    """What show-layout and start-* work from: the facts, their refusal, the plan, the backend."""

    cfg: XenfabConfig
    env: Environment
    snap: Snapshot
    dead_hosts: list[str]
    refusal: Refusal | None
    layout: Layout
    policy: Policy
    backend: ClusterBackend


def plan_run(c: Any, cfg: XenfabConfig, env: Environment, request: Any, *, lock: bool) -> Planned:
    """Gather (or load) the facts, check --dead and the refusals, plan: one way for every task.

    ``request`` is the RunRequest. ``lock``: refuse on a run lock the facts show held (not for
    --from, a dry run, --break-lock).
    """
    from ..cluster import backend as get_backend
    from ..plan import plan
    from ..show.progress import SearchNotice

    snap = gather_facts(c, cfg, env, request.from_)
    # A saved snapshot's hosts answered then, not now: --dead is the operator's premise there.
    dead_hosts = check_dead(snap, list(request.dead), answered=not request.from_)
    found = refusal_of(snap, lock=lock)
    policy = run_policy(cfg, env, request.strategy, list(request.exclude))
    if dead_hosts:
        policy = replace(policy, recall=_recall(cfg, env, dead_hosts))
    if request.expect:
        from ..plan.expect import with_expectation

        policy = with_expectation(policy, request.expect, snap)
    policy = replace(policy, timing=_timing(cfg, env, snap, request))
    layout = plan(
        snap, policy, without=list(request.without), dead=dead_hosts, on_search=SearchNotice()
    )
    if layout.search_stopped == "time":
        # The safety stop, not the work budget, ended the search: said, as the JSON says it.
        sys.stderr.write(
            f"xenfab: planning: the search reached its safety stop ({policy.exact_search_s:g} s "
            "of wall time, policy.exact_search_s) before its work budget: this layout may differ "
            "on a less busy machine\n"
        )
    # gather_facts refuses a snapshot of another backend: the environment's is the snapshot's.
    backend = get_backend(env.backend, env.backend_options)
    return Planned(cfg, env, snap, dead_hosts, found, layout, policy, backend)


def saved_run(c: Any, cfg: XenfabConfig, env: Environment, request: Any, *, lock: bool) -> Planned:
    """--plan PATH: fresh facts, the saved layout, refused unless it still holds on them."""
    from ..cluster import backend as get_backend
    from ..plan import saved
    from . import plans

    # The plan carries its own options: a run option beside it would be a plan nobody saw.
    given = {
        "from": request.from_,
        "strategy": request.strategy,
        "exclude": request.exclude,
        "without": request.without,
        "dead": request.dead,
        "expect": request.expect,
    }
    clash = [f"--{name}" for name, value in given.items() if value]
    if clash:
        raise ConfigError(
            f"--plan runs the saved plan as previewed: {', '.join(clash)} belong(s) to "
            "fab show-layout --save"
        )
    doc = plans.load_plan(request.plan, env)
    snap = gather_facts(c, cfg, env, None)
    dead_hosts = check_dead(snap, list(doc["dead"]), answered=True)
    found = refusal_of(snap, lock=lock)
    policy = plans.plan_policy(env.policy, doc)
    if found is None:
        plans.check_plan(doc, request.plan, snap, policy)
    backend = get_backend(env.backend, env.backend_options)
    return Planned(cfg, env, snap, dead_hosts, found, saved.layout_of(doc), policy, backend)
