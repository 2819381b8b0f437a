"""What the recovery tasks print: the plan before a run, the outcome after it (no decisions)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..errors import ExitCode
from ..textsafe import printable

if TYPE_CHECKING:
    from ..run import Planned, Refusal, RunOutcome, RunRequest
    from ..snapshot import Snapshot


def _duplicate_note(dups: list, snap: Snapshot | None) -> None:
    """Print the DUPLICATE lines (each with what to do), before anything else a task shows."""
    from .. import show

    text = show.duplicates_text(dups, snap)
    if text is not None:
        print(text + "\n")


def _lock_note(snap: Snapshot, refusal: Refusal | None, **how) -> None:
    """Print the run-lock line before the plan, unless the refusal above already says it."""
    from .. import show
    from ..run import RefusalKind

    note = show.lock_text(snap.lock, **how)
    said = refusal is not None and refusal.kind is RefusalKind.LOCK_HELD
    if note is not None and not said:
        print(note + "\n")


def facts(snap: Snapshot, refusal: Refusal | None, fmt: str) -> None:
    """fab facts: the snapshot as JSON, or the REFUSED, DUPLICATE and lock lines and the table."""
    from .. import show

    if fmt == "json":
        print(snap.to_json())
        return
    if refusal:
        print(printable(f"REFUSED: starts would be refused: {refusal.text}") + "\n")
    _duplicate_note(snap.duplicates, snap)
    _lock_note(snap, refusal)
    print(show.facts_text(snap))


def _head(request: RunRequest, planned: Planned, **how) -> None:
    """The lines before a plan: REFUSED, DUPLICATE, the run lock."""
    from .. import show

    if planned.refusal:
        print(show.refusal_text(planned.refusal.text) + "\n")
    _duplicate_note(planned.snap.duplicates, planned.snap)
    saved_at = planned.snap.taken_at if request.from_ else None
    _lock_note(planned.snap, planned.refusal, saved_at=saved_at, **how)


def preview(request: RunRequest, outcome: RunOutcome) -> None:
    """show-layout: the plan as a script, one JSON document, or the table and STILL DOWN."""
    from .. import show

    planned = outcome.planned
    assert planned is not None
    snap, layout, backend = planned.snap, planned.layout, planned.backend
    if request.format == "script":
        from ..show.script import script_text

        # A script is a start by other hands: refused for the same reasons, before any line.
        if outcome.refusal is None:
            print(script_text(layout, snap, backend), end="")
        return
    refused = outcome.refused
    if request.format == "json":
        doc = show.layout_json(layout, snap, backend, refused=refused, still=outcome.still)
        print(show.to_json(doc))
        return
    _head(request, planned)
    print(
        show.layout_text(
            layout.to_dict(), snap, backend, explain=request.explain, verbose=request.verbose
        )
    )
    print(f"\nPlan {layout.plan_id}")
    print("\n" + show.still_down_text(outcome.still, preview=True))


def plan(request: RunRequest, planned: Planned) -> None:
    """start-*: what is said before the confirmation (a table run only)."""
    from .. import show

    if request.format != "table":
        return
    _head(request, planned, break_lock=request.break_lock)
    if not request.plan_shown:  # fab demo has just shown this plan: said once
        text = show.layout_text(
            planned.layout.to_dict(),
            planned.snap,
            planned.backend,
            explain=request.explain,
            only_hosts=request.only,
            verbose=request.verbose,
        )
        print(text)
    saved = f" (saved: {request.plan})" if request.plan else ""
    if request.plan_shown:
        saved += " (shown above)"
    print(("" if request.plan_shown else "\n") + f"Plan {planned.layout.plan_id}{saved}")
    sys.stdout.flush()


def ended(request: RunRequest, outcome: RunOutcome) -> None:
    """start-*: the result table (or the one JSON document), DUPLICATE lines, STILL DOWN."""
    from .. import show

    planned = outcome.planned
    assert planned is not None
    report, still, dups = outcome.report, outcome.still, outcome.duplicates
    table = request.format == "table"
    # After a second Ctrl-C nothing is known of this run but what STILL DOWN says.
    lost = report is None and outcome.code is ExitCode.INTERRUPTED
    if table and request.only and not lost:
        others = [a.guest for a in planned.layout.assignments if a.host not in request.only]
        if others:
            print(
                f"\n{len(others)} other guest(s) planned on other hosts, not in this run "
                "(fab start-all starts them)."
            )
    if not table:
        empty = {"dry_run": request.dry_run, "results": []}
        doc = report.to_dict() if report is not None else empty
        doc["layout"] = show.layout_json(
            planned.layout, planned.snap, planned.backend, refused=outcome.refused, still=still
        )
        doc["refused"] = outcome.refused
        doc["still_down"] = still
        doc["duplicates"] = show.duplicates_json(dups)
        tl = _timeline(outcome)
        # Every guest the run tried, in seconds from its first command; [] when none was sent.
        doc["timeline"] = tl.to_json() if tl is not None else []
        print(show.to_json(doc))
        return
    if report is not None and not report.dry_run:
        print("\n" + show.results_text(report, planned.snap if planned else None))
        gantt = _gantt(outcome)
        if gantt is not None:
            print("\n" + gantt)
    if dups:
        print("\n" + (show.duplicates_text(dups, planned.snap) or ""))
    if not request.plan_shown:  # fab demo says STILL DOWN last, after its next steps
        print("\n" + show.still_down_text(still, preview=request.dry_run))


def _timeline(outcome: RunOutcome):
    """The run just ended, read back from its audit log with the plan's figures (or None)."""
    import time

    from ..run.timeline import after_run

    planned, report = outcome.planned, outcome.report
    if planned is None or report is None or report.dry_run:
        return None
    log = planned.cfg.audit_log_of(planned.env)
    # The run began at most report.seconds ago; an older run of the same plan is not this one.
    since = time.time() - report.seconds - 5.0
    return after_run(log, planned.env.name, planned.layout, since)


