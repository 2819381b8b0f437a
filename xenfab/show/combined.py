"""The combined view of a run over several environments: every line names its cluster.

A table per cluster (its plan, its results), one summary table, one STILL DOWN block naming
each guest's environment, or one JSON document. The runs are xenfab.run.multi.ClusterRun values
(read by attribute here: show sits below run).
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..textsafe import printable
from .notes import narrower, wrap

SUMMARY_HEADERS = ["cluster", "guests down", "started", "still down", "refused why", "all up in"]


def prefixed(env: str, text: str) -> str:
    """``text`` with every line starting with ``[env]``: a guest is always named with it.

    Render ``text`` inside ``for_prefix(env)`` so that its lines leave room for the prefix.
    """
    return "\n".join(f"[{env}] {line}" if line else f"[{env}]" for line in text.splitlines())


def for_prefix(env: str) -> contextlib.AbstractContextManager[None]:
    """Rendering narrower by ``[env] ``: the lines ``prefixed`` adds it to still fit."""
    return narrower(len(env) + 3)


def _gist(text: str, width: int = 60) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= width else one[: width - 3] + "..."


def summary_rows(runs: list[Any]) -> list[dict[str, Any]]:
    """One row per cluster: guests down, started, still down, why refused, time to all-up."""
    rows = []
    for run in runs:
        still = run.still
        up_in = None
        if run.seconds is not None and not still and run.refused is None:
            up_in = round(run.seconds, 1)
        rows.append(
            {
                "environment": run.env,
                "guests_down": run.down,
                "started": run.started,
                "still_down": len(still),
                "refused": run.refused,
                "all_up_s": up_in,
            }
        )
    return rows


def summary_text(runs: list[Any]) -> str:
    """SUMMARY: the table of every cluster of the run."""
    from tabulate import tabulate

    rows = [
        [
            r["environment"],
            "?" if r["guests_down"] is None else r["guests_down"],
            r["started"],
            r["still_down"],
            _gist(r["refused"]) if r["refused"] else "-",
            f"{r['all_up_s']:.1f}s" if r["all_up_s"] is not None else "-",
        ]
        for r in summary_rows(runs)
    ]
    body = tabulate(rows, headers=SUMMARY_HEADERS)
    return printable(f"SUMMARY: {len(runs)} cluster(s)\n{body}", newlines=True)


def still_down_text(rows: list[dict[str, Any]], clusters: int, preview: bool = False) -> str:
    """The closing block: each guest still down, with its environment and why."""
    if not rows:
        if preview:
            return "STILL DOWN: none (every down guest of every cluster would be started)"
        return "STILL DOWN: none (every down guest of every cluster is up)"
    head = "would stay down" if preview else "stay down"
    on = len({r["environment"] for r in rows})
    lines = [
        f"STILL DOWN: {len(rows)} guest(s) on {on} of {clusters} cluster(s) {head}, "
        "need SA intervention:"
    ]
    for r in rows:
        mib = f" ({r['memory_mib']} MiB)" if r.get("memory_mib") else ""
        env = r["environment"]
        # Every line of it names the environment: a wrapped reason can name a guest too.
        said = printable(f"{r['guest']}{mib}: {r['reason']}")
        lines += wrap(said, f"  [{env}] ", f"  [{env}]   ")
    return "\n".join(lines)


def refused_text(run: Any) -> str:
    """A refused cluster's line (before its plan)."""
    return printable(f"[{run.env}] REFUSED: {run.refused}")


def plan_text(
    run: Any, *, explain: bool = False, verbose: bool = False, break_lock: bool = False
) -> str:
    """One cluster's plan, each line naming the cluster (or why there is none)."""
    planned = run.planned
    if planned is None:
        return refused_text(run)
    with for_prefix(run.env):
        return prefixed(run.env, _plan_body(planned, explain, verbose, break_lock))


def _plan_body(planned: Any, explain: bool, verbose: bool, break_lock: bool) -> str:
    from . import duplicates_text, layout_text, lock_text

    lines = []
    refusal = planned.refusal
    if refusal is not None:
        lines.append(printable(f"REFUSED: {refusal.text}"))
    # What a run of this one environment says before its plan: DUPLICATE, the run lock.
    dups = duplicates_text(planned.snap.duplicates, planned.snap)
    if dups is not None:
        lines.append(dups + "\n")
    lock = lock_text(planned.snap.lock, break_lock=break_lock)
    said = refusal is not None and getattr(refusal.kind, "value", None) == "lock-held"
    if lock is not None and not said:
        lines.append(lock + "\n")
    table = layout_text(
        planned.layout.to_dict(), planned.snap, planned.backend, explain=explain, verbose=verbose
    )
    lines += [table, f"Plan {planned.layout.plan_id}"]
    return "\n".join(lines)


def results_text(run: Any) -> str | None:
    """One cluster's start results, each line naming the cluster; None when it started nothing."""
    from . import duplicates_text
    from . import results_text as one

    outcome = run.outcome
    report = outcome.report if outcome is not None else None
    with for_prefix(run.env):
        parts = [one(report)] if report is not None and not report.dry_run else []
        if outcome is not None and outcome.duplicates and run.planned is not None:
            parts.append(duplicates_text(outcome.duplicates, run.planned.snap) or "")
    return prefixed(run.env, "\n\n".join(parts)) if parts else None


def run_doc(run: Any, *, preview: bool) -> dict[str, Any]:
    """One cluster's part of the JSON document (what its single-environment run would print)."""
    from . import duplicates_json, layout_json

    outcome, planned = run.outcome, run.planned
    doc: dict[str, Any] = {"environment": run.env, "refused": run.refused}
    if planned is None or outcome is None:
        doc.update(layout=None, still_down=[], results=[])
        return doc
    layout = layout_json(
        planned.layout, planned.snap, planned.backend, refused=run.refused, still=outcome.still
    )
    if not preview:
        report = outcome.report
        doc.update(report.to_dict() if report is not None else {"results": []})
        doc["refused"] = run.refused
    doc.update(
        layout=layout,
        still_down=run.still,
        duplicates=duplicates_json(outcome.duplicates),
        exit_code=int(outcome.code),
    )
    return doc


def run_json(outcome: Any) -> dict[str, Any]:
    """The whole run as one JSON object: each environment's result, the summary, STILL DOWN."""
    return {
        "environments": {r.env: run_doc(r, preview=outcome.preview) for r in outcome.runs},
        "summary": summary_rows(outcome.runs),
        "still_down": outcome.still,
        "exit_code": int(outcome.code),
        "message": outcome.message,
    }


def facts_json(runs: list[Any]) -> dict[str, Any]:
    """fab facts over several environments: each snapshot (or why there is none)."""
    import json

    out: dict[str, Any] = {}
    for run in runs:
        snap = json.loads(run.snap.to_json()) if run.snap is not None else None
        why = run.refusal.text if run.refusal is not None else None
        out[run.env] = {"snapshot": snap, "refused": why, "error": run.error}
    return {"environments": out}


def facts_text(runs: list[Any]) -> str:
    """fab facts over several environments: each cluster's table, every line naming it."""
    from . import facts_text as one

    parts = []
    for run in runs:
        if run.snap is None:
            parts.append(printable(f"[{run.env}] ERROR: {run.error}"))
            continue
        with for_prefix(run.env):
            text = one(run.snap)
        if run.refusal is not None:
            text = f"REFUSED: starts would be refused: {run.refusal.text}\n\n{text}"
        parts.append(prefixed(run.env, printable(text, newlines=True)))
    return "\n\n".join(parts)
