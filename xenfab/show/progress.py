"""Progress on stderr for the planner's search (the planner itself does no I/O)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from ..textsafe import printable


class SearchNotice:
    """The planner's ``on_search`` hook: says on ``out`` that it searches, once it takes > 1 s.

    A search that ends within ``after_s`` prints nothing; a longer one prints what it does and
    the most it may take, then how long it took. Never on stdout, so JSON stays one document.
    """

    def __init__(self, out: TextIO | None = None, after_s: float = 1.0) -> None:
        self.out = out if out is not None else sys.stderr
        self.after_s = after_s

    def __call__(self, budget_s: float) -> Callable[[], None]:
        """Start watching a search that may take ``budget_s``; returns its end callback."""
        started = time.monotonic()
        shown = threading.Event()

        def show() -> None:
            shown.set()
            self._write(
                f"planning: searching for a layout that places more guests "
                f"(up to {budget_s:.1f} s) ..."
            )

        timer = threading.Timer(self.after_s, show)
        timer.daemon = True
        if budget_s > self.after_s:
            timer.start()

        def done() -> None:
            timer.cancel()
            if shown.is_set():
                self._write(f"planning: search done in {time.monotonic() - started:.1f} s")

        return done

    def _write(self, line: str) -> None:
        # A closed stderr must not stop the plan.
        with contextlib.suppress(OSError, ValueError):
            print(line, file=self.out, flush=True)


class Waiting:
    """Says on a terminal which hosts have not answered yet, and for how long (after ``after_s``).

    One line, redrawn in place on ``out`` (stderr) and removed at the end; nothing at all when
    ``out`` is not a terminal (cron, pipes, JSON consumers) or when every host answers in time.
    """

    def __init__(
        self,
        what: str,
        hosts: list[str],
        out: TextIO | None = None,
        after_s: float = 2.0,
        every_s: float = 0.5,
        tty: bool | None = None,
    ) -> None:
        self.what = what
        self.out = out if out is not None else sys.stderr
        if tty is None:
            try:
                tty = bool(self.out.isatty())
            except (AttributeError, OSError, ValueError):
                tty = False
        self.tty = tty
        self.after_s, self.every_s = after_s, every_s
        self._left = dict.fromkeys(hosts)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drawn = False
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()

    def __enter__(self) -> Waiting:
        """Start watching (a daemon thread, on a terminal only)."""
        if self.tty and self._left:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def answered(self, host: str) -> None:
        """``host`` answered (or failed): no longer waited for."""
        with self._lock:
            self._left.pop(host, None)

    def __exit__(self, *exc: object) -> None:
        """Stop watching and remove the line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._drawn:
            self._write("\r\x1b[K")

    def line(self) -> str | None:
        """``gathering: waiting 4.1 s for xen03, xen05``, or None once every host answered."""
        with self._lock:
            left = list(self._left)
        if not left:
            return None
        waited = time.monotonic() - self.t0
        names = ", ".join(left)
        if len(names) > 60:
            names = names[:56].rsplit(", ", 1)[0] + f", ... ({len(left)} hosts)"
        return printable(f"{self.what}: waiting {waited:.1f} s for {names}")

    def _run(self) -> None:
        if self._stop.wait(self.after_s):
            return
        while not self._stop.is_set():
            text = self.line()
            if text is None:
                return
            self._write("\r\x1b[K" + text)
            self._drawn = True
            self._stop.wait(self.every_s)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text)
            self.out.flush()


def gathering(hosts: list[str]) -> Waiting:
    """On a terminal, after 2 s, which hosts a gather still waits for (a slow one is no hang)."""
    return Waiting("gathering", hosts)
