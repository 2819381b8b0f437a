"""Progress as it happens: one line per event with the counts and the time left.

On a terminal a status line under the events is redrawn in place (``\\r``); when the output is a
file or a pipe (cron, ``tee``, CI logs) every line is a plain line and nothing is rewritten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TextIO

from ..textsafe import printable
from .outcome import Tally
from .report import format_duration

CLEAR = "\r\x1b[K"


def counts_line(
    counts: dict[str, int], eta: float | None, waits: Mapping[str, int] | None = None
) -> str:
    """``12/48 started, 2 failed, 3 running, 6 wait for a slot, ETA 1m20s``; zeros left out.

    ``waits``: what the queued starts wait for (reason -> how many); the two largest are said.
    """
    started, total = counts[Tally.STARTED], counts[Tally.TOTAL]
    parts = [f"{started}/{total} {Tally.STARTED}"]
    for key in (Tally.FAILED, Tally.NOT_READY, Tally.RUNNING, Tally.LEFT_ALONE, Tally.NOT_STARTED):
        if counts.get(key):
            parts.append(f"{counts[key]} {key}")
    for why, n in sorted((waits or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:2]:
        parts.append(f"{n} wait for {why}")
    # Every guest with its outcome: the time left is said while any is still to come.
    ended = started + sum(
        counts.get(k, 0)
        for k in (Tally.FAILED, Tally.NOT_READY, Tally.LEFT_ALONE, Tally.NOT_STARTED)
    )
    if counts.get(Tally.RUNNING) or ended < total:
        if eta is None:
            parts.append("ETA ?")
        elif eta < 0.5 and counts.get(Tally.RUNNING):
            # The estimate ran out while guests still boot: "0.0s" would be a promise broken.
            parts.append("ETA overdue, still booting")
        else:
            parts.append(f"ETA {format_duration(eta)}")
    return ", ".join(parts)


class Progress:
    """Writes event lines (and, on a terminal, a live status line) to ``out``."""

    def __init__(self, out: TextIO, tty: bool | None = None):
        """Write to ``out``; ``tty`` defaults to whether ``out`` is a terminal."""
        self.out = out
        if tty is None:
            isatty = getattr(out, "isatty", None)
            try:
                tty = bool(isatty()) if isatty else False
            except (ValueError, OSError):
                tty = False
        self.tty = tty
        self.t0 = time.monotonic()
        self._status = ""
        self._drawn_at = 0.0
        self._lock = threading.Lock()

    def event(self, text: str, status: str | None = None) -> None:
        """Print one event line, with the counts when given."""
        stamp = f"[{time.monotonic() - self.t0:6.1f}s]"
        # Names and messages in events came from hosts: never raw to a terminal.
        text = printable(text)
        status = printable(status) if status else status
        line = f"{stamp} {text}" + (f"  |  {status}" if status else "")
        with self._lock:
            if self.tty:
                self._write(CLEAR + line + "\n")
                if status:
                    self._status = status
                self._draw()
            else:
                self._write(line + "\n")

    def note(self, text: str) -> None:
        """Print a line without counts (headers, warnings)."""
        self.event(text)

    def tick(self, status: str) -> None:
        """Redraw the status line on a terminal (at most 4 times a second); no-op otherwise."""
        if not self.tty:
            return
        with self._lock:
            self._status = status
            now = time.monotonic()
            if now - self._drawn_at >= 0.25:
                self._draw()

    def clear(self) -> None:
        """Remove the status line before the final table is printed."""
        if self.tty:
            with self._lock:
                self._write(CLEAR)
                self._status = ""

    def _draw(self) -> None:
        if self._status:
            elapsed = format_duration(time.monotonic() - self.t0)
            self._write(f"{CLEAR}  {self._status} (elapsed {elapsed})")
        self._drawn_at = time.monotonic()

    def write(self, text: str) -> None:
        """Write text with its newlines (dry-run listings), controls escaped; errors ignored."""
        self._write(printable(text, newlines=True))

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            pass
