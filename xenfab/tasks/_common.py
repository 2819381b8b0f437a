"""What every task shares: finding the config, the error boundary, and output formats.

The task modules import little at load time (Invoke, this module, and for one help text
plan.capacity): `fab --list`, `fab --help` and the lab's tasks do not load the parsers, the
gather, the start engine, tabulate or the lab. What a task needs it imports in its body
(function-local imports, on purpose).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from invoke.exceptions import Exit

from ..errors import ExitCode, XenfabError

# The library side (xenfab.run.facts) owns loading and checking; the tasks use them from here.
from ..run.facts import FORMATS, check_format, load, saved_snapshot, split_list
from ..textsafe import printable


def cli(fn: Callable) -> Callable:
    """Turn every XenfabError (and Ctrl-C) into a one-line message and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if isinstance(sys.stdout, _PipeSafe):  # a task called from another (fab demo)
            return _run(fn, args, kwargs)
        guard = _PipeSafe(sys.stdout)
        sys.stdout = guard
        old = _trap_stop_signals()
        try:
            return _run(fn, args, kwargs)
        finally:
            _restore(old)
            sys.stdout = guard.stream

    return wrapper


# A `kill` or a closed terminal stops a task as Ctrl-C does, in every phase: the last line and
# exit 130, never the bare 143/129 of a process killed mid-sentence. The start engine traps them
# itself while it starts guests (first signal: finish what is in flight), then puts these back.
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _trap_stop_signals() -> dict[int, Any]:
    old: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return old
    for sig in _STOP_SIGNALS:
        try:
            current = signal.getsignal(sig)
            if current is signal.SIG_IGN:
                continue  # started under nohup: a hangup is meant to be ignored
            old[sig] = signal.signal(sig, _as_interrupt)
        except (ValueError, OSError):
            continue
    return old


def _restore(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        try:
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        except (ValueError, OSError, TypeError):
            continue


def _run(fn: Callable, args: tuple, kwargs: dict) -> Any:
    from ..show.notes import output

    try:
        with output():  # one output, one set of footnotes: a long reason is said once
            return fn(*args, **kwargs)
    except XenfabError as exc:
        raise Exit(f"xenfab: {printable(exc)}", code=int(exc.exit_code)) from None
    except KeyboardInterrupt:
        raise Exit("xenfab: interrupted", code=int(ExitCode.INTERRUPTED)) from None


class _PipeSafe:
    """stdout that survives its reader going away (`| head`, `| true`).

    The task runs to its end and keeps its exit code and its error line (on stderr): a closed
    pipe must never turn a failure into 0.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        """Write through, or drop the text once the reader is gone."""
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        """Flush through, unless the reader is gone."""
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.broken = True
        # Python flushes stdout once more at exit: point the descriptor at /dev/null so that
        # flush neither fails nor prints "Exception ignored".
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def exit_with(code: int, message: str | None = None) -> None:
    """End a task with ``code`` (ExitCode) and a last line on stderr; returns when code is 0."""
    if code:
        raise Exit(f"xenfab: {message}" if message else None, code=int(code))


__all__ = [
    "FORMATS",
    "check_format",
    "cli",
    "exit_with",
    "load",
    "saved_snapshot",
    "split_list",
]
