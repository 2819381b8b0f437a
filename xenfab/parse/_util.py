"""Helpers shared by the parsers: input normalisation and safe integer conversion."""

from __future__ import annotations

import re

from xenfab.parse.errors import ParseError

# Python refuses int() on more than ~4300 digits; anything near that is garbage anyway.
_MAX_DIGITS = 40

_DEC_RE = re.compile(r"[0-9]+")
# Terminal control sequences (clustat -i clears the screen; captured xl top has colours).
_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


def normalize_text(text: object, source: str | None, *, terminal: bool = True) -> str:
    """Return ``text`` as str with LF line ends, no BOM and (for command output) no ANSI codes."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}", source)
    if text.startswith("\ufeff"):
        text = text[1:]
    # NUL bytes are never meaningful in these outputs and upset the XML parser.
    text = text.replace("\x00", "")
    if terminal:
        text = _ANSI_RE.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def dec_int(token: str) -> int | None:
    """A plain non-negative decimal integer, or None when ``token`` is anything else."""
    if len(token) > _MAX_DIGITS or not _DEC_RE.fullmatch(token):
        return None
    return int(token)


def strtol(text: str) -> int | None:
    """C ``strtol(text, &end, 0)`` requiring the whole string to be consumed; None if invalid.

    Leading whitespace and a sign are allowed, ``0x`` means hex and a leading ``0`` octal,
    which is how xl reads numeric config values (also quoted ones).
    """
    s = text.lstrip(" \t\n\v\f\r")
    if not s:
        return None
    sign = 1
    if s[0] in "+-":
        if s[0] == "-":
            sign = -1
        s = s[1:]
    if len(s) > _MAX_DIGITS or not s:
        return None
    if s[:2] in ("0x", "0X"):
        digits, base = s[2:], 16
        if not re.fullmatch(r"[0-9a-fA-F]+", digits):
            return None
    elif s[0] == "0" and len(s) > 1:
        digits, base = s[1:], 8
        if not re.fullmatch(r"[0-7]+", digits):
            return None
    else:
        digits, base = s, 10
        if not _DEC_RE.fullmatch(digits):
            return None
    value = sign * int(digits, base)
    # strtol reports ERANGE beyond a 64-bit long; xl then rejects the value.
    if not -(2**63) <= value <= 2**63 - 1:
        return None
    return value
