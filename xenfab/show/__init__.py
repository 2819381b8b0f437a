"""Show: render snapshots and layouts as tables for people or JSON for programs (pure)."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from ..cluster import ClusterBackend, UnsafeName
from ..cluster.base import MASTER
from ..snapshot import Guest, Snapshot

if TYPE_CHECKING:  # only a type hint: `fab facts` need not load the planner
    from ..plan.capacity import CapacityReport

TABLE_FORMAT = "simple"


def to_json(data: Any) -> str:
    """Stable, indented JSON for anything a task prints with ``--format json``."""
    return json.dumps(data, indent=2, default=str)


def facts_text(snap: Snapshot) -> str:
    """The gathered facts: hosts, then guests, then problems met."""
    hosts = [
        [
            h.name,
            "yes" if h.reachable else "NO",
            h.toolstack or "-",
            h.xen_version or "-",
            h.total_mib or "-",
            h.free_mib if h.reachable else "-",
            h.cpus or "-",
            sum(1 for d in h.domains if d.name != "Domain-0"),
            h.location or "-",
        ]
        for h in snap.hosts
    ]
    parts = [
        f"Environment {snap.environment} at {snap.taken_at}: master {snap.master or '-'}, "
        f"quorate {_yes_no(snap.quorate)}",
        "",
        tabulate(
            hosts,
            headers=[
                "host",
                "up",
                "toolstack",
                "xen",
                "total MiB",
                "free MiB",
                "cpus",
                "domains",
                "location",
            ],
            tablefmt=TABLE_FORMAT,
        ),
        "",
    ]
    guests = [
        [
            g.name,
            g.state,
            g.owner or (f"({g.last_owner})" if g.last_owner else "-"),
            g.memory_mib or "-",
            g.vcpus,
            ",".join(g.running_on) or "-",
            "" if g.plannable else g.reason,
        ]
        for g in snap.guests
    ]
    parts.append(
        tabulate(
            guests,
            headers=["guest", "state", "owner (last)", "MiB", "vcpus", "running on", "note"],
            tablefmt=TABLE_FORMAT,
        )
    )
    parts.extend(_problems(snap.errors, snap.warnings))
    return "\n".join(parts)


# Wide enough for a few names a line; a host given 50 guests would otherwise be one line of
# 600 characters that no terminal shows whole.
GUEST_COLUMN = 64


def _wrap(text: str) -> str:
    # Breaks only after ", ": a guest name (hyphens and all) stays on one line.
    return "\n".join(
        textwrap.wrap(text, GUEST_COLUMN, break_long_words=False, break_on_hyphens=False)
    )


def command_text(backend: ClusterBackend, guests: dict[str, Guest], a: dict[str, Any]) -> str:
    """The start command of assignment ``a`` (a layout's dict), or why there is none."""
    g = guests.get(a["guest"])
    try:
        if g is None:
            return backend.start_command(a["guest"], a["host"])
        return backend.command_for(g, a["host"], a.get("takeover_from"))
    except (UnsafeName, ValueError) as exc:
        return f"# not startable: {exc}"


def layout_text(
    layout: dict[str, Any],
    snap: Snapshot,
    backend: ClusterBackend,
    explain: bool = False,
    only_hosts: set[str] | None = None,
) -> str:
    """The planned layout: per host the guests to start and RAM before -> after, then the rest."""
    assignments = [a for a in layout["assignments"] if not only_hosts or a["host"] in only_hosts]
    by_host: dict[str, list[dict]] = {}
    for a in assignments:
        by_host.setdefault(a["host"], []).append(a)
    rows = []
    for h in layout["hosts"]:
        name = h["name"]
        if only_hosts and name not in only_hosts:
            continue
        placed = by_host.get(name, [])
        names = _wrap(", ".join(a["guest"] for a in placed)) or "-"
        ram = f"{h['free_mib_before']} -> {h['free_mib_after']}"
        status = h.get("status") or "ok"
        if status != "ok":
            names, ram = f"({status})", "-"
        rows.append([name, len(placed), names, ram])
    title = f"Layout for {snap.environment} ({layout.get('strategy', '?')}"
    method = layout.get("method")
    title += f", {method})" if method else ")"
    parts = [
        title,
        "",
        tabulate(
            rows,
            headers=["host", "#", "guests to start", "free MiB before -> after"],
            tablefmt=TABLE_FORMAT,
        ),
    ]
    if explain and assignments:
        parts += ["", "Why each host:"]
        parts += [f"  {a['guest']} -> {a['host']}: {a.get('why', '')}" for a in assignments]
    if layout["skipped"]:
        parts += ["", "Skipped (not down, or not ours to start):"]
        parts.append(
            tabulate(
                [[s["guest"], s["state"], s["reason"]] for s in layout["skipped"]],
                headers=["guest", "state", "reason"],
                tablefmt=TABLE_FORMAT,
            )
        )
    if layout["unplaced"]:
        parts += ["", "UNPLACED (need SA intervention):"]
        for u in layout["unplaced"]:
            parts.append(f"  {u['guest']} ({u['memory_mib']} MiB): {u['reason']}")
            if explain:
                for host, why in sorted((u.get("per_host") or {}).items()):
                    parts.append(f"      {host}: {why}")
    for warning in layout.get("warnings") or []:
        parts.append(f"warning: {warning}")
    if assignments:
        runner = snap.master
        if snap.master in (layout.get("without") or []):
            # What-if: the master itself failed; any surviving member can run clusvcadm.
            runner = next(
                (h["name"] for h in layout["hosts"] if h.get("status", "ok") == "ok"), "-"
            )
        guests = {g.name: g for g in snap.guests}
        if backend.start_on == MASTER:
            parts += ["", f"Commands (run on {runner}):"]
            parts += [f"  {command_text(backend, guests, a)}" for a in assignments]
        else:
            parts += ["", "Commands (each on its target host):"]
            parts += [f"  {a['host']}$ {command_text(backend, guests, a)}" for a in assignments]
    else:
        parts += ["", "Nothing to start."]
    parts.extend(_problems(snap.errors, snap.warnings))
    return "\n".join(parts)


def _problems(errors: list[str], warnings: list[str]) -> list[str]:
    out = []
    if errors:
        out += ["", "Problems met while gathering:"] + [f"  - {e}" for e in errors]
    if warnings:
        out += ["", "Warnings:"] + [f"  - {w}" for w in warnings]
    return out


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "NO")


