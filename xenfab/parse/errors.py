"""The one exception every parser raises on input it cannot trust."""

from __future__ import annotations

from xenfab.errors import XenfabError


class ParseError(ValueError, XenfabError):
    """Text could not be parsed; carries the source (host/command/file) and line number."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.reason = message
        self.source = source
        self.line = line
        super().__init__(message)

    def __str__(self) -> str:
        parts = [str(p) for p in (self.source, self.line) if p is not None]
        parts.append(self.reason)
        return ": ".join(parts)

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return (type(self), (self.reason, self.source, self.line))
