"""Show: render snapshots and layouts as tables for people or JSON for programs (pure)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from ..cluster import ClusterBackend, UnsafeName
from ..cluster.base import MASTER
from ..duplicates import Duplicate
from ..duplicates import line as duplicate_line
from ..snapshot import LockSeen, Snapshot
from ..start.outcome import Outcome
from ..textsafe import format_duration, printable
from ..values import labels, speaker, spoken
from .notes import Notes, active, width, wrap

if TYPE_CHECKING:  # only type hints: `fab facts` need not load the planner or the engine
    from ..plan.capacity import CapacityReport
    from ..plan.layout import Layout
    from ..start.report import StartReport

TABLE_FORMAT = "simple"


def to_json(data: Any) -> str:
    """Stable, indented JSON for anything a task prints with ``--format json``."""
    return json.dumps(data, indent=2, default=str)


def duplicates_json(dups: list[Duplicate]) -> list[dict[str, Any]]:
    """The ``duplicates`` key of every JSON document: [{"guest": ..., "hosts": [...]}]."""
    return [{"guest": d.guest, "hosts": list(d.hosts)} for d in dups]


def duplicates_text(dups: list[Duplicate], snap: Snapshot | None = None) -> str | None:
    """One ``DUPLICATE: ...`` line per guest running on two or more hosts; None when none.

    ``snap`` names each host's toolstack, so the advice gives the command that host takes.
    """
    if not dups:
        return None
    tools = {h.name: h.toolstack for h in snap.hosts} if snap is not None else {}
    lines = [ln for d in dups for ln in wrap(printable(duplicate_line(d, tools)), "", "  ")]
    return "\n".join(lines)


def facts_text(snap: Snapshot) -> str:
    """The gathered facts: hosts, then guests, then problems met (host text made printable)."""
    return printable(_facts_text(snap), newlines=True)


def _facts_text(snap: Snapshot) -> str:
    notes = active()
    say = speaker(labels(snap.guests, snap.hosts))  # xe's uuids by label, their heads beside
    hosts = [
        [
            say(h.name),
            _up(h),
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
        f"Environment {snap.environment} at {snap.taken_at}: {cluster_words(snap)}",
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
    twice = {d.guest for d in snap.duplicates}
    guests = [
        [
            say(g.name),
            g.state,
            say(g.owner) if g.owner else (f"({say(g.last_owner)})" if g.last_owner else "-"),
            g.memory_mib or "-",
            g.vcpus,
            ",".join(map(say, g.running_on)) or "-",
            guest_note(g, g.name in twice),
        ]
        for g in snap.guests
    ]
    headers = ["guest", "state", "owner (last)", "MiB", "vcpus", "running on", "note"]
    parts.append(fitted_table(guests, headers, len(headers) - 1, notes))
    parts.extend(notes.lines())
    parts.extend(_problems(snap.errors, snap.warnings, notes))
    return "\n".join(parts)


def guest_note(g: Any, duplicated: bool = False) -> str:
    """The facts table's note on a guest: running twice, an unstartable name, or its reason."""
    from ..cluster.base import GUEST_NAME

    notes = []
    if duplicated:
        notes.append("DUPLICATE: running on " + " and ".join(g.running_on))
    if not GUEST_NAME.match(g.name):
        notes.append(unstartable_name(g.name))
    if not g.plannable and g.reason:
        notes.append(g.reason)
    return "; ".join(notes)


def unstartable_name(name: str) -> str:
    """Why a guest named ``name`` is never started (the planner's words for it)."""
    return f"name '{name}' has characters xenfab will not send to a shell"


def cluster_words(snap: Snapshot) -> str:
    """Who read the cluster and its quorum, in the backend's words (xl has neither)."""
    from ..cluster import backend as get_backend

    try:
        backend = get_backend(snap.backend)
    except Exception:  # noqa: BLE001 - an unknown backend name: say what the snapshot says
        backend = None
    if backend is not None and not backend.quorum:
        return f"{snap.backend}, no cluster manager"
    return f"master {snap.master or '-'}, quorate {_yes_no(snap.quorate)}"


