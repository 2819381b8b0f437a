"""Turn raw per-host outputs into a Snapshot (pure: parsing and joining, no I/O)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..cluster import ClusterBackend, ClusterState, Gathered, Output
from ..config import HostEntry
from ..parse import ParseError, parse_guest_config, parse_xl_info, parse_xl_list
from ..parse.records import GuestConfig
from ..snapshot import Domain, Guest, Host, LockSeen, Snapshot
from .lockfile import PEEK_PROBE, LockUnread, parse_peek


@dataclass
class HostReport:
    """What gathering got from one host: its probe outputs, or why it got nothing."""

    name: str
    outputs: dict[str, Output] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    # What kind of failure ``error`` is when the host could not be asked at all (the remote
    # layer's kinds: "host-key-changed", "refused", ...); None when it answered.
    error_kind: str | None = None
    # Config files seen but not read (too large, a name with control characters): path -> why.
    file_errors: dict[str, str] = field(default_factory=dict)


def host_facts(entry: HostEntry, report: HostReport) -> Host:
    """A Host from one host's outputs; a host we cannot read is unreachable, with the reason."""
    host = Host(name=entry.name, location=entry.location, domain=entry.domain)
    host.rtt_ms = round(report.seconds * 1000, 1) if report.seconds else None
    if report.error is not None:
        host.reachable, host.error = False, report.error
        host.error_kind = report.error_kind
        return host
    toolstack = (report.outputs.get("toolstack") or Output("", 1)).text.strip() or None
    host.toolstack = toolstack
    info = report.outputs.get("info")
    if info is None or info.exit_code != 0:
        first = (info.text.strip().splitlines() or [""])[0] if info else "no output"
        host.reachable = False
        host.error = f"{entry.name}: `{toolstack or 'xl'} info` failed: {first}".rstrip(": ")
        return host
    try:
        parsed = parse_xl_info(info.text, source=f"{entry.name}: {toolstack} info")
        host.total_mib, host.free_mib, host.cpus = parsed.total_mib, parsed.free_mib, parsed.cpus
        host.xen_version = parsed.xen_version
    except ParseError as exc:
        host.reachable, host.error = False, str(exc)
        return host
    listing = report.outputs.get("list")
    if listing is not None and listing.exit_code == 0:
        try:
            doms = parse_xl_list(listing.text, source=f"{entry.name}: {toolstack} list")
            host.domains = [Domain(d.name, d.mem_mib, d.vcpus, d.state) for d in doms]
        except ParseError as exc:
            host.error = str(exc)
    else:
        host.error = f"{entry.name}: `{toolstack} list` failed; running domains unknown"
    return host


