"""Show: render snapshots and layouts as tables for people or JSON for programs (pure)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from ..cluster import ClusterBackend, UnsafeName
from ..cluster.base import MASTER
from ..snapshot import LockSeen, Snapshot
from ..start.outcome import Outcome
from ..textsafe import printable

if TYPE_CHECKING:  # only type hints: `fab facts` need not load the planner or the engine
    from ..plan.capacity import CapacityReport
    from ..plan.layout import Layout
    from ..start.report import StartReport

TABLE_FORMAT = "simple"


def to_json(data: Any) -> str:
    """Stable, indented JSON for anything a task prints with ``--format json``."""
    return json.dumps(data, indent=2, default=str)


def facts_text(snap: Snapshot) -> str:
    """The gathered facts: hosts, then guests, then problems met (host text made printable)."""
    return printable(_facts_text(snap), newlines=True)


def _facts_text(snap: Snapshot) -> str:
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


def _named(name: str, known: Any) -> str:
    """``name`` with its label for people (an xe uuid's name-label), when it has one."""
    label = getattr(known, "label", None)
    return f"{name} ({label})" if label and label != name else name


def layout_text(
    layout: dict[str, Any],
    snap: Snapshot,
    backend: ClusterBackend,
    explain: bool = False,
    only_hosts: set[str] | None = None,
) -> str:
    """The planned layout: per host the guests to start and RAM before -> after, then the rest."""
    return printable(_layout_text(layout, snap, backend, explain, only_hosts), newlines=True)


def _layout_text(
    layout: dict[str, Any],
    snap: Snapshot,
    backend: ClusterBackend,
    explain: bool,
    only_hosts: set[str] | None,
) -> str:
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
        names = _wrap(", ".join(_named(a["guest"], snap.guest(a["guest"])) for a in placed))
        names = names or "-"
        ram = f"{_or_dash(h['free_mib_before'])} -> {_or_dash(h['free_mib_after'])}"
        status = h.get("status") or "ok"
        if status != "ok":
            names, ram = f"({status})", "-"
        rows.append([_named(name, snap.host(name)), len(placed), names, ram])
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
            parts.append(f"  {u['guest']} ({_mib(u['memory_mib'])}): {u['reason']}")
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
        states = {g.name: g.state for g in snap.guests}
        configs = {g.name: g.config_file for g in snap.guests}
        if backend.start_on == MASTER:
            parts += ["", f"Commands (run on {runner}):"]
            parts += [f"  {start_command(backend, a, states, configs)}" for a in assignments]
        else:
            parts += ["", "Commands (each on its target host):"]
            parts += [
                f"  {a['host']}$ {start_command(backend, a, states, configs)}" for a in assignments
            ]
    else:
        parts += ["", "Nothing to start."]
    parts.extend(_problems(snap.errors, snap.warnings))
    return "\n".join(parts)


def start_command(
    backend: ClusterBackend,
    a: dict[str, Any],
    states: dict[str, str],
    configs: dict[str, str | None] | None = None,
) -> str:
    """The command an assignment needs, as the engine sends it (one code path for both).

    The plan's own state for the guest wins over the snapshot's; a guest taken over from a dead
    owner needs the manager's move sequence; ``configs`` (guest -> config file) serve a backend
    that starts from the file (xl create).
    """
    state = a.get("state") or states.get(a["guest"])
    dead_owner = a.get("takeover_from") or None
    config = (configs or {}).get(a["guest"])
    try:
        return backend.start_command(
            a["guest"], a["host"], state, config=config, dead_owner=dead_owner
        )
    except (UnsafeName, ValueError) as exc:
        return f"# not startable: {exc}"


def _mib(value: int | None) -> str:
    return f"{value} MiB" if value else "size unknown"


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


# Outcomes of a start after which the guest is still down. "skipped" also covers a service that
# vanished from the cluster (not ours any more): only a skip at the prompt leaves it down.
# "unconfirmed" (a second Ctrl-C while a start was in flight) is not known to be up either.
DOWN_OUTCOMES = frozenset({Outcome.FAILED, Outcome.NOT_STARTED, Outcome.UNCONFIRMED})


def still_down(
    layout: Layout,
    report: StartReport | None = None,
    refused: str | None = None,
    only_hosts: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Every guest that is down, ours, and stays down after this run, each with why.

    From the layout's unplaced guests, then (when ``report``) the start report's failed and
    not-started guests; when ``refused`` (nothing was started), every planned guest too. With
    ``only_hosts`` (start-host) only the guests planned there count, besides the unplaced.
    """
    out: dict[str, dict[str, Any]] = {}
    for u in layout.unplaced:
        out[u.guest] = {
            "guest": u.guest,
            "memory_mib": u.memory_mib or None,
            "tier": u.tier,
            "reason": u.reason,
        }
    planned = [a for a in layout.assignments if not only_hosts or a.host in only_hosts]
    sizes = {a.guest: a for a in planned}
    if refused is not None:
        for a in planned:
            out.setdefault(
                a.guest,
                {
                    "guest": a.guest,
                    "memory_mib": a.memory_mib or None,
                    "tier": a.tier,
                    "reason": f"not started (planned on {a.host}): {_short(refused)}",
                },
            )
    if report is not None and not report.dry_run:
        for r in report.results:
            bad = r.outcome in DOWN_OUTCOMES or (
                r.outcome == Outcome.SKIPPED and "prompt" in (r.message or "")
            )
            if not bad or (r.guest in out and r.guest not in sizes):
                continue  # an unplaced guest keeps the planner's reason
            a = sizes.get(r.guest)
            where = f" on {r.host}" if r.host else ""
            out[r.guest] = {
                "guest": r.guest,
                "memory_mib": (a.memory_mib or None) if a else None,
                "tier": a.tier if a else r.tier,
                "reason": f"{r.outcome}{where}" + (f": {r.message}" if r.message else ""),
            }
    return list(out.values())


def _short(refused: str) -> str:
    # The whole refusal is the run's first and last line; each guest repeats only its gist.
    return refused.split(":", 1)[0].split(" (", 1)[0]


def still_down_text(entries: list[dict[str, Any]], preview: bool = False) -> str:
    """The closing block of every run: each guest still down and why (or that none is)."""
    if not entries:
        return (
            "STILL DOWN: none (every down guest would be started)"
            if preview
            else "STILL DOWN: none (every down guest is up)"
        )
    head = "would stay down" if preview else "stay down"
    lines = [f"STILL DOWN: {len(entries)} guest(s) {head}, need SA intervention:"]
    for e in entries:
        lines.append(f"  {e['guest']} ({_mib(e['memory_mib'])}): {e['reason']}")
    return printable("\n".join(lines), newlines=True)


def refusal_text(refused: str) -> str:
    """The first lines of a run that would be refused: said before any plan."""
    return printable(
        f"REFUSED: {refused}\nNothing will be started; the plan below is for reading.",
        newlines=True,
    )


def lock_text(
    seen: LockSeen | None, *, saved_at: str | None = None, break_lock: bool = False
) -> str | None:
    """One line on the run lock the facts show (held, or not read); None when it is free.

    ``saved_at``: the facts are a saved snapshot's, so the lock is as it was then.
    """
    from ..start.lock import owner_seen

    if seen is None or (not seen.held and seen.error is None):
        return None
    if not seen.held:
        line = f"run lock on {seen.host} not read ({seen.error}): the start takes it itself"
    elif saved_at is not None:
        line = (
            f"run lock on {seen.host}, at the time of the snapshot ({saved_at}): held by "
            f"{owner_seen(seen).describe()}; a start reads it afresh"
        )
    else:
        line = f"run lock on {seen.host} held by {owner_seen(seen).describe()}"
        if break_lock:
            line += ": --break-lock breaks it if it is still that run's"
        else:
            line += ": starts would be refused (fab start-all --break-lock if that run is gone)"
    return printable(line)


def layout_json(
    layout: Layout,
    snap: Snapshot,
    backend: ClusterBackend,
    *,
    refused: str | None = None,
    still: list[dict[str, Any]] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The layout as one JSON object carrying everything the table shows, and the facts' state."""
    import time
    from datetime import datetime

    data = layout.to_dict()
    states = {g.name: g.state for g in snap.guests}
    configs = {g.name: g.config_file for g in snap.guests}
    data["commands"] = [
        start_command(backend, asdict(a), states, configs) for a in layout.assignments
    ]
    unreachable = {h.name for h in snap.hosts if not h.reachable}
    for h in data["hosts"]:
        if h["name"] in unreachable:
            # Not measured: 0 would read as "full".
            h["free_mib_before"] = h["free_mib_after"] = None
    if still is not None:
        # `unplaced` lists every guest that stays down (the key scripts already read); the
        # planner's details (per_host, vcpus) stay where it had them.
        planner = {u["guest"]: u for u in data["unplaced"]}
        data["unplaced"] = [{**planner.get(s["guest"], {}), **s} for s in still]
    for u in data["unplaced"]:
        u["memory_mib"] = u.get("memory_mib") or None
    data["complete"] = not data["unplaced"] and refused is None
    age = None
    try:
        taken = datetime.fromisoformat(str(snap.taken_at).replace("Z", "+00:00"))
        age = round((now if now is not None else time.time()) - taken.timestamp(), 1)
    except (TypeError, ValueError):
        pass
    data.update(
        environment=snap.environment,
        taken_at=snap.taken_at,
        age_s=age,
        master=snap.master,
        quorate=snap.quorate,
        refused=refused,
        lock=asdict(snap.lock) if snap.lock is not None else None,
        gather_errors=list(snap.errors),
        gather_warnings=list(snap.warnings),
    )
    return data


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
    return printable(_capacity_text(report), newlines=True)


def _capacity_text(report: CapacityReport) -> str:
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