def cluster_read_line(snap: Snapshot) -> str:
    """``fab check``'s line on the cluster: who read it and its quorum; xl has neither."""
    from ..cluster import backend as get_backend

    try:
        quorum = get_backend(snap.backend).quorum
    except Exception:  # noqa: BLE001 - an unknown backend name: say what the snapshot says
        quorum = True
    if not quorum:
        return f"cluster: {cluster_words(snap)} (each host read on its own)"
    return f"cluster read on {snap.master or '-'}: quorate {_yes_no(snap.quorate)}"


def _up(host: Any) -> str:
    """``yes``, ``NO``, or ``answers`` for a host whose SSH works but whose tools failed."""
    if host.reachable:
        return "yes"
    return "answers" if tools_failed(host) else "NO"


def tools_failed(host: Any) -> str | None:
    """``answers, `xl info` failed`` for a host that answered but whose tools failed, else None."""
    import re

    if host.reachable or getattr(host, "error_kind", None) or not host.error:
        return None
    m = re.search(r"`([^`]+)` failed", host.error)
    return f"answers, `{m.group(1)}` failed" if m else "answers, its tools failed"


# A cell of several words longer than this takes two lines or more in a table that must narrow.
CELL_WRAP = 24


def _two_lines(cell: Any) -> Any:
    """A text of several words over lines of CELL_WRAP; any other cell as it is."""
    if not isinstance(cell, str) or " " not in cell or len(cell) <= CELL_WRAP:
        return cell
    return "\n".join(textwrap.wrap(cell, CELL_WRAP, break_long_words=False, break_on_hyphens=False))


def fitted_table(rows: list[list[Any]], headers: list[str], col: int, notes: Notes) -> str:
    """A table whose column ``col`` (the long texts) is cut to fit ``width()``, with footnotes.

    When even the other columns leave no room (long guest names in a narrower view), headers
    of several words take two lines, and so do long texts of several words (xe's name-labels):
    a name without spaces is never cut.
    """

    def without(cells: list[Any]) -> list[Any]:
        return [c for i, c in enumerate(cells) if i != col]

    shape: dict[str, Any] = {"tablefmt": TABLE_FORMAT}
    for attempt in (1, 2):
        wrapped = shape.get("maxheadercolwidths")
        extra = {"maxheadercolwidths": without(wrapped)} if wrapped else {}
        rest = tabulate(
            [without(r) for r in rows], headers=without(headers), tablefmt=TABLE_FORMAT, **extra
        )
        used = max((len(ln) for ln in rest.split("\n")), default=0)
        # The fitted column takes at least its header and tabulate's 2 columns of padding.
        if attempt == 2 or used + 2 + len(headers[col]) + 2 <= width():
            break
        # The longest word of each header: "owner (last)" over two lines, as narrow as "owner".
        shape["maxheadercolwidths"] = [max(map(len, h.split())) for h in headers]
        rows = [[c if i == col else _two_lines(c) for i, c in enumerate(r)] for r in rows]
    room = max(len(headers[col]), width() - used - 2)
    fitted = [
        [notes.fit(str(c), room) if i == col and c else c for i, c in enumerate(r)] for r in rows
    ]
    return tabulate(fitted, headers=headers, **shape)


# Wide enough for a few names a line, narrow enough that the table fits width() with the RAM
# column; a host given 50 guests would otherwise be one line of 600 characters.
GUEST_COLUMN = 48


def _wrap(text: str) -> str:
    # Breaks only after ", ": a guest name (hyphens and all) stays on one line.
    return "\n".join(
        textwrap.wrap(text, GUEST_COLUMN, break_long_words=False, break_on_hyphens=False)
    )


def _named(name: str, known: Any) -> str:
    """``name`` as people say it (values.spoken): an xe uuid's name-label, the uuid's head
    beside it; the whole uuid is in the JSON and in the commands (--verbose)."""
    return spoken(name, getattr(known, "label", None))