def guests_from(
    files: dict[str, str],
    cluster: ClusterState,
    hosts: list[Host],
    config_dir: str,
    file_errors: dict[str, str] | None = None,
    configs_error: str | None = None,
    backend: ClusterBackend | None = None,
    host_outputs: dict[str, dict[str, Output]] | None = None,
) -> tuple[list[Guest], list[str]]:
    """Join guest configs, cluster services and running domains into Guests (sorted by name).

    A guest of the cluster whose config cannot be told is kept, not plannable, with the reason
    naming the file(s) and line: the planner reports it as still down.
    """
    errors: list[str] = []
    by_name: dict[str, list[tuple[str, GuestConfig]]] = {}
    broken: dict[str, str] = {}  # file name -> why it cannot be read (file and line inside)
    for path, why in sorted((file_errors or {}).items()):
        broken[os.path.basename(path)] = f"{path}: {why}"
    for path in sorted(files):
        if os.path.basename(path) in broken:
            continue
        try:
            cfg = parse_guest_config(files[path], source=path)
        except ParseError as exc:
            broken[os.path.basename(path)] = str(exc)
            continue
        by_name.setdefault(cfg.name, []).append((path, cfg))
    configs: dict[str, tuple[str, GuestConfig]] = {}
    ambiguous: dict[str, list[str]] = {}
    for name, found in by_name.items():
        if len(found) == 1:
            configs[name] = found[0]
        else:
            # Which one is real is unknown (a stray backup, a copy): never guess a size.
            ambiguous[name] = [path for path, _ in found]
            errors.append(
                f"guest {name} is defined by {len(found)} files: {', '.join(ambiguous[name])}"
            )
    running: dict[str, list[str]] = {}
    for host in hosts:
        for dom in host.domains:
            running.setdefault(dom.name, []).append(host.name)
    if backend is not None:
        # A backend without its own service state (xl) makes one from configs and domain lists.
        named = {name: path for name, (path, _) in configs.items()}
        # Paths, not the basename keys of `broken`: the backend tells its own links apart.
        unreadable = {path: why for path, why in (file_errors or {}).items()}
        unreadable.update({os.path.join(config_dir, key): why for key, why in broken.items()})
        gathered = Gathered(
            named, running, host_outputs or {}, unreadable, tuple(h.name for h in hosts)
        )
        cluster = backend.complete(cluster, gathered)
        # What each host's autostart directory links rides on its Host (the history keeps it).
        linked = cluster.extra.get("autostart") or {}
        for host in hosts:
            if host.name in linked:
                host.autostart = list(linked[host.name])
    guests: list[Guest] = []
    for name in sorted(set(cluster.services) | set(configs) | set(ambiguous)):
        svc = cluster.services.get(name)
        guest = Guest(name=name, running_on=sorted(running.get(name, [])))
        if svc is not None:
            guest.state, guest.owner, guest.last_owner = svc.state, svc.owner, svc.last_owner
            if svc.note and backend is not None and backend.states.kind(svc.state) == "unknown":
                guest.reason = svc.note
        else:
            guest.state, guest.plannable = "no-service", False
            guest.reason = "not a vm: service of the cluster"
        if name in ambiguous:
            guest.plannable = False
            guest.reason = f"{len(ambiguous[name])} config files give name '{name}': " + ", ".join(
                ambiguous[name]
            )
        elif name in configs:
            path, cfg = configs[name]
            guest.config_file = path
            guest.maxmem_mib = cfg.maxmem_mib
            # Charge maxmem, as the seed did: a guest may balloon up to it.
            guest.memory_mib = max(cfg.memory_mib, cfg.maxmem_mib)
            guest.vcpus = cfg.vcpus
        elif _broken_for(name, broken):
            key = _broken_for(name, broken)
            guest.config_file = os.path.join(config_dir, key) if key else None
            guest.plannable, guest.reason = False, f"config unreadable: {broken.pop(key or '')}"
        elif svc is not None:
            guest.plannable = False
            if configs_error is not None:
                guest.reason = f"guest configs not read: {configs_error}"
            elif not files and not broken and not file_errors:
                guest.reason = f"guest config directory {config_dir} has no config files"
            else:
                guest.reason = f"no config file in {config_dir} gives name = '{name}'"
            if broken:
                # The file may be this guest's, under another name: point the admin at it.
                guest.reason += (
                    f"; unreadable there: {'; '.join(broken[k] for k in sorted(broken))}"
                )
        guests.append(guest)
    errors.extend(f"{why} (guest config skipped)" for why in broken.values())
    return guests, errors


def assemble(
    environment: str,
    taken_at: str,
    entries: list[HostEntry],
    reports: dict[str, HostReport],
    master: str | None,
    backend: ClusterBackend,
    config_dir: str,
) -> Snapshot:
    """Build the Snapshot from every host's report; ``master`` is the host that read the cluster."""
    if not backend.reads_guest_configs:
        return _from_state(environment, taken_at, entries, reports, master, backend)
    hosts = [
        host_facts(e, reports.get(e.name, HostReport(e.name, error="not asked"))) for e in entries
    ]
    errors = [h.error for h in hosts if h.error]
    mreport = reports.get(master) if master else None
    configs_error: str | None = None
    file_errors: dict[str, str] = {}
    if mreport is None or mreport.error is not None:
        cluster = ClusterState(None, error="no host could read the cluster state")
        files: dict[str, str] = {}
    else:
        cluster = backend.parse_state(mreport.outputs, source=master)
        files = mreport.files
        file_errors = dict(getattr(mreport, "file_errors", None) or {})
        cfg_out = mreport.outputs.get("configs")
        if cfg_out is not None and cfg_out.exit_code != 0:
            configs_error = f"{master}: {cfg_out.text.strip() or f'exit {cfg_out.exit_code}'}"
            errors.append(f"{master}: guest configs: {cfg_out.text.strip()}")
    if cluster.error:
        errors.append(cluster.error)
    _members_onto(hosts, cluster)
    outputs = {h.name: reports[h.name].outputs for h in hosts if h.reachable and h.name in reports}
    guests, guest_errors = guests_from(
        files, cluster, hosts, config_dir, file_errors, configs_error, backend, outputs
    )
    return Snapshot(
        environment=environment,
        taken_at=taken_at,
        master=master,
        quorate=cluster.quorate,
        hosts=hosts,
        guests=guests,
        backend=backend.name,
        errors=errors,
        warnings=guest_errors,
    )