def _gantt(outcome: RunOutcome) -> str | None:
    """The text Gantt per host (planned against actual) for the end of start-all."""
    import shutil

    from ..show.timeline import gantt_text, gantt_width
    from ..values import labels

    tl = _timeline(outcome)
    if tl is None or outcome.planned is None:
        return None
    said = labels(outcome.planned.snap.hosts)  # xe's hosts are uuids: their labels on the lanes
    return gantt_text(tl, gantt_width(shutil.get_terminal_size((0, 0)).columns or None), said)


# --------------------------------------------------------------------------- several environments


def facts_multi(runs: list, fmt: str) -> None:
    """fab facts --env 'a,b': one JSON document, or each cluster's table naming it."""
    from .. import show
    from ..show import combined

    if fmt == "json":
        print(show.to_json(combined.facts_json(runs)))
        return
    print(combined.facts_text(runs))


def plan_multi(request: RunRequest, runs: list) -> None:
    """start-* over several environments: each cluster's plan before the one confirmation."""
    from ..show import combined

    if request.format != "table":
        return
    for run in runs:
        text = combined.plan_text(
            run, explain=request.explain, verbose=request.verbose, break_lock=request.break_lock
        )
        print(text + "\n")
    sys.stdout.flush()


def preview_multi(request: RunRequest, outcome) -> None:
    """show-layout over several environments: plans, SUMMARY and STILL DOWN, or one JSON."""
    from .. import show
    from ..show import combined

    if request.format == "json":
        print(show.to_json(combined.run_json(outcome)))
        return
    plan_multi(request, outcome.runs)
    _closing(outcome)


def ended_multi(request: RunRequest, outcome) -> None:
    """start-* over several environments: each cluster's results, SUMMARY, STILL DOWN."""
    from .. import show
    from ..show import combined

    if request.format != "table":
        print(show.to_json(combined.run_json(outcome)))
        return
    for run in outcome.runs:
        text = combined.results_text(run)
        if text:
            print("\n" + text)
    print()
    _closing(outcome)


def _closing(outcome) -> None:
    from ..show import combined

    print(combined.summary_text(outcome.runs))
    print("\n" + combined.still_down_text(outcome.still, len(outcome.runs), outcome.preview))