def layout_text(
    layout: dict[str, Any],
    snap: Snapshot,
    backend: ClusterBackend,
    explain: bool = False,
    only_hosts: set[str] | None = None,
    verbose: bool = False,
) -> str:
    """The planned layout: per host the guests to start and RAM before -> after, then the rest.

    Each start is said in plain words; ``verbose`` adds the exact remote command under it.
    """
    return printable(
        _layout_text(layout, snap, backend, explain, only_hosts, verbose), newlines=True
    )


def _layout_text(
    layout: dict[str, Any],
    snap: Snapshot,
    backend: ClusterBackend,
    explain: bool,
    only_hosts: set[str] | None,
    verbose: bool = False,
) -> str:
    notes = active()
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
            host = snap.host(name)
            said = tools_failed(host) if host is not None else None
            names, ram = f"({said or status})", "-"
        rows.append([_named(name, snap.host(name)), len(placed), names, ram])
    title = f"Layout for {snap.environment} ({layout.get('strategy', '?')}"
    method = layout.get("method")
    title += f", {method})" if method else ")"
    parts = [
        title,
        # Above the table: the lines under it are read as the table's rows by some callers.
        *expected_lines(layout),
        "",
        tabulate(
            rows,
            headers=["host", "#", "guests to start", "free MiB before -> after"],
            tablefmt=TABLE_FORMAT,
        ),
    ]
    reserves = {h.get("reserve_mib") or 0 for h in layout["hosts"]}
    if reserves - {0}:
        # The fit texts speak of room; the table of free RAM: name the difference once.
        kept = ", ".join(str(r) for r in sorted(reserves))
        parts.append(f"room = free - reserve_mib ({kept} MiB kept free on every host)")
    if explain and assignments:
        parts += ["", "Why each host:"]
        for a in assignments:
            parts += wrap(f"{a['guest']} -> {a['host']}: {a.get('why', '')}", "  ", "      ")
    if layout["skipped"]:
        # Running guests are most of a cluster: named in a few lines, like "Started as planned";
        # every other skip keeps its row and reason.
        up = [
            s
            for s in layout["skipped"]
            if backend.states.kind(s["state"]) == "running" and not explain
        ]
        rest = [s for s in layout["skipped"] if s not in up]
        if up:
            names = ", ".join(s["guest"] for s in up)
            parts += [""] + wrap(f"Already running ({len(up)}): {names}", "", "  ")
        if rest:
            parts += ["", "Skipped (not down, or not ours to start):"]
            skipped = [[s["guest"], s["state"], s["reason"]] for s in rest]
            parts.append(fitted_table(skipped, ["guest", "state", "reason"], 2, notes))
    if layout["unplaced"]:
        parts += ["", "UNPLACED (need SA intervention):"]
        for u in layout["unplaced"]:
            parts.append(_guest_line(u["guest"], u["memory_mib"], u["reason"], notes))
            if explain:
                for host, why in sorted((u.get("per_host") or {}).items()):
                    parts += wrap(f"{host}: {why}", "      ", "        ")
    for warning in layout.get("warnings") or []:
        parts += _said_once(str(warning), "warning: ", notes)
    if assignments:
        runner = snap.master
        if snap.master in (layout.get("without") or []):
            # What-if: the master itself failed; any surviving member can run clusvcadm.
            runner = next(
                (h["name"] for h in layout["hosts"] if h.get("status", "ok") == "ok"), "-"
            )
        states = {g.name: g.state for g in snap.guests}
        configs = {g.name: g.config_file for g in snap.guests}
        exact = "the exact commands below each" if verbose else "exact commands: --verbose"
        if backend.start_on == MASTER:
            parts += ["", f"Commands (run on {runner}): {backend.start_tool}; {exact}"]
        else:
            parts += ["", f"Commands (each on its target host): {backend.start_tool}; {exact}"]
        for a in assignments:
            parts += wrap(plain_action(backend, a, states, configs), "  ", "      ")
            if verbose:
                parts.append(f"      {start_command(backend, a, states, configs)}")
    else:
        parts += ["", "Nothing to start."]
    parts.extend(_problems(snap.errors, snap.warnings, notes))
    parts.extend(notes.lines())
    return "\n".join(parts)