def _from_state(
    environment: str,
    taken_at: str,
    entries: list[HostEntry],
    reports: dict[str, HostReport],
    master: str | None,
    backend: ClusterBackend,
) -> Snapshot:
    """The Snapshot of a backend whose state read on ``master`` is the whole inventory.

    With no master's answer, the environment's hosts are all the snapshot knows: each one
    unreachable, with why (not asked, or its error).
    """
    mreport = reports.get(master) if master else None
    errors: list[str] = []
    warnings: list[str] = []
    if mreport is None or mreport.error is not None:
        cluster = ClusterState(None, error="no host could read the cluster state")
        hosts = []
        for e in entries:
            report = reports.get(e.name) or HostReport(e.name, error="not asked")
            host = Host(name=e.name, location=e.location, domain=e.domain, reachable=False)
            host.error = report.error or f"{e.name}: answered, but not as the {backend.name} master"
            host.error_kind = report.error_kind
            hosts.append(host)
            if report.error:
                errors.append(report.error)
        guests: list[Guest] = []
    else:
        cluster = backend.parse_state(mreport.outputs, source=master or "")
        inventory = backend.inventory(cluster, mreport.outputs, master or "")
        hosts, guests = list(inventory.hosts), list(inventory.guests)
        errors.extend(inventory.errors)
        warnings.extend(inventory.warnings)
        rtt = round(mreport.seconds * 1000, 1) if mreport.seconds else None
        for host in hosts:
            host.rtt_ms = host.rtt_ms if host.rtt_ms is not None else rtt
    if cluster.error:
        errors.append(cluster.error)
    _members_onto(hosts, cluster)
    return Snapshot(
        environment=environment,
        taken_at=taken_at,
        master=master,
        quorate=cluster.quorate,
        hosts=hosts,
        guests=guests,
        backend=backend.name,
        errors=errors,
        warnings=warnings,
    )


def _members_onto(hosts: list[Host], cluster: ClusterState) -> None:
    """Record the cluster manager's word on each host (its member, by full or short name).

    ``fenced``: offline, and the manager's fencing record proves it fenced after it left.
    """
    if cluster.error is not None and not cluster.members:
        return
    word = {
        m: "online" if up else "fenced" if cluster.fenced.get(m) else "offline"
        for m, up in cluster.members.items()
    }
    short = {m.split(".", 1)[0]: w for m, w in word.items()}
    for host in hosts:
        said = word.get(host.name)
        if said is None:
            said = short.get(host.name.split(".", 1)[0])
        if said is not None:
            host.member = said  # type: ignore[assignment]


def _broken_for(name: str, broken: dict[str, str]) -> str | None:
    """The unreadable config file named after guest ``name`` (``name``, ``name.cfg``...)."""
    for ext in ("", ".cfg", ".conf", ".xl", ".hvm"):
        if name + ext in broken:
            return name + ext
    return None


def lock_seen(host: str, path: str, report: HostReport | None) -> LockSeen:
    """The run lock as ``host``'s report shows it (its ``lock`` probe), or why it was not read."""
    seen = LockSeen(host=host, path=path)
    out = report.outputs.get(PEEK_PROBE) if report is not None else None
    if out is None:
        if report is None:
            seen.error = f"lock host {host} was not asked"
        elif report.error is not None:
            seen.error = f"lock host {host} unreachable"
        else:
            seen.error = f"lock not read on {host}"
        return seen
    try:
        owner = parse_peek(out.text)
    except LockUnread as exc:
        seen.error = f"cannot read the lock {path} on {host}: {exc}"
        return seen
    if owner is not None:
        seen.held = True
        seen.user, seen.pid, seen.token = owner.user, owner.pid, owner.token or None
        seen.started = owner.started or None
        seen.age_s = int(owner.age_s) if owner.age_s is not None else None
    return seen
