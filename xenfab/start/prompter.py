"""Step mode's question before each start: asked on the terminal, never on stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..errors import StartRefused

PROMPT = "Start {guest} on {host}? [Enter=yes, s=skip, q=quit] "
# An answer that is none of these is asked again, at most this many times in all.
TRIES = 5
START, SKIP, QUIT = "start", "skip", "quit"


class StepPrompter:
    """Asks whether to start one guest; ``in_prompt`` is True while an answer is awaited.

    ``prompt`` asks and returns the line typed (EOFError: no more input); ``note`` says what the
    valid answers are after a wrong one.
    """

    def __init__(self, prompt: Callable[[str], str], note: Callable[[str], None]) -> None:
        """Ask with ``prompt``; explain wrong answers with ``note``."""
        self.prompt = prompt
        self.note = note
        self.in_prompt = False

    def ask(self, guest: str, host: str) -> str:
        """``start``, ``skip`` or ``quit`` (also on end of input, or after wrong answers)."""
        text = PROMPT.format(guest=guest, host=host)
        for _ in range(TRIES):
            # A signal handler reads the flag: only an exception gets out of input().
            self.in_prompt = True
            try:
                answer = self.prompt(text)
            except EOFError:
                # Ctrl-D, or input closed: no answer is not a yes, for this guest or the next.
                self.note("end of input at the prompt: not confirmed; starting nothing more")
                return QUIT
            finally:
                self.in_prompt = False
            word = (answer or "").strip().lower()
            if word in ("", "y", "yes"):
                return START
            if word in ("s", "skip", "n", "no"):
                return SKIP
            if word in ("q", "quit"):
                return QUIT
            self.note("answer Enter (start), s (skip) or q (quit)")
        return QUIT


def terminal_prompt() -> Callable[[str], str]:
    """A prompt that reads from the controlling terminal; StartRefused when there is none."""
    if sys.stdin is not None and sys.stdin.isatty():
        return _ask_on_stderr
    try:
        tty = open("/dev/tty", "r+", encoding="utf-8")  # noqa: SIM115 - lives for the run
    except OSError:
        raise StartRefused("--step needs a terminal to ask on; none is attached") from None

    def ask(text: str) -> str:
        tty.write(text)
        tty.flush()
        line = tty.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return ask


def _ask_on_stderr(text: str) -> str:
    """Ask on stderr, read the answer from stdin: stdout carries only the result (JSON)."""
    sys.stderr.write(text)
    sys.stderr.flush()
    return input()
