"""Plan ids and saved plans: the plan an admin approved is the plan that runs, or none does.

``plan_id`` is a short hash of the facts, the policy and the layout. A saved plan
(``fab show-layout --save PLAN.json``) holds the layout with the facts it was made from: their
hash and the pieces that matter (each planned guest's state and size, each target host's free
RAM and running domains, quorum, the lock). ``fab start-all --plan PLAN.json`` compares those
pieces with fresh facts (``changes``) and runs the saved layout only when nothing changed.

Pure: imports nothing of Fabric or SSH; reading and writing files is the caller's.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..snapshot import DEFAULT_BACKEND, Snapshot
from .layout import Assignment, Layout

if TYPE_CHECKING:
    from .policy import Policy

FORMAT = "xenfab-plan"
VERSION = 1
# A saved plan older than this is refused: facts that old no longer describe an outage.
MAX_AGE_S = 15 * 60
# Fields that describe how a gather went, not the cluster: they differ between two gathers of
# an unchanged cluster, so they take no part in the facts' hash.
_SNAPSHOT_RUN = ("taken_at", "errors", "warnings")
_HOST_RUN = ("rtt_ms", "error")
_LOCK_RUN = ("age_s", "error")
_ID_LEN = 12


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _hash(data: Any) -> str:
    return hashlib.sha256(_canonical(data)).hexdigest()


def planning_facts(snap: Snapshot) -> dict[str, Any]:
    """The snapshot without what describes the gather itself (times, round trips, error texts)."""
    data = snap.to_dict()
    for key in _SNAPSHOT_RUN:
        data.pop(key, None)
    for h in data.get("hosts", []):
        for key in _HOST_RUN:
            h.pop(key, None)
        # A domain's state letters (r/b) flicker between two reads of an idle host.
        for d in h.get("domains", []):
            d.pop("state", None)
        h["domains"] = sorted(h.get("domains", []), key=lambda d: d["name"])
    if data.get("lock"):
        for key in _LOCK_RUN:
            data["lock"].pop(key, None)
    # The lists' order is the gather's, not the cluster's.
    data["hosts"] = sorted(data.get("hosts", []), key=lambda h: h["name"])
    data["guests"] = sorted(data.get("guests", []), key=lambda g: g["name"])
    return data


def facts_digest(snap: Snapshot) -> str:
    """SHA-256 of the planning facts (hex)."""
    return _hash(planning_facts(snap))


def _policy_data(policy: Policy) -> dict[str, Any]:
    data = policy.to_dict()
    # The search's wall-clock safety stop changes no layout unless it is reached, and then the
    # layout says so (search_stopped).
    data.pop("exact_search_s", None)
    expect = policy.expect
    if expect is not None:
        data["expect"] = {
            "taken_at": expect.taken_at,
            "ran": {name: dataclasses.asdict(r) for name, r in sorted(expect.ran.items())},
        }
    return data


def plan_id(
    facts_hash: str,
    policy: Policy,
    layout: Layout,
    *,
    dead: Iterable[str] = (),
    avoid: Mapping[str, Collection[str]] | None = None,
) -> str:
    """A short hash of the facts, the policy, the run's options and the layout."""
    return _id_of(
        facts_hash,
        json.loads(_canonical(_policy_data(policy))),
        sorted(dead),
        {g: sorted(h) for g, h in sorted((avoid or {}).items())},
        json.loads(_canonical(layout.to_dict(with_id=False))),
    )


def _id_of(
    facts_hash: str, policy_data: dict, dead: list[str], avoid: dict, layout_data: dict
) -> str:
    data = {
        "facts": facts_hash,
        "policy": policy_data,
        "dead": dead,
        "avoid": avoid,
        "layout": {
            k: v
            for k, v in layout_data.items()
            if k not in ("plan_id", "search_stopped", "hosts", "complete")
        },
    }
    return _hash(data)[:_ID_LEN]


# --- saved plans ---------------------------------------------------------------------------


class PlanError(ConfigError):
    """A saved plan that cannot be used at all: unreadable, malformed, another cluster's."""


def _lock_piece(snap: Snapshot) -> dict[str, Any] | None:
    lock = snap.lock
    if lock is None or not lock.held:
        return None
    return {"held": True, "user": lock.user, "token": lock.token}


def _host_piece(snap: Snapshot, name: str) -> dict[str, Any] | None:
    h = snap.host(name)
    if h is None:
        return None
    return {
        "reachable": h.reachable,
        "free_mib": h.free_mib,
        "domains": sorted(d.name for d in h.domains),
    }


def _guest_piece(snap: Snapshot, name: str) -> dict[str, Any] | None:
    g = snap.guest(name)
    if g is None:
        return None
    return {
        "state": g.state,
        "memory_mib": g.memory_mib,
        "vcpus": g.vcpus,
        "owner": g.owner,
        "running_on": sorted(g.running_on),
    }


