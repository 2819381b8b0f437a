"""A run's timeline as one self-contained HTML page: inline SVG and CSS, no script, no fetch.

Hosts are lanes, each guest a row in its host's lane with its bar from command to ready; the
planned bar (when the plan or the log gives one) is drawn behind it. Outcomes differ by colour
and by pattern and word (a reader without colour, or a printout, still tells them apart). Every
text that comes from the log is HTML-escaped: a guest name is data, never markup.
"""

from __future__ import annotations

import html
import math
from typing import Any

from .timeline import GuestSpan, Timeline

# outcome -> (fill colour, pattern id or None, legend word)
STYLES: dict[str, tuple[str, str | None, str]] = {
    "started": ("#2e7d32", None, "started (solid)"),
    "already running": ("#1f5fa8", "dots", "already running (dots)"),
    "found running": ("#1f5fa8", "dots", "found running (dots)"),
    "skipped": ("#8a8a8a", "cross", "skipped (crossed)"),
    "not-ready": ("#e08a00", "vlines", "not ready: did not answer (bars)"),
    "unconfirmed": ("#e08a00", "vlines", "unconfirmed (bars)"),
    "failed": ("#c62828", "hatch", "failed (hatched)"),
    "not-started": ("#8a8a8a", "cross", "not started (crossed)"),
}
_OTHER = ("#6a1b9a", "hatch", "other")

WIDTH = 1000
LABEL_W = 230
CHART_W = WIDTH - LABEL_W - 130  # room on the right for the outcome word
ROW_H = 18
LANE_GAP = 24
TOP = 40
# A guest's label longer than this would run into its bar (11 px sans-serif).
NAME_CHARS = 32


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _style(outcome: str) -> tuple[str, str | None, str]:
    return STYLES.get(outcome, _OTHER)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _patterns() -> str:
    # White marks over the bar's own colour: the pattern shows in grey print too.
    return (
        "<defs>"
        '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="none"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern>'
        '<pattern id="dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<circle cx="2.5" cy="2.5" r="1.2" fill="#fff"/></pattern>'
        '<pattern id="vlines" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<line x1="2.5" y1="0" x2="2.5" y2="5" stroke="#fff" stroke-width="1.5"/></pattern>'
        '<pattern id="cross" width="7" height="7" patternUnits="userSpaceOnUse">'
        '<path d="M0 0L7 7M7 0L0 7" stroke="#fff" stroke-width="1.2"/></pattern>'
        "</defs>"
    )


def _bar(x: float, y: float, w: float, h: float, outcome: str, cls: str) -> str:
    fill, pattern, _ = _style(outcome)
    out = (
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 2):.1f}" '
        f'height="{h}" fill="{fill}"/>'
    )
    if pattern:
        out += (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 2):.1f}" height="{h}" '
            f'fill="url(#{pattern})"/>'
        )
    return out


def _tooltip(s: GuestSpan) -> str:
    parts = [
        f"{s.said} on {s.host or '-'}: {s.outcome}",
        f"command {_s(s.sent_s)}, accepted {_s(s.accepted_s)}, ready {_s(s.ready_s)}",
    ]
    if s.planned_ready_s is not None:
        parts.append(f"planned ready {_s(s.planned_ready_s)}")
    if s.tier is not None:
        parts.append(f"tier {s.tier}")
    if s.depends_on:
        parts.append("after " + ", ".join(s.depends_on))
    if s.attempts > 1:
        parts.append(f"{s.attempts} tries")
    if s.message:
        parts.append(s.message)
    return "; ".join(parts)


