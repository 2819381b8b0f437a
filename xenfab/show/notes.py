"""Footnotes: long reasons leave the tables and lines they would widen, said once per output.

A table cell or a line that would pass ``WIDTH`` columns shows the start of its text and a mark
(``[2]``); the whole text is printed once, under the first table or block that needs it. Every
render of one task's output shares one ``Notes`` (``output()``, entered by the task boundary),
so a reason met three times (the layout, STILL DOWN, the demo's second run) is said once; a
render outside it numbers its own. JSON never goes through here: it keeps every text whole.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Iterator
from contextvars import ContextVar

# Every line of a table output fits this; the tables stay readable at 80 (only notes are cut).
WIDTH = 100
# A cell narrower than this shows only the mark: a few words would read as the whole text.
MIN_GIST = 16
# The columns this output's lines may take: WIDTH, less a prefix every line gets (several
# clusters' views each start their lines with ``[env] ``, see ``narrower``).
_width: ContextVar[int] = ContextVar("xenfab_width", default=WIDTH)


def width() -> int:
    """The columns a line of the output being rendered may take."""
    return _width.get()


@contextlib.contextmanager
def narrower(by: int) -> Iterator[None]:
    """Render ``by`` columns narrower inside: for a view whose every line gets a prefix."""
    token = _width.set(max(60, _width.get() - by))
    try:
        yield
    finally:
        _width.reset(token)


class Notes:
    """The footnotes of one output: text -> number, and those not yet printed."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._pending: list[int] = []
        self._texts: list[str] = []

    def fit(self, text: str, room: int) -> str:
        """``text`` when it fits ``room`` columns, else its start and a footnote mark."""
        text = " ".join(str(text).split())  # a newline would break the table it sits in
        if len(text) <= room:
            return text
        # A text that quotes a whole note ("no host: REASON") points at that note.
        n = next((i + 1 for i, t in enumerate(self._texts) if len(t) > 40 and t in text), None)
        return gist(text, room, n or self.number(text))

    def number(self, text: str) -> int:
        """The footnote number of ``text``, added (to be printed) when it is new."""
        n = self._numbers.get(text)
        if n is None:
            self._texts.append(text)
            n = self._numbers[text] = len(self._texts)
            self._pending.append(n)
        return n

    def said_in(self, text: str) -> int | None:
        """The number of a footnote that already says ``text`` (its first 60 characters)."""
        probe = " ".join(str(text).split())[:60]
        return next((i + 1 for i, t in enumerate(self._texts) if probe in t), None)

    def lines(self) -> list[str]:
        """The footnotes added since the last call, each wrapped to ``width()`` (a blank first)."""
        if not self._pending:
            return []
        out = [""]
        for n in self._pending:
            out += wrap(self._texts[n - 1], f"  [{n}] ", " " * (len(str(n)) + 5))
        self._pending = []
        return out


def gist(text: str, room: int, n: int) -> str:
    """The start of ``text`` and the mark of footnote ``n``, in ``room`` columns."""
    mark = f"[{n}]"
    if room < MIN_GIST:
        return mark
    cut = text[: room - len(mark) - 5]
    # Cut between words when there is one to cut at; a path is cut where it must be.
    head = cut.rsplit(" ", 1)[0] if " " in cut[len(cut) // 2 :] else cut
    return f"{head.rstrip(' ,;:')} ... {mark}"


def wrap(text: str, first: str, rest: str, columns: int | None = None) -> list[str]:
    """``text`` wrapped to ``columns`` (the output's ``width()``) with its prefixes; a word
    longer than a line is cut.

    A command in backticks stays on one line (it is copied from there), unless it is longer
    than a line itself.
    """
    # Text here went through printable(): it holds no control character of its own.
    glued = _CODE.sub(lambda m: m.group(0).replace(" ", _GLUE), text)
    lines = textwrap.wrap(
        glued,
        columns or width(),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
    )
    return [line.replace(_GLUE, " ") for line in lines] or [first.rstrip()]


_CODE = re.compile(r"`[^`]*`")
_GLUE = "\x1f"  # not whitespace to textwrap: the spaces of a command in backticks


_current: ContextVar[Notes | None] = ContextVar("xenfab_notes", default=None)


@contextlib.contextmanager
def output() -> Iterator[Notes]:
    """One output's notes: every render inside shares them (nested calls keep the outer)."""
    notes = _current.get()
    if notes is not None:
        yield notes
        return
    notes = Notes()
    token = _current.set(notes)
    try:
        yield notes
    finally:
        _current.reset(token)


def active() -> Notes:
    """The output's notes, or fresh ones for a render outside any output."""
    return _current.get() or Notes()
