"""A run's timeline from its audit lines, and the compact text Gantt (pure: no file, no terminal).

The audit log (xenfab/start/audit.py) records per guest when its command left (``intent``), when
the host accepted it (``start``, outcome ``accepted``), when it answered (``ready``, where the run
probes readiness) and how it ended (``result``, ``found-running``, ``skipped``, ``not-started``).
This module turns the lines of one run into one ``GuestSpan`` per guest, in seconds from the
run's first command, and draws them per host. A guest's ``ready_s`` is its ``ready`` line when
there is one, else the confirmation that it ``started`` (what "up" meant before probes).

Planned values (``planned_ready_s``, ``tier``, ``depends_on``) come from the audit lines when they
carry them, or from the plan (``with_plan``) at the end of a run; none of them is required.
"""

from __future__ import annotations

import datetime as _dt
import json
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import XenfabError
from ..textsafe import printable
from ..values import spoken

# A ``ready`` line with one of these outcomes (or none) says the guest answered.
READY_WORDS = frozenset({"ready", "answered", "ok", "up"})
# Outcomes after which the guest is down (STILL DOWN in the report).
DOWN_WORDS = frozenset({"failed", "not-started", "unconfirmed", "not-ready"})
# Lines about one guest, and the outcome each one ends it with (None: it does not end it).
_ENDING = {
    "result": None,
    "found-running": "found running",
    "skipped": "skipped",
    "not-started": "not-started",
}

# The text Gantt fits this many columns, and never fewer than MIN_WIDTH (a narrow terminal).
WIDTH = 100
MIN_WIDTH = 60
_HOST_COLUMN = 14


class AuditLogError(XenfabError):
    """The audit log cannot give the run asked for: missing, corrupt, or no such run."""


