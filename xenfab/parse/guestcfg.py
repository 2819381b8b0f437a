"""Parser for Xen guest config files (xl syntax, with a careful fallback for xm's Python).

The config is never executed: xl syntax is parsed by a port of libxlu's grammar, Python
configs are only inspected with :mod:`ast` or, failing that, line by line.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from xenfab.parse._util import normalize_text, strtol
from xenfab.parse.errors import ParseError
from xenfab.parse.records import GuestConfig

_KEYS = ("name", "memory", "maxmem", "vcpus")
# xl's default when neither memory nor maxmem is set (libxl LIBXL_MEMKB_DEFAULT -> 32 MiB).
_DEFAULT_MEMORY_MIB = 32
# Real configs nest lists two deep at most; the cap keeps recursion far from Python's limit.
_MAX_LIST_DEPTH = 50


class _GrammarError(Exception):
    """The text is not in xl's config grammar (so maybe it is xm's Python)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class _Atom:
    """A string or number exactly as libxlu stores it: as text."""

    text: str
    line: int


@dataclass
class _Setting:
    value: _Atom | list
    line: int


# ---------------------------------------------------------------------------
# xl grammar (tools/libs/util/libxlu_cfg_l.l and libxlu_cfg_y.y)
# ---------------------------------------------------------------------------

_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER_RE = re.compile(r"[0-9][0-9a-fA-FxX]*")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _dequote(body: str) -> str:
    """Undo backslash escapes inside a quoted string the way libxlu does."""
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        i += 1
        if c != "\\" or i >= len(body):
            out.append(c)
            continue
        c = body[i]
        i += 1
        if c in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[c])
        elif c == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i:])
            if m:
                out.append(chr(int(m.group(), 16)))
                i += m.end()
            else:
                out.append("x")
        elif c in "01234567":
            m = re.match(r"[0-7]{0,2}", body[i:])
            digits = c + (m.group() if m else "")
            out.append(chr(int(digits, 8)))
            i += len(digits) - 1
        else:
            out.append(c)
    return "".join(out)