def timeline_svg(tl: Timeline) -> str:
    """The run as an SVG: a lane per host, a row per guest, planned bars behind actual ones."""
    total = tl.end_s()
    scale = CHART_W / total
    x0 = LABEL_W

    def x(t: float) -> float:
        return x0 + t * scale

    body: list[str] = []
    y = TOP
    for host in tl.hosts():
        spans = tl.on(host)
        lane_h = len(spans) * ROW_H + 8
        body.append(f'<g class="lane" data-host="{_e(host)}">')
        body.append(
            f'<rect class="lane-bg" x="0" y="{y - 4}" width="{WIDTH}" height="{lane_h + 18}" '
            'fill="#f4f6f8" stroke="#d0d6dc"/>'
        )
        said = _e(tl.said(host))
        body.append(f'<text class="host" x="6" y="{y + 10}" font-weight="bold">{said}</text>')
        y += 16
        for s in spans:
            body.append(_row(s, y, x))
            y += ROW_H
        body.append("</g>")
        y += LANE_GAP
    height = y + 10
    axis = [f'<line x1="{x0}" y1="{TOP - 12}" x2="{x0 + CHART_W}" y2="{TOP - 12}" stroke="#555"/>']
    tick = _tick(total)
    for k in range(int(total / tick) + 1):
        t = k * tick
        axis.append(
            f'<line x1="{x(t):.1f}" y1="{TOP - 16}" x2="{x(t):.1f}" y2="{height - 10}" '
            'stroke="#9aa4ad" stroke-dasharray="2,3" stroke-opacity="0.6"/>'
            f'<text x="{x(t):.1f}" y="{TOP - 20}" text-anchor="middle">{t:g} s</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" font-size="11">'
        f"<title>{_e(f'run {tl.run}: guests per host over time')}</title>"
        + _patterns()
        + "".join(body)
        # The time marks over the lanes, so each lane reads against them.
        + "".join(axis)
        + "</svg>"
    )


