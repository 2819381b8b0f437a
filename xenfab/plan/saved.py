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
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..snapshot import Snapshot
from .layout import Layout

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


def _layout_data(layout: Layout) -> dict[str, Any]:
    data = layout.to_dict()
    for key in ("plan_id", "search_stopped", "hosts", "complete"):
        data.pop(key, None)
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
    data = {
        "facts": facts_hash,
        "policy": _policy_data(policy),
        "dead": sorted(dead),
        "avoid": {g: sorted(h) for g, h in sorted((avoid or {}).items())},
        "layout": _layout_data(layout),
    }
    return _hash(data)[:_ID_LEN]