def build(
    snap: Snapshot,
    policy: Policy,
    layout: Layout,
    *,
    dead: Iterable[str] = (),
    saved_at: str,
) -> dict[str, Any]:
    """The saved-plan document of ``layout`` made from ``snap`` (``fab show-layout --save``)."""
    targets = sorted({a.host for a in layout.assignments})
    guests = sorted(a.guest for a in layout.assignments)
    return {
        "format": FORMAT,
        "version": VERSION,
        "plan_id": layout.plan_id,
        "environment": snap.environment,
        "backend": snap.backend or DEFAULT_BACKEND,
        "saved_at": saved_at,
        "facts": {
            "hash": facts_digest(snap),
            "taken_at": snap.taken_at,
            "quorate": snap.quorate,
            "lock": _lock_piece(snap),
            "hosts": {h: _host_piece(snap, h) for h in targets},
            "guests": {g: _guest_piece(snap, g) for g in guests},
        },
        "policy": _policy_data(policy),
        "dead": sorted(dead),
        "layout": layout.to_dict(),
    }


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise PlanError(f"{where}: not a saved plan: {key!r} missing or malformed")
    return value


def validate(doc: Any, where: str, *, environment: str, backend: str) -> dict[str, Any]:
    """Check a saved plan's schema and that it is of this environment and backend.

    PlanError (one line, naming ``where``) when it is not usable at all.
    """
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise PlanError(f"{where}: not a saved plan (fab show-layout --save PLAN.json)")
    if doc.get("version") != VERSION:
        raise PlanError(
            f"{where}: plan version {doc.get('version')!r}, this xenfab reads {VERSION}"
        )
    for key, kind in (
        ("plan_id", str),
        ("environment", str),
        ("backend", str),
        ("saved_at", str),
        ("facts", Mapping),
        ("policy", Mapping),
        ("dead", list),
        ("layout", Mapping),
    ):
        _need(doc, key, kind, where)
    facts = doc["facts"]
    for key, kind in (("hash", str), ("taken_at", str), ("hosts", Mapping), ("guests", Mapping)):
        _need(facts, key, kind, where)
    if doc["environment"] != environment:
        raise PlanError(
            f"{where}: a plan of environment {doc['environment']!r}, not of {environment!r} "
            f"(give --env {doc['environment']})"
        )
    if doc["backend"] != backend:
        raise PlanError(
            f"{where}: a plan of backend {doc['backend']}, not of {backend} "
            f"(environment {environment})"
        )
    try:
        layout_of(doc)
    except (TypeError, ValueError, KeyError) as exc:
        raise PlanError(f"{where}: not a saved plan: layout malformed ({exc})") from None
    return dict(doc)


def layout_of(doc: Mapping[str, Any]) -> Layout:
    """The saved layout, as the start engine takes it."""
    from .layout import HostUse, Skipped, Unplaced

    data = doc["layout"]
    return Layout(
        assignments=[Assignment(**a) for a in data.get("assignments", [])],
        skipped=[Skipped(**s) for s in data.get("skipped", [])],
        unplaced=[Unplaced(**u) for u in data.get("unplaced", [])],
        hosts=[HostUse(**h) for h in data.get("hosts", [])],
        strategy=data.get("strategy", "round-robin"),
        method=data.get("method", "greedy"),
        proven_optimal=data.get("proven_optimal"),
        warnings=list(data.get("warnings", [])),
        without=list(data.get("without", [])),
        search_stopped=data.get("search_stopped"),
        expected_all_up_s=data.get("expected_all_up_s"),
        expected_tiers_s={int(t): s for t, s in data.get("expected_tiers_s", {}).items()},
        expected_sources=dict(data.get("expected_sources", {})),
        start_caps=dict(data.get("start_caps", {})),
        _plan_id=doc.get("plan_id"),
    )


def age_s(doc: Mapping[str, Any], now: float) -> float | None:
    """Seconds since the plan's facts were gathered (None when its time cannot be read)."""
    try:
        taken = _dt.datetime.fromisoformat(str(doc["facts"]["taken_at"]).replace("Z", "+00:00"))
    except (TypeError, ValueError, KeyError):
        return None
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=_dt.timezone.utc)
    return now - taken.timestamp()


def too_old(doc: Mapping[str, Any], now: float, max_age_s: float = MAX_AGE_S) -> str | None:
    """Why the plan is too old to run (its facts older than ``max_age_s``), or None."""
    age = age_s(doc, now)
    if age is None:
        return f"its facts' time {doc['facts'].get('taken_at')!r} cannot be read"
    if age > max_age_s:
        return (
            f"its facts are {age / 60:.0f} min old (taken {doc['facts']['taken_at']}); "
            f"a saved plan runs within {max_age_s / 60:g} min"
        )
    return None


def _names(items: Iterable[str]) -> str:
    return ", ".join(items) or "-"