def _tick(total: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most 8 marks over ``total``."""
    step = 10.0 ** math.floor(math.log10(max(total, 1e-3) / 8))
    for factor in (1, 2, 5, 10):
        if total / (step * factor) <= 8:
            return step * factor
    return step * 10


def _row(s: GuestSpan, y: float, x: Any) -> str:
    parts = [f'<g class="guest" data-guest="{_e(s.guest)}" data-outcome="{_e(s.outcome)}">']
    parts.append(f"<title>{_e(_tooltip(s))}</title>")
    tier = f"T{s.tier} " if s.tier is not None else ""
    name = tier + s.said
    if len(name) > NAME_CHARS:  # the whole name is in the tooltip and the table
        name = name[: NAME_CHARS - 1] + "\u2026"
    parts.append(f'<text class="name" x="18" y="{y + 11}">{_e(name)}</text>')
    if s.planned_ready_s is not None:
        start = s.planned_start_s if s.planned_start_s is not None else s.sent_s or 0.0
        parts.append(
            f'<rect class="planned" x="{x(start):.1f}" y="{y + 1}" '
            f'width="{max(x(s.planned_ready_s) - x(start), 2):.1f}" height="14" '
            'fill="#cfd8dc" stroke="#78909c" stroke-dasharray="3,2"/>'
        )
    end = s.last_s
    word = s.outcome
    if s.sent_s is not None and end is not None:
        # The command in flight (sent -> accepted) is thin; the boot (accepted -> ready) full.
        acc = s.accepted_s if s.accepted_s is not None else end
        parts.append(_bar(x(s.sent_s), y + 6, x(acc) - x(s.sent_s), 4, s.outcome, "sent"))
        parts.append(_bar(x(acc), y + 3, x(end) - x(acc), 10, s.outcome, "actual"))
        if s.ready_s is not None:
            word += f" {s.ready_s - s.sent_s:.1f} s"
        label_x = x(max(end, s.planned_ready_s or 0.0)) + 4
    else:
        label_x = x(0) + 4
    if s.depends_on:
        word += " (after " + ", ".join(s.depends_on) + ")"
        parts.append(
            f'<path class="dep" d="M{x(s.sent_s or 0) - 6:.1f} {y + 2}l5 6l-5 6" '
            'fill="none" stroke="#333"/>'
        )
    parts.append(f'<text class="outcome" x="{label_x:.1f}" y="{y + 11}">{_e(word)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _legend(tl: Timeline) -> str:
    seen = {s.outcome for s in tl.spans} | {"started", "failed"}
    items = []
    for outcome, (fill, pattern, word) in STYLES.items():
        if outcome not in seen:
            continue
        over = f'<rect width="28" height="12" fill="url(#{pattern})"/>' if pattern else ""
        items.append(
            f'<li><svg width="28" height="12" aria-hidden="true">'
            f'<rect width="28" height="12" fill="{fill}"/>{over}</svg> {_e(word)}</li>'
        )
    planned = (
        "planned (command to expected ready), behind the actual bar"
        if tl.has_plan()
        else "planned: none drawn (this run's log and plan give no expected times)"
    )
    items.append(
        '<li><svg width="28" height="12" aria-hidden="true"><rect width="28" height="12" '
        f'fill="#cfd8dc" stroke="#78909c" stroke-dasharray="3,2"/></svg> {planned}</li>'
    )
    items.append("<li>thin: command sent, not accepted yet; full: booting until ready</li>")
    items.append("<li>T1, T2: tier; &gt; before a bar and (after ...): its dependencies</li>")
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _table(tl: Timeline) -> str:
    head = ("host", "guest", "tier", "command", "accepted", "ready", "planned ready", "outcome")
    rows = []
    for host in tl.hosts():
        for s in tl.on(host):
            cells = (
                tl.said(host),
                s.said,
                "-" if s.tier is None else s.tier,
                _s(s.sent_s),
                _s(s.accepted_s),
                _s(s.ready_s),
                _s(s.planned_ready_s),
                s.outcome + (f": {s.message}" if s.message else ""),
            )
            rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _still_down(tl: Timeline) -> str:
    down = tl.still_down()
    if not down and not tl.unnamed_down:
        return '<section id="still-down"><h2>STILL DOWN: none</h2></section>'
    items = [
        f"<li><b>{_e(s.said)}</b> ({_e(s.outcome)}"
        + (f" on {_e(tl.said(s.host))}" if s.host else "")
        + ")"
        + (f": {_e(s.message)}" if s.message else "")
        + "</li>"
        for s in down
    ]
    if tl.unnamed_down:
        items.append(
            f"<li>and {tl.unnamed_down} guest(s) the plan left unplaced (never tried, so the "
            "audit log does not name them: fab show-layout lists them)</li>"
        )
    count = len(down) + tl.unnamed_down
    return (
        f'<section id="still-down"><h2>STILL DOWN: {count} guest(s)</h2><ul>'
        + "".join(items)
        + "</ul></section>"
    )


_CSS = """
body{font-family:sans-serif;margin:16px;color:#222;max-width:1040px}
h1{font-size:18px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
.meta{color:#555;margin:0 0 10px}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px 16px;margin:6px 0 10px}
.legend li{display:flex;align-items:center;gap:4px}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ccc;padding:2px 6px}
#still-down h2{color:#b71c1c}
"""


def report_html(tl: Timeline) -> str:
    """The whole page: title, legend, the SVG, STILL DOWN and the figures as a table."""
    started = sum(1 for s in tl.spans if s.outcome == "started")
    ready = [s.ready_s for s in tl.spans if s.ready_s is not None]
    all_up = f"last guest ready at {max(ready):.1f} s" if ready else "no guest ready"
    planned = [s.planned_ready_s for s in tl.spans if s.planned_ready_s is not None]
    if planned:
        all_up += f" (planned {max(planned):.1f} s)"
    ended = tl.ended or "no run-end line (still running, or stopped hard)"
    meta = (
        f"environment {_e(tl.environment)} &middot; run {_e(tl.run)} &middot; plan "
        f"{_e(tl.plan_id or '-')} &middot; by {_e(tl.user or '-')} &middot; first command "
        f"{_e(tl.began or '-')} &middot; {started} of {len(tl.spans)} guests started, "
        f"{_e(all_up)} &middot; run {_e(ended)}"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(f'xenfab run {tl.run} ({tl.environment})')}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>xenfab run {_e(tl.run)}: time to all-up</h1>"
        f'<p class="meta">{meta}</p>'
        + _legend(tl)
        + timeline_svg(tl)
        + _still_down(tl)
        + "<h2>Figures (seconds from the first command)</h2>"
        + _table(tl)
        + "</body></html>\n"
    )