@dataclass
class GuestSpan:
    """One guest in one run: seconds from the run's first command (None: did not happen)."""

    guest: str
    host: str | None = None
    outcome: str = "not-started"
    sent_s: float | None = None
    accepted_s: float | None = None
    ready_s: float | None = None
    # When its outcome was recorded (a failure's end; the confirmation of a start).
    end_s: float | None = None
    planned_start_s: float | None = None
    planned_ready_s: float | None = None
    tier: int | None = None
    depends_on: tuple[str, ...] = ()
    attempts: int = 0
    message: str = ""
    # A ``ready`` line said it did not answer (its outcome), e.g. ``timeout``.
    not_ready: str | None = None
    # Its label, when its intent carried one (xe: the name is a uuid).
    label: str | None = None

    @property
    def said(self) -> str:
        """The guest as people say it: its label, the uuid's head beside it (values.spoken)."""
        return spoken(self.guest, self.label)

    @property
    def down(self) -> bool:
        """True when the guest is still down after the run."""
        return self.outcome in DOWN_WORDS

    @property
    def last_s(self) -> float | None:
        """Where its bar ends: ready, else the end of its last step."""
        times = [
            t for t in (self.ready_s, self.end_s, self.accepted_s, self.sent_s) if t is not None
        ]
        if self.ready_s is not None:
            return self.ready_s
        return max(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``timeline`` entry: seconds rounded to 0.01."""
        return {
            "guest": self.guest,
            "host": self.host,
            "sent_s": _r(self.sent_s),
            "accepted_s": _r(self.accepted_s),
            "ready_s": _r(self.ready_s),
            "planned_ready_s": _r(self.planned_ready_s),
            "outcome": self.outcome,
            "tier": self.tier,
            "depends_on": list(self.depends_on),
        }


@dataclass
class Timeline:
    """One run from the audit log: who ran it, when, and one span per guest."""

    run: str
    environment: str
    user: str | None = None
    plan_id: str | None = None
    # The wall-clock time of the origin (the run's first command, else its first line).
    began: str | None = None
    # From the origin to the run's last line.
    seconds: float = 0.0
    spans: list[GuestSpan] = field(default_factory=list)
    # The run-end line's outcome (done, interrupted); None: the log has no end for this run.
    ended: str | None = None
    # Guests the run-end counts as down that the log does not name (the plan left them unplaced).
    unnamed_down: int = 0
    # Name -> label of the guests and hosts whose intents carried one (xe's names are uuids).
    labels: dict[str, str] = field(default_factory=dict)

    def said(self, host: str) -> str:
        """A host as people say it: its label, the uuid's head beside it (values.spoken)."""
        return spoken(host, self.labels.get(host))

    def hosts(self) -> list[str]:
        """The hosts with a guest, sorted; guests with no host under ``-``."""
        return sorted({s.host or "-" for s in self.spans})

    def on(self, host: str) -> list[GuestSpan]:
        """The spans on ``host`` in the order their commands left (never sent: last)."""
        spans = [s for s in self.spans if (s.host or "-") == host]
        return sorted(spans, key=lambda s: (s.sent_s is None, s.sent_s or 0.0, s.guest))

    def still_down(self) -> list[GuestSpan]:
        """The guests still down after the run."""
        return [s for s in self.spans if s.down]

    def end_s(self) -> float:
        """The right edge of a picture: the last event or planned ready time."""
        times = [self.seconds]
        for s in self.spans:
            times += [t for t in (s.last_s, s.planned_ready_s) if t is not None]
        return max(max(times), 1.0)

    def has_plan(self) -> bool:
        """True when some guest has a planned ready time."""
        return any(s.planned_ready_s is not None for s in self.spans)

    def to_json(self) -> list[dict[str, Any]]:
        """The ``timeline`` list of the JSON output."""
        return [s.to_dict() for s in self.spans]


def _r(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


# --- reading ---------------------------------------------------------------------------------


def parse_lines(lines: Iterable[str], source: str) -> list[dict[str, Any]]:
    """Every audit line as a mapping; AuditLogError naming ``source`` and the line when one is
    not a JSON object."""
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise AuditLogError(f"{source} line {n}: not a JSON line ({exc.msg})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("run"), str):
            raise AuditLogError(f"{source} line {n}: not an audit record (no run id)")
        records.append(rec)
    return records


def run_ids(records: Iterable[Mapping[str, Any]], environment: str | None = None) -> list[str]:
    """The runs in the log (of ``environment`` when given), oldest first."""
    seen: dict[str, None] = {}
    for rec in records:
        if environment is None or rec.get("environment") == environment:
            seen.setdefault(rec["run"], None)
    return list(seen)


def pick_run(records: list[dict[str, Any]], environment: str, run: str | None, source: str) -> str:
    """The run asked for (``run``, else the environment's last); AuditLogError when none."""
    ids = run_ids(records, environment)
    if run is None:
        if not ids:
            raise AuditLogError(f"{source}: no run of environment {environment} in the log")
        return ids[-1]
    if run not in ids:
        known = ", ".join(ids[-5:]) or "none"
        raise AuditLogError(
            f"{source}: no run {run!r} of environment {environment} (last runs: {known})"
        )
    return run


def _when(rec: Mapping[str, Any]) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(rec["time"])).timestamp()
    except (KeyError, ValueError, TypeError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def timeline_of(records: Iterable[Mapping[str, Any]], run: str) -> Timeline:
    """The timeline of ``run`` from the audit ``records`` (lines of other runs are ignored)."""
    mine = [r for r in records if r.get("run") == run and _when(r) is not None]
    first = mine[0] if mine else {}
    tl = Timeline(run=run, environment=str(first.get("environment") or ""))
    tl.user = _text(first.get("user"))
    tl.plan_id = _text(first.get("plan_id"))
    if not mine:
        return tl
    intents = [r for r in mine if r.get("action") == "intent"]
    origin_rec = intents[0] if intents else mine[0]
    origin = _when(origin_rec) or 0.0
    tl.began = _text(origin_rec.get("time"))
    spans: dict[str, GuestSpan] = {}
    ready_at: dict[str, float] = {}
    for rec in mine:
        t = (_when(rec) or origin) - origin
        action, guest = rec.get("action"), rec.get("guest")
        if action == "run-end":
            tl.ended = _text(rec.get("outcome"))
            tl.unnamed_down = _unnamed(rec.get("counts"), spans)
        if not isinstance(guest, str) or not guest:
            continue
        if action not in ("intent", "start", "ready", "relocate", *_ENDING):
            continue
        span = spans.setdefault(guest, GuestSpan(guest))
        _planned_fields(span, rec)
        host = _text(rec.get("host"))
        if action == "intent":
            for name, key in ((guest, "guest_label"), (host, "host_label")):
                label = _text(rec.get(key))
                if name and label:
                    tl.labels[name] = label
            span.sent_s = t if span.sent_s is None else span.sent_s
            span.host = host or span.host
            span.attempts = max(span.attempts, _int(rec.get("attempt")) or 1)
        elif action == "start":
            # A refused start (retried, or ended by its result line) leaves no accepted time.
            if rec.get("outcome") == "accepted":
                span.accepted_s = t
            span.host = host or span.host
        elif action == "ready":
            word = _text(rec.get("outcome"))
            if word is None or word in READY_WORDS:
                ready_at[guest] = t
            else:
                span.not_ready = word
            span.host = host or span.host
        elif action == "relocate":
            span.host = host or span.host
        else:
            span.outcome = _ENDING[action] or str(rec.get("outcome") or "failed")
            span.end_s = t
            span.host = host or span.host
            span.message = str(rec.get("message") or "")
            span.attempts = max(span.attempts, _int(rec.get("attempts")) or 0)
    for span in spans.values():
        span.label = tl.labels.get(span.guest)
        if span.guest in ready_at:
            span.ready_s = ready_at[span.guest]
        elif span.outcome == "started" and span.not_ready is None:
            span.ready_s = span.end_s
        if span.not_ready is not None and span.outcome == "started":
            span.outcome = "not-ready"
    tl.spans = list(spans.values())
    tl.seconds = max((_when(r) or origin) - origin for r in mine)
    if tl.ended is not None and tl.unnamed_down == 0:
        ends = [r for r in mine if r.get("action") == "run-end"]
        tl.unnamed_down = _unnamed(ends[-1].get("counts"), spans)
    return tl


def _unnamed(counts: Any, spans: Mapping[str, GuestSpan]) -> int:
    """How many guests the run-end counts as not started that no line names."""
    if not isinstance(counts, dict):
        return 0
    counted = _int(counts.get("not-started")) or 0
    named = sum(1 for s in spans.values() if s.outcome == "not-started")
    return max(0, counted - named)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _planned_fields(span: GuestSpan, rec: Mapping[str, Any]) -> None:
    """Take the plan's figures from a line that carries them (tier, expected times, deps)."""
    tier = _int(rec.get("tier"))
    if tier is not None:
        span.tier = tier
    ready = _float(rec.get("expected_ready_s", rec.get("planned_ready_s")))
    if ready is not None:
        span.planned_ready_s = ready
    start = _float(rec.get("expected_start_s"))
    if start is not None:
        span.planned_start_s = start
    deps = rec.get("depends_on")
    if isinstance(deps, list):
        span.depends_on = tuple(str(d) for d in deps)


def with_plan(tl: Timeline, assignments: Iterable[Any]) -> Timeline:
    """``tl`` with the plan's figures where the log has none (``expected_ready_s``, tier, ...).

    Each assignment is read with getattr: a plan without expected times draws no planned bar.
    """
    by_guest = {s.guest: s for s in tl.spans}
    for a in assignments:
        span = by_guest.get(getattr(a, "guest", None))
        if span is None:
            continue
        if span.planned_ready_s is None:
            span.planned_ready_s = _float(getattr(a, "expected_ready_s", None))
        if span.planned_start_s is None:
            span.planned_start_s = _float(getattr(a, "expected_start_s", None))
        if span.tier is None:
            span.tier = _int(getattr(a, "tier", None))
        deps = getattr(a, "depends_on", None)
        if not span.depends_on and isinstance(deps, (list, tuple)):
            span.depends_on = tuple(str(d) for d in deps)
    return tl


# --- the text Gantt --------------------------------------------------------------------------


def gantt_width(columns: int | None) -> int:
    """The Gantt's width on a terminal of ``columns``: 100 at most, 60 at least."""
    if not columns or columns <= 0:
        return WIDTH
    return max(MIN_WIDTH, min(WIDTH, columns))


def _cells(spans: list[tuple[float, float]], step: float, n: int) -> list[int]:
    """How many of ``spans`` cover each of ``n`` columns of ``step`` seconds."""
    counts = [0] * n
    for a, b in spans:
        first = min(n - 1, max(0, int(a / step)))
        last = min(n - 1, max(first, int(max(a, b - 1e-9) / step)))
        for c in range(first, last + 1):
            counts[c] += 1
    return counts


def _digit(count: int) -> str:
    if count <= 0:
        return " "
    return str(count) if count < 10 else "+"


def _fit(name: str, width: int) -> str:
    name = printable(name)
    return name if len(name) <= width else name[: width - 1] + "~"


def lane_names(hosts: list[str], labels: Mapping[str, str]) -> dict[str, str]:
    """Each lane's host as people say it: its label (xe's hosts are uuids) where the labels
    tell the lanes apart, else the label with the uuid's head (values.spoken)."""
    said = {h: labels.get(h, h) for h in hosts}
    if len(set(said.values())) < len(said):
        said = {h: spoken(h, labels.get(h)) for h in hosts}
    return said


def gantt_text(
    tl: Timeline, width: int = WIDTH, labels: Mapping[str, str] | None = None
) -> str | None:
    """Per host, the planned and the actual lane as one line each, within ``width`` columns.

    A column's digit counts the guests between command and ready then (``+``: ten or more);
    ``X`` marks where a guest ended down; each lane ends with its last ready time. None when
    the run sent no command. ``labels``: host name -> label (values.labels), for the lanes,
    over those the log's intents carried.
    """
    width = max(MIN_WIDTH, min(WIDTH, width))
    sent = [s for s in tl.spans if s.sent_s is not None]
    if not sent:
        return None
    names = lane_names(tl.hosts(), {**tl.labels, **(labels or {})})
    hosts = sorted(names, key=lambda h: (names[h], h))  # in the order the names are read
    label = min(_HOST_COLUMN, max(len(printable(names[h])) for h in hosts))
    # "HOST plan |" before the cells, "| 41.2s" after them
    n = width - label - 15
    total = tl.end_s()
    step = total / n
    plan = tl.has_plan()
    head = (
        f"Timeline per host{', planned against actual' if plan else ''} ({step:.2g} s a "
        "column; a digit: guests between command and ready; X: one ended down"
        + ("; plan: as expected" if plan else "")
        + ")"
    )
    lines = textwrap.wrap(head, width, subsequent_indent="  ")
    lines.append(_axis(label, n, total))
    for host in hosts:
        spans = tl.on(host)
        if plan:
            planned = [
                (s.planned_start_s if s.planned_start_s is not None else s.sent_s or 0.0, p)
                for s in spans
                if (p := s.planned_ready_s) is not None
            ]
            cells = "".join(_digit(c) for c in _cells(planned, step, n))
            last = max((b for _, b in planned), default=None)
            right = f"{last:6.1f}s" if last is not None else "      -"
            lines.append(f"{_fit(names[host], label):<{label}} plan |{cells}|{right}")
        actual = [
            (s.sent_s, s.last_s) for s in spans if s.sent_s is not None and s.last_s is not None
        ]
        row = [_digit(c) for c in _cells(actual, step, n)]
        for s in spans:
            if s.down and s.last_s is not None:
                row[min(n - 1, int(s.last_s / step))] = "X"
        ready = [s.ready_s for s in spans if s.ready_s is not None]
        right = f"{max(ready):6.1f}s" if ready else "      -"
        tag = f"{_fit(names[host], label):<{label}}" if not plan else " " * label
        lines.append(f"{tag} run  |{''.join(row)}|{right}")
    return "\n".join(lines)


def _axis(label: int, n: int, total: float) -> str:
    """The time axis: a mark every quarter, its seconds under it."""
    row = [" "] * (n + 8)
    for k in range(5):
        at = round(k * (n - 1) / 4)
        text = f"{k * total / 4:.0f}s" if total >= 8 else f"{k * total / 4:.1f}s"
        start = min(at, n + 8 - len(text))
        row[start : start + len(text)] = list(text)
    return " " * (label + 7) + "".join(row).rstrip()
