"""Reading a run back from the audit log (the I/O edge of xenfab/show/timeline.py).

``fab report`` reads an environment's last run (or ``--run ID``) and writes it as one HTML
file; start-all reads its own run back at its end for the text Gantt.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..show.timeline import AuditLogError, Timeline, parse_lines, pick_run, timeline_of, with_plan
from ..textsafe import printable

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
    from ..plan import Layout


def read_log(path: str) -> list[dict[str, Any]]:
    """Every record of the audit log at ``path``; AuditLogError (one line) when unreadable."""
    path = os.path.expanduser(path)
    try:
        with open(path, encoding="utf-8") as fh:
            # /dev/full or a FIFO has no end to read: only a regular file is a log.
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise AuditLogError(f"cannot read the audit log {path}: not a regular file")
            return parse_lines(fh, path)
    except FileNotFoundError:
        raise AuditLogError(f"no audit log at {path}: no run was recorded there") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise AuditLogError(f"cannot read the audit log {path}: {why}") from None


def load_run(path: str, environment: str, run: str | None = None) -> Timeline:
    """The timeline of ``run`` (else ``environment``'s last run) in the audit log at ``path``."""
    records = read_log(path)
    return timeline_of(records, pick_run(records, environment, run, path))


@dataclass
class Written:
    """A report written: where, and the run it shows."""

    path: str
    timeline: Timeline


def default_out(run: str) -> str:
    """``./xenfab-report-RUNID.html``."""
    return f"xenfab-report-{run}.html"


def write_report(
    cfg: XenfabConfig, env: Environment, run: str | None = None, out: str | None = None
) -> Written:
    """Write ``env``'s run (the last, or ``run``) from its audit log as one HTML file."""
    from ..show.report_html import report_html

    tl = load_run(cfg.audit_log_of(env), env.name, run)
    path = os.path.expanduser(out or default_out(tl.run))
    text = report_html(tl)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AuditLogError(
            printable(f"--out {path}: cannot write the report: {exc.strerror or exc}")
        ) from None
    return Written(path, tl)


def after_run(
    audit_log: str, environment: str, layout: Layout, not_before: float
) -> Timeline | None:
    """The run that just ended (the environment's last, of this plan, begun after
    ``not_before``, epoch seconds), with the plan's figures.

    None when it cannot be read back: the picture is a bonus, never a reason to fail a run.
    """
    from ..history import audit_records

    try:
        # The log's tail, as the planner reads it: a run just ended is at its end, and a log of
        # years is not read whole after every run.
        mine = [r for r in audit_records(audit_log, environment) if isinstance(r.get("run"), str)]
        ours = [r["run"] for r in mine if r.get("plan_id") == layout.plan_id]
        if not ours:
            return None
        tl = timeline_of(mine, ours[-1])
        began = _epoch(tl.began)
        if began is None or began < not_before:
            return None  # an older run of the same plan: this one wrote nothing
        return with_plan(tl, layout.assignments)
    except Exception:  # noqa: BLE001 - a line the reader did not foresee must not end the run
        return None


def _epoch(iso: str | None) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(iso)).timestamp()
    except (TypeError, ValueError):
        return None
