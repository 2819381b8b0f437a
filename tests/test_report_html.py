"""The HTML report's structure: lanes per host, a bar per guest, escaped text, nothing fetched.

Parsed with html.parser (the page) and xml.etree (its SVG must be well-formed XML); a render
check with headless Chromium runs where /usr/bin/chromium exists.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser

import pytest
from test_timeline import rec, run_lines, started

from xenfab.show.report_html import report_html
from xenfab.show.timeline import timeline_of

CHROMIUM = "/usr/bin/chromium"
SVG = "{http://www.w3.org/2000/svg}"
EVIL = "web<script>alert(1)</script>&01"


class Page(HTMLParser):
    """Every start tag with its attributes, and the text outside tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _page(lines) -> tuple[str, Page]:
    text = report_html(timeline_of(lines, "r1"))
    page = Page()
    page.feed(text)
    page.close()
    return text, page


def _lines():
    lines = run_lines()
    lines += started(EVIL, 'xen"04<', 2.0, 2.1, 6.5)
    lines[1]["tier"] = 1
    lines[1]["expected_ready_s"] = 4.5
    lines[1]["depends_on"] = ["dns<01>"]
    return lines


def test_lanes_per_host_and_a_bar_per_guest():
    text, page = _page(_lines())
    lanes = [a["data-host"] for t, a in page.tags if t == "g" and a.get("class") == "lane"]
    # One lane per host, in name order (the host's quote and bracket came back as data).
    assert lanes == sorted(["xen01", "xen02", "xen03", 'xen"04<'])
    guests = [a for t, a in page.tags if t == "g" and a.get("class") == "guest"]
    assert sorted(g["data-guest"] for g in guests) == sorted(
        ["db01", "web01", "app01", "app02", EVIL]
    )
    # A bar for every guest that was sent (all five here), one planned bar (db01's only).
    bars = [a for t, a in page.tags if t == "rect" and a.get("class") == "actual"]
    assert len(bars) == 5
    assert len([a for t, a in page.tags if t == "rect" and a.get("class") == "planned"]) == 1
    # The failure has its pattern, not only its colour; the legend says each in words.
    assert any(a.get("fill") == "url(#hatch)" for t, a in page.tags if t == "rect")
    words = " ".join(page.text)
    assert "failed (hatched)" in words and "started (solid)" in words
    assert "T1 db01" in words and "after dns<01>" in words
    # STILL DOWN names the failed guest and counts the ones the log does not name.
    down = text[text.index('id="still-down"') :]
    assert "app01" in down and "STILL DOWN: 3 guest(s)" in down


def test_xe_uuids_are_said_by_the_labels_their_intents_carried():
    vm, h = "476595e7-cf32-4e7a-9d6b-000000000001", "6c586172-aaaa-bbbb-cccc-000000000001"
    lines = [rec(0.0, "open")] + started(vm, h, 1.0, 1.2, 4.0)
    lines[1].update(guest_label="db<02>", host_label="xen01")
    lines.append(rec(5.0, "result", "bad", h, "failed", message="no room"))
    lines.insert(2, rec(1.1, "intent", "bad", h, "sending", attempt=1))
    text, page = _page(lines)
    words = " ".join(page.text)
    assert "xen01 (6c586172)" in words and "db<02> (476595e7)" in words  # escaped, read back
    assert "<02>" not in text
    # The data attributes keep the identity; STILL DOWN names the host by its label too.
    lanes = [a["data-host"] for t, a in page.tags if t == "g" and a.get("class") == "lane"]
    assert lanes == [h]
    down = text[text.index('id="still-down"') :]
    assert "on xen01 (6c586172)" in down


def test_text_from_the_log_is_escaped():
    text, page = _page(_lines())
    # The name is data: no script element, its text comes back whole from the parser.
    assert not any(t == "script" for t, _ in page.tags)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert EVIL in "".join(page.text)
    assert "clusvcadm: <b>boom</b> & more" in "".join(page.text)
    bold = [t for t, _ in page.tags if t == "b"]
    # Only STILL DOWN's own <b> around each name: the message's <b> stayed text.
    assert len(bold) == 1


def test_nothing_is_fetched():
    text, page = _page(_lines())
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
        for name, value in attrs.items():
            assert name not in ("src", "href", "xlink:href"), (tag, name, value)
            assert not name.startswith("on"), (tag, name)
            assert "url(" not in (value or "") or re.fullmatch(r"url\(#[a-z]+\)", value or "")
    assert "@import" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "https://" not in text


def test_the_svg_is_well_formed_xml():
    text, _ = _page(_lines())
    svgs = re.findall(r"<svg xmlns=.*?</svg>", text, flags=re.S)
    assert len(svgs) == 1
    root = ET.fromstring(svgs[0])
    lanes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]
    assert len(lanes) == 4
    # Every guest row sits inside its host's lane.
    for lane in lanes:
        rows = [g for g in lane.iter(f"{SVG}g") if g.get("class") == "guest"]
        assert rows, lane.get("data-host")


def test_bars_are_placed_by_time_and_planned_behind():
    _, page = _page(_lines())
    seq = [(t, a) for t, a in page.tags if t in ("g", "rect")]
    # Within db01's row the planned bar comes first (drawn behind the actual one).
    start = next(i for i, (t, a) in enumerate(seq) if a.get("data-guest") == "db01")
    kinds = [a.get("class") for _, a in seq[start + 1 : start + 5]]
    assert kinds.index("planned") < kinds.index("actual")
    # A later command starts further right: x follows time.
    xs = {}
    for _t, a in seq:
        if a.get("class") == "guest":
            guest = a["data-guest"]
        elif a.get("class") == "sent":
            xs[guest] = float(a["x"])
    assert xs["db01"] < xs["web01"] < xs["app01"] < xs[EVIL]


def test_no_command_sent_still_makes_a_page():
    lines = [rec(0.0, "open"), rec(1.0, "not-started", "a", None, "not-started", message="x")]
    text, page = _page(lines)
    assert "STILL DOWN: 1 guest(s)" in text
    assert not [a for t, a in page.tags if t == "rect" and a.get("class") == "actual"]


# --- rendered ------------------------------------------------------------------------------


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB(A) PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = depth = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and ctype in (2, 6)
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
def test_chromium_renders_the_report(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report_html(timeline_of(_lines(), "r1")))
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=600,400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), res.stderr[-2000:]
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (600, 400)
    bpp = len(rows[0]) // width
    colours = {row[i : i + 3] for row in rows[::4] for i in range(0, len(row), bpp * 4)}
    # Not blank: text, the lanes' grey and the bars' green are there.
    assert len(colours) > 20
    green = [c for c in colours if c[1] > c[0] + 40 and c[1] > c[2] + 40]
    assert green, "no bar drawn"