def _lex(text: str) -> list[tuple[str, str, int]]:
    """Split xl config text into (kind, text, line) tokens; kinds: id num str op nl eof."""
    tokens: list[tuple[str, str, int]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            tokens.append(("nl", c, line))
            line += 1
            i += 1
        elif c in " \t\r\f\v":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "=,[];":
            tokens.append(("op", c, line))
            i += 1
        elif c == "+" and text.startswith("+=", i):
            tokens.append(("op", "+=", line))
            i += 2
        elif c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                # libxlu's string pattern cannot span lines, not even after a backslash.
                if text[j] == "\n" or (text[j] == "\\" and text[j + 1 : j + 2] == "\n"):
                    raise _GrammarError("newline inside a string", line)
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise _GrammarError("unterminated string", line)
            tokens.append(("str", _dequote(text[i + 1 : j]), line))
            i = j + 1
        else:
            m = _NUMBER_RE.match(text, i) or _ID_RE.match(text, i)
            if not m:
                raise _GrammarError(f"unexpected character {c!r}", line)
            tokens.append(("num" if c.isdigit() else "id", m.group(), line))
            i = m.end()
    tokens.append(("eof", "", line))
    return tokens


class _XlParser:
    """Recursive-descent version of libxlu's yacc grammar."""

    def __init__(self, text: str) -> None:
        self.toks = _lex(text)
        self.pos = 0

    def _peek(self) -> tuple[str, str, int]:
        return self.toks[self.pos]

    def _next(self) -> tuple[str, str, int]:
        tok = self.toks[self.pos]
        if tok[0] != "eof":
            self.pos += 1
        return tok

    def _skip_newlines(self) -> None:
        while self._peek()[0] == "nl":
            self.pos += 1

    def parse(self) -> dict[str, _Setting]:
        settings: dict[str, _Setting] = {}
        while True:
            kind, text, line = self._next()
            if kind == "eof":
                return settings
            if kind == "nl" or (kind, text) == ("op", ";"):
                continue
            if kind != "id":
                raise _GrammarError(f"expected a key, got {text!r}", line)
            op_kind, op, op_line = self._next()
            if op_kind != "op" or op not in ("=", "+="):
                raise _GrammarError(f"expected '=' after {text!r}", op_line)
            value = self._value()
            end_kind, end_text, end_line = self._next()
            if end_kind not in ("nl", "eof") and (end_kind, end_text) != ("op", ";"):
                raise _GrammarError(f"unexpected {end_text!r} after value of {text!r}", end_line)
            if op == "+=" and text in settings:
                settings[text] = _Setting(self._append(settings[text].value, value, line), line)
            else:
                settings[text] = _Setting(value, line)
            if end_kind == "eof":
                return settings

    @staticmethod
    def _append(old: _Atom | list, new: _Atom | list, line: int) -> _Atom | list:
        # libxlu: `+=` concatenates strings (numbers are strings too) and extends lists.
        if isinstance(old, list) and isinstance(new, list):
            return old + new
        if isinstance(old, _Atom) and isinstance(new, _Atom):
            return _Atom(old.text + new.text, line)
        raise _GrammarError("'+=' mixes a list and a single value", line)

    def _value(self, depth: int = 0) -> _Atom | list:
        kind, text, line = self._next()
        if kind in ("str", "num"):
            return _Atom(text, line)
        if (kind, text) == ("op", "["):
            if depth >= _MAX_LIST_DEPTH:
                raise ParseError("lists nested too deeply", None, line)
            return self._list(depth + 1)
        raise _GrammarError(f"expected a value, got {text!r}", line)

    def _list(self, depth: int) -> list:
        items: list = []
        self._skip_newlines()
        while True:
            kind, text, line = self._peek()
            if (kind, text) == ("op", "]"):
                self.pos += 1
                return items
            items.append(self._value(depth))
            self._skip_newlines()
            kind, text, line = self._next()
            if (kind, text) == ("op", "]"):
                return items
            if (kind, text) != ("op", ","):
                raise _GrammarError(f"expected ',' or ']' in list, got {text!r}", line)
            # A trailing comma before ']' is allowed.
            self._skip_newlines()


# ---------------------------------------------------------------------------
# Fallbacks for xm (Python) configs
# ---------------------------------------------------------------------------


def _target_names(target: ast.expr) -> list[ast.Name]:
    if isinstance(target, ast.Name):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


_UNSET = object()


def _from_python_ast(text: str, source: str | None) -> dict[str, _Setting] | None:
    """Read the four keys from top-level literal assignments; None if not valid Python 3."""
    try:
        tree = ast.parse(text)
    except Exception:  # noqa: BLE001 - any failure just means "try the line-based reader"
        return None
    found: dict[str, _Setting] = {}
    # Top-level variables bound to literals, so `maxmem = memory` or `name = vmname` resolve.
    env: dict[str, object] = {}

    def literal(value: ast.expr) -> object:
        if isinstance(value, ast.Name):
            return env.get(value.id, _UNSET)
        try:
            return ast.literal_eval(value)
        except Exception:  # noqa: BLE001 - not a literal, whatever the reason
            return _UNSET

    def assign(node: ast.stmt, targets: list[ast.expr], conditional: bool) -> None:
        simple = isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in targets)
        value = _UNSET
        if simple and not conditional:
            value = literal(node.value)  # type: ignore[attr-defined]
        for target in targets:
            for name in _target_names(target):
                env.pop(name.id, None)
                if value is not _UNSET:
                    env[name.id] = value
                if name.id not in _KEYS:
                    continue
                if conditional or not simple:
                    raise ParseError(
                        f"{name.id} is not set by a plain top-level assignment",
                        source,
                        node.lineno,
                    )
                if value is _UNSET:
                    raise ParseError(
                        f"{name.id} is computed, not a literal; cannot read it"
                        " without running the config",
                        source,
                        node.lineno,
                    )
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    raise ParseError(
                        f"{name.id} must be a string or integer, got {type(value).__name__}",
                        source,
                        node.lineno,
                    )
                found[name.id] = _Setting(_Atom(str(value), node.lineno), node.lineno)

    def visit(body: list[ast.stmt], conditional: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                env.pop(node.name, None)
                continue  # assignments in there are local, not config settings
            if isinstance(node, ast.Assign):
                assign(node, node.targets, conditional)
                continue
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                assign(node, [node.target], conditional)
                continue
            if isinstance(node, (ast.For, ast.AsyncFor)):
                assign(node, [node.target], True)
            for attr in ("body", "orelse", "finalbody", "handlers", "cases"):
                sub = getattr(node, attr, None)
                if isinstance(sub, list):
                    stmts: list[ast.stmt] = []
                    for item in sub:
                        if isinstance(item, ast.stmt):
                            stmts.append(item)
                        elif hasattr(item, "body"):  # except handlers, match cases
                            stmts.extend(item.body)
                    visit(stmts, True)

    visit(tree.body, False)
    return found


_KEY_LINE_RE = re.compile(
    r"(?P<indent>[ \t]*)(?P<key>name|memory|maxmem|vcpus)\s*(?P<op>\+?=)(?!=)"
)
_LITERAL_RE = re.compile(
    r"""\s*(?:"(?P<dq>(?:[^"\\\n]|\\.)*)"|'(?P<sq>(?:[^'\\\n]|\\.)*)'"""
    r"""|(?P<num>[-+]?[0-9][0-9a-fA-FxX]*)L?)\s*"""
)


def _statements(line: str) -> list[str]:
    """Split a line at ``;`` outside quotes, dropping a trailing ``#`` comment."""
    parts: list[str] = []
    start, quote, i = 0, "", 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "#":
            break
        elif c == ";":
            parts.append(line[start:i])
            start = i + 1
        i += 1
    parts.append(line[start:i])
    return parts


def _from_lines(text: str, source: str | None) -> dict[str, _Setting]:
    """Last resort: ``key = literal`` statements at column 0; anything cleverer is refused."""
    found: dict[str, _Setting] = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        for index, stmt in enumerate(_statements(line)):
            m = _KEY_LINE_RE.match(stmt if index == 0 else stmt.lstrip())
            if not m:
                continue
            stmt = stmt if index == 0 else stmt.lstrip()
            key = m.group("key")
            if m.group("indent") or m.group("op") == "+=":
                raise ParseError(
                    f"{key} is not set by a plain top-level assignment", source, lineno
                )
            lit = _LITERAL_RE.fullmatch(stmt, m.end())
            if not lit:
                raise ParseError(
                    f"{key} is computed, not a literal; cannot read it without running the config",
                    source,
                    lineno,
                )
            if lit.group("num") is not None:
                value = lit.group("num")
            else:
                body = lit.group("dq") if lit.group("dq") is not None else lit.group("sq")
                value = _dequote(body)
            found[key] = _Setting(_Atom(value, lineno), lineno)
    return found


# ---------------------------------------------------------------------------
# xl semantics
# ---------------------------------------------------------------------------


def _number(settings: dict[str, _Setting], key: str, source: str | None) -> int | None:
    if key not in settings:
        return None
    setting = settings[key]
    if not isinstance(setting.value, _Atom):
        raise ParseError(f"{key} must be a number, not a list", source, setting.line)
    value = strtol(setting.value.text)
    if value is None or value <= 0:
        raise ParseError(
            f"{key} is not a positive integer: {setting.value.text[:40]!r}", source, setting.line
        )
    return value


def _build(settings: dict[str, _Setting], source: str | None) -> GuestConfig:
    name_setting = settings.get("name")
    if name_setting is None:
        raise ParseError("no 'name' in guest config", source)
    if not isinstance(name_setting.value, _Atom):
        raise ParseError("name must be a string, not a list", source, name_setting.line)
    name = name_setting.value.text
    if not name.strip():
        raise ParseError("name is empty", source, name_setting.line)
    memory = _number(settings, "memory", source)
    maxmem = _number(settings, "maxmem", source)
    vcpus = _number(settings, "vcpus", source)
    if memory is None and maxmem is None:
        memory = maxmem = _DEFAULT_MEMORY_MIB
    elif maxmem is None:
        maxmem = memory
    elif memory is None:
        memory = maxmem
    assert memory is not None and maxmem is not None
    return GuestConfig(name=name, memory_mib=memory, maxmem_mib=maxmem, vcpus=vcpus or 1)


def parse_guest_config(text: str, source: str | None = None) -> GuestConfig:
    """Read name, memory, maxmem (MiB) and vcpus from an xl or xm guest config, never running it."""
    text = normalize_text(text, source, terminal=False)
    try:
        settings = _XlParser(text).parse()
    except _GrammarError:
        # Not xl syntax: most likely an xm config, which is Python.
        settings_or_none = _from_python_ast(text, source)
        settings = settings_or_none if settings_or_none is not None else _from_lines(text, source)
    except ParseError as exc:
        raise ParseError(exc.reason, source, exc.line) from None
    return _build(settings, source)