def changes(doc: Mapping[str, Any], fresh: Snapshot) -> list[str]:
    """What changed, of what matters to the saved plan, between its facts and ``fresh``.

    One line per change: quorum, the run lock, each planned guest's state, size and where it
    runs, each target host's reachability, free RAM (less than planned with) and domains.
    """
    facts = doc["facts"]
    out: list[str] = []
    if fresh.quorate != facts.get("quorate"):
        out.append(f"quorum: was {facts.get('quorate')}, now {fresh.quorate}")
    lock_then, lock_now = facts.get("lock"), _lock_piece(fresh)
    if lock_then != lock_now:
        who = f"held by {lock_now.get('user')}" if lock_now else "free"
        out.append(f"run lock: {who} now, {'held' if lock_then else 'free'} at the preview")
    for name, then in sorted(facts["guests"].items()):
        now = _guest_piece(fresh, name)
        if now is None:
            out.append(f"guest {name}: no longer in the facts")
            continue
        if not isinstance(then, Mapping):
            out.append(f"guest {name}: no facts in the plan")
            continue
        if now["state"] != then.get("state"):
            out.append(f"guest {name}: state {then.get('state')} -> {now['state']}")
        if now["running_on"] != then.get("running_on"):
            out.append(
                f"guest {name}: running on {_names(then.get('running_on') or [])} -> "
                f"{_names(now['running_on'])}"
            )
        if (now["memory_mib"], now["vcpus"]) != (then.get("memory_mib"), then.get("vcpus")):
            out.append(
                f"guest {name}: size {then.get('memory_mib')} MiB/{then.get('vcpus')} vCPUs -> "
                f"{now['memory_mib']} MiB/{now['vcpus']} vCPUs"
            )
        if now["owner"] != then.get("owner"):
            out.append(f"guest {name}: owner {then.get('owner') or '-'} -> {now['owner'] or '-'}")
    for name, then in sorted(facts["hosts"].items()):
        now = _host_piece(fresh, name)
        if now is None:
            out.append(f"host {name}: gone from the environment")
            continue
        if not isinstance(then, Mapping):
            out.append(f"host {name}: no facts in the plan")
            continue
        if not now["reachable"]:
            h = fresh.host(name)
            why = f" ({h.error})" if h is not None and h.error else ""
            out.append(f"host {name}: unreachable now{why}")
            continue
        if now["free_mib"] < (then.get("free_mib") or 0):
            out.append(
                f"host {name}: free RAM {then.get('free_mib')} -> {now['free_mib']} MiB "
                "(the plan needs what it had)"
            )
        added = sorted(set(now["domains"]) - set(then.get("domains") or []))
        gone = sorted(set(then.get("domains") or []) - set(now["domains"]))
        if added or gone:
            diff = [f"+{d}" for d in added] + [f"-{d}" for d in gone]
            out.append(f"host {name}: running domains changed: {' '.join(diff)}")
    return out


def tampered(doc: Mapping[str, Any]) -> str | None:
    """Why the plan's content does not match its id (edited by hand), or None."""
    want = _id_of(
        doc["facts"]["hash"],
        dict(doc["policy"]),
        list(doc["dead"]),
        {},
        dict(doc["layout"]),
    )
    if want != doc["plan_id"]:
        return f"its content does not match its plan id {doc['plan_id']} (edited by hand?)"
    return None


def policy_changed(doc: Mapping[str, Any], policy: Policy) -> str | None:
    """Why this run's policy is not the plan's (config or options changed), or None."""
    now = json.loads(_canonical(_policy_data(policy)))
    then = json.loads(_canonical(dict(doc["policy"])))
    if now == then:
        return None
    keys = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
    return f"policy: {', '.join(keys)} differ from the plan's (config or options changed)"


def rule_breaks(doc: Mapping[str, Any], fresh: Snapshot, policy: Policy) -> list[str]:
    """Every saved assignment the rules refuse on the fresh facts (a hand-edited plan)."""
    from .model import State, build_model

    dead = list(doc["dead"])
    without = list(doc["layout"].get("without") or [])
    m = build_model(fresh, policy, without, None, dead=dead)
    st = State(m)
    if policy.anti_affinity_mode == "soft":
        st.relaxed = {g.idx for g in m.guests}
    by_name = {g.name: g for g in m.guests}
    host_ix = {h.name: i for i, h in enumerate(fresh.hosts)}
    out = []
    for a in layout_of(doc).assignments:
        g = by_name.get(a.guest)
        h = host_ix.get(a.host)
        if g is None:
            out.append(f"guest {a.guest}: not a down guest to start now")
            continue
        if h is None or h not in m.usable:
            out.append(f"guest {a.guest}: host {a.host} is not usable now")
            continue
        if not st.fits(g, h):
            why = "; ".join(r.text for r in st.refusals(g, h)) or "refused"
            out.append(f"guest {a.guest} on {a.host}: {why}")
            continue
        st.place(g, h)
    return out
