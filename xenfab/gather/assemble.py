"""Turn raw per-host outputs into a Snapshot (pure: parsing and joining, no I/O)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..cluster import ClusterBackend, ClusterState, Output
from ..config import HostEntry
from ..parse import ParseError, parse_guest_config, parse_xl_info, parse_xl_list
from ..snapshot import Domain, Guest, Host, Snapshot


@dataclass
class HostReport:
    """What gathering got from one host: its probe outputs, or why it got nothing."""

    name: str
    outputs: dict[str, Output] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    # Config files seen but not read (too large, a name with control characters): path -> why.
    file_errors: dict[str, str] = field(default_factory=dict)


def host_facts(entry: HostEntry, report: HostReport) -> Host:
    """A Host from one host's outputs; a host we cannot read is unreachable, with the reason."""
    host = Host(name=entry.name, location=entry.location, domain=entry.domain)
    host.rtt_ms = round(report.seconds * 1000, 1) if report.seconds else None
    if report.error is not None:
        host.reachable, host.error = False, report.error
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
    files: dict[str, str], cluster: ClusterState, hosts: list[Host], config_dir: str
) -> tuple[list[Guest], list[str]]:
    """Join guest configs, cluster services and running domains into Guests (sorted by name)."""
    errors: list[str] = []
    configs: dict[str, tuple[str, object]] = {}
    broken: dict[str, ParseError] = {}
    for path in sorted(files):
        try:
            cfg = parse_guest_config(files[path], source=path)
        except ParseError as exc:
            broken[os.path.basename(path)] = exc
            continue
        if cfg.name in configs:
            errors.append(f"{path}: guest {cfg.name} is also defined in {configs[cfg.name][0]}")
            continue
        configs[cfg.name] = (path, cfg)
    running: dict[str, list[str]] = {}
    for host in hosts:
        for dom in host.domains:
            running.setdefault(dom.name, []).append(host.name)
    guests: list[Guest] = []
    for name in sorted(set(cluster.services) | set(configs)):
        svc = cluster.services.get(name)
        guest = Guest(name=name, running_on=sorted(running.get(name, [])))
        if svc is not None:
            guest.state, guest.owner, guest.last_owner = svc.state, svc.owner, svc.last_owner
        else:
            guest.state, guest.plannable = "no-service", False
            guest.reason = "not a vm: service of the cluster"
        if name in configs:
            path, cfg = configs[name]
            guest.config_file = path
            guest.maxmem_mib = cfg.maxmem_mib
            # Charge maxmem, as the seed did: a guest may balloon up to it.
            guest.memory_mib = max(cfg.memory_mib, cfg.maxmem_mib)
            guest.vcpus = cfg.vcpus
        elif _broken_for(name, broken):
            exc = broken.pop(_broken_for(name, broken))
            guest.plannable, guest.reason = False, f"config unreadable: {exc}"
        elif svc is not None:
            guest.plannable = False
            guest.reason = f"no config file with name = {name!r} in {config_dir}"
            if broken:
                # The file may be this guest's, under another name: point the admin at it.
                guest.reason += f" (unreadable there: {', '.join(sorted(broken))})"
        guests.append(guest)
    errors.extend(f"{exc} (guest config skipped)" for exc in broken.values())
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
    hosts = [
        host_facts(e, reports.get(e.name, HostReport(e.name, error="not asked"))) for e in entries
    ]
    errors = [h.error for h in hosts if h.error]
    mreport = reports.get(master) if master else None
    if mreport is None or mreport.error is not None:
        cluster = ClusterState(None, error="no host could read the cluster state")
        files: dict[str, str] = {}
    else:
        cluster = backend.parse_state(mreport.outputs, source=master)
        files = mreport.files
        cfg_out = mreport.outputs.get("configs")
        if cfg_out is not None and cfg_out.exit_code != 0:
            errors.append(f"{master}: guest configs: {cfg_out.text.strip()}")
    if cluster.error:
        errors.append(cluster.error)
    guests, guest_errors = guests_from(files, cluster, hosts, config_dir)
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


def _broken_for(name: str, broken: dict[str, ParseError]) -> str | None:
    """The unreadable config file named after guest ``name`` (``name``, ``name.cfg``...)."""
    for ext in ("", ".cfg", ".conf", ".xl", ".hvm"):
        if name + ext in broken:
            return name + ext
    return None