def capacity_text(report: CapacityReport) -> str:
    """The report as tables for people: the verdict, per host, then who stays down first."""
    counted = (
        f"{report.guests_running} running + {report.guests_down} down guests"
        if report.mode == "recovered"
        else f"{report.guests_running} running guests (down guests not counted)"
    )
    rows = []
    for h in report.hosts:
        survives = {True: "yes", False: "NO", None: "-"}[h.survives]
        down = ", ".join(f"{d.guest} (tier {d.tier})" for d in h.stay_down) or "-"
        rows.append([h.host, h.status, h.guests, h.ram_mib, h.planned, survives, down])
    parts = [
        f"N+k for {report.environment}: {report.mode} cluster, {counted}; policy {report.strategy}",
        report.statement,
        "",
        tabulate(
            rows,
            headers=[
                "host fails",
                "status",
                "guests",
                "MiB to move",
                "planned",
                "all restart",
                "would stay down",
            ],
            tablefmt=TABLE_FORMAT,
        ),
    ]
    if report.first_to_stay_down:
        failed = report.hosts_failed
        when = (
            f"when {', '.join(failed)} fail{'s' if len(failed) == 1 else ''}"
            if failed
            else "now, with no host failing"
        )
        parts += ["", f"First to stay down ({when}):"]
        parts += [
            f"  {d.guest} (tier {d.tier}, {d.memory_mib} MiB): {d.reason}"
            for d in report.first_to_stay_down
        ]
        if report.planner_proven is False:
            parts.append("  (the planner's search ran out of time: some of them might fit)")
    parts += [
        "",
        f"Checked {report.checked_sets} failure set(s) in {report.seconds:.2f} s: "
        f"{report.planned_sets} by the planner, {report.pruned_sets} by RAM/vCPU sums alone.",
    ]
    parts += [f"warning: {w}" for w in report.warnings]
    return "\n".join(parts)