def expected_lines(layout: dict[str, Any]) -> list[str]:
    """The expected time to all-up (from the first start command, under the start caps), then
    each tier's: one line each, within 100 columns."""
    total = layout.get("expected_all_up_s")
    if total is None:
        return []
    caps = layout.get("start_caps") or {}
    sources = layout.get("expected_sources") or {}
    said = ", ".join(f"{n} {src}" for src, n in sorted(sources.items()))
    head = f"Expected all-up: {format_duration(total)} after the first start"
    if caps:
        capped = f"{head} (caps {caps.get('per_host')}/host, {caps.get('in_flight')} in all"
        head = f"{capped}; start times: {said})" if said else f"{capped})"
        if len(head) > width():
            head = f"{capped})"
    lines = [head]
    tiers = sorted((layout.get("expected_tiers_s") or {}).items(), key=lambda t: int(t[0]))
    for tier, at in tiers if len(tiers) > 1 else []:  # one tier: the line above says it
        lines.append(f"  tier {tier} all up at {format_duration(at)}")
    return lines


def _guest_line(guest: str, mib: int | None, reason: str, notes: Notes) -> str:
    """``  guest (size): reason``, the reason cut to a footnote when the line would not fit."""
    head = f"  {guest} ({_mib(mib)}): "
    return head + notes.fit(str(reason), width() - len(head))


def plain_action(
    backend: ClusterBackend,
    a: dict[str, Any],
    states: dict[str, str],
    configs: dict[str, str | None] | None = None,
) -> str:
    """An assignment's start as a person reads it (``enable db02 on xen02 (guarded: ...)``)."""
    state = a.get("state") or states.get(a["guest"])
    config = (configs or {}).get(a["guest"])
    try:
        return backend.start_plain(
            a["guest"], a["host"], state, config=config, dead_owner=a.get("takeover_from") or None
        )
    except (UnsafeName, ValueError) as exc:
        return f"# not startable: {exc}"


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
DOWN_OUTCOMES = frozenset(
    {Outcome.FAILED, Outcome.NOT_STARTED, Outcome.UNCONFIRMED, Outcome.NOT_READY}
)


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
            bad = r.outcome in DOWN_OUTCOMES or (r.outcome == Outcome.SKIPPED and r.declined)
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
    notes = active()
    head = "would stay down" if preview else "stay down"
    lines = [f"STILL DOWN: {len(entries)} guest(s) {head}, need SA intervention:"]
    for e in entries:
        lines.append(_guest_line(e["guest"], e["memory_mib"], e["reason"], notes))
    lines += notes.lines()
    return printable("\n".join(lines), newlines=True)


def results_text(report: StartReport, snap: Snapshot | None = None) -> str:
    """The start report: the guests that started as planned in a few lines, a table of the rest.

    A run of 200 guests is 200 rows of ``started``: those that started first time on their
    planned host are named (a line per few), every other outcome keeps its row; long messages
    go to footnotes. The summary line ends it. ``snap``: names its guests and hosts by label.
    """
    notes = active()
    say = speaker(labels(snap.guests, snap.hosts) if snap is not None else {})
    plain = [
        r
        for r in report.results
        if r.outcome == Outcome.STARTED
        and not r.message
        and (r.attempts or 0) <= 1
        and (r.planned_host is None or r.planned_host == r.host)
    ]
    # A guest no host was found for was never tried: UNPLACED and STILL DOWN say why.
    unplaced = [
        r
        for r in report.results
        if r.outcome == Outcome.NOT_STARTED and r.planned_host is None and not r.attempts
    ]
    rest = [r for r in report.results if r not in plain and r not in unplaced]
    lines = []
    if plain:
        times = [r.seconds for r in plain if r.seconds]
        took = f", {min(times):.1f}-{max(times):.1f}s each" if times else ""
        names = ", ".join(say(r.guest) for r in plain)  # where: the layout's host (as planned)
        lines += wrap(f"Started as planned ({len(plain)}{took}): {names}", "", "  ")
    rows = [
        [
            say(r.guest),
            say(r.host),
            str(r.outcome),
            f"{r.seconds:.1f}s" if r.seconds else "-",
            r.attempts or "-",
            r.message,
        ]
        for r in rest
    ]
    headers = ["guest", "host", "outcome", "time", "tries", "message"]
    if rows:
        lines += ["" if plain else None, fitted_table(rows, headers, 5, notes)]
    elif not plain and not unplaced:
        lines.append("(no guests)")
    lines += [report.summary(), *notes.lines()]
    return printable("\n".join(x for x in lines if x is not None), newlines=True)


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
        duplicates=duplicates_json(snap.duplicates),
        lock=asdict(snap.lock) if snap.lock is not None else None,
        gather_errors=list(snap.errors),
        gather_warnings=list(snap.warnings),
    )
    return data


