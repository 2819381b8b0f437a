"""Progress on stderr for the planner's search (the planner itself does no I/O)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


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