def _problems(errors: list[str], warnings: list[str], notes: Notes | None = None) -> list[str]:
    notes = notes or active()
    out = []
    for title, texts in (("Problems met while gathering:", errors), ("Warnings:", warnings)):
        lines = [ln for text in texts for ln in _said_once(str(text), "  - ", notes)]
        if lines:
            out += ["", title, *lines]
    return out


def _said_once(text: str, prefix: str, notes: Notes) -> list[str]:
    """``text`` wrapped under ``prefix``; nothing when a footnote of this output says it."""
    if notes.said_in(text) is not None:
        return []
    return wrap(text, prefix, " " * len(prefix))


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "NO")


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def capacity_text(report: CapacityReport) -> str:
    """The report as tables for people: the verdict, per host, then who stays down first."""
    return printable(_capacity_text(report), newlines=True)


def _capacity_text(report: CapacityReport) -> str:
    notes = active()
    running = report.guests_running
    counted = f"{running} running guest{_s(running)} (down guests not counted)"
    if report.mode == "recovered":
        # The down guests a warning names as staying down whatever fails are in this count
        # too, said as not counted: the header and the warning then agree.
        skipped = report.guests_not_counted
        down = report.guests_down + skipped
        counted = f"{running} running + {down} down guest{_s(down)}"
        if skipped:
            counted += f" ({skipped} not counted)"
    rows = []
    for h in report.hosts:
        survives = {True: "yes", False: "NO", None: "-"}[h.survives]
        down = ", ".join(f"{d.guest} (tier {d.tier})" for d in h.stay_down) or "-"
        rows.append([h.host, h.status, h.guests, h.ram_mib, h.planned, survives, down])
    parts = [
        *wrap(
            f"N+k for {report.environment}: {report.mode} cluster, {counted}; "
            f"policy {report.strategy}",
            "",
            "  ",
        ),
        report.statement,
        "",
        fitted_table(
            rows,
            [
                "host fails",
                "status",
                "guests",
                "MiB to move",
                "planned",
                "all restart",
                "would stay down",
            ],
            6,
            notes,
        ),
    ]
    if report.first_to_stay_down:
        failed = report.hosts_failed
        when = (
            f"when {', '.join(failed)} fail{'s' if len(failed) == 1 else ''}"
            if failed
            else "now, with no host failing"
        )
        parts += ["", *wrap(f"First to stay down ({when}):", "", "  ")]
        for d in report.first_to_stay_down:
            head = f"  {d.guest} (tier {d.tier}, {d.memory_mib} MiB): "
            parts.append(head + notes.fit(d.reason, width() - len(head)))
        if report.planner_proven is False:
            parts.append("  (the planner's search ran out of time: some of them might fit)")
    parts += [
        "",
        f"Checked {report.checked_sets} failure set(s) in {report.seconds:.2f} s: "
        f"{report.planned_sets} by the planner, {report.pruned_sets} by the rules' bounds alone.",
    ]
    for w in report.warnings:
        parts += _said_once(str(w), "warning: ", notes)
    parts += notes.lines()
    return "\n".join(parts)
