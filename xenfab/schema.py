"""The one schema of every input: value types, their checks, and validation to one-line errors.

The config file, the placement and start policies and the snapshot are stdlib dataclasses whose
fields carry these types (``Annotated`` with the markers below) and their default and help text
(``doc()``): that is the only place a default or a meaning is written. pydantic validates plain
data into them (``validate``), and the docs tables are generated from them (``docs_table``).

Importing this module does not import pydantic (``fab --list`` stays fast): the markers import
it only when a validator is first built, in a task body.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
import types
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from .errors import ConfigError, XenfabError

if TYPE_CHECKING:
    from pydantic import ValidationError

# A host name ends up in `clusvcadm -m HOST` on a remote shell: only what DNS and rgmanager allow.
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,253}$")
# Config and snapshot files are small; a bigger one is a mistake (or an attack), not a cluster.
MAX_INPUT_BYTES = 16 * 1024 * 1024
# Every model refuses keys it does not know and infinities/NaN in any number.
MODEL_CONFIG: dict[str, Any] = {"extra": "forbid", "allow_inf_nan": False}


class Core:
    """Metadata that sets keys of the pydantic-core schema (strict, ge, gt, le, min_length)."""

    def __init__(self, **keys: Any) -> None:
        """Keep the core-schema keys to set."""
        self.keys = keys

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        """The inner type's schema with these keys set."""
        schema = handler(source)
        schema.update(self.keys)
        return schema


class Check:
    """Metadata: after the type check, ``fn(value)`` returns the value or raises ValueError."""

    def __init__(self, fn: Callable[[Any], Any], before: bool = False) -> None:
        """Keep the check; ``before`` runs it on the raw input instead."""
        self.fn, self.before = fn, before

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        """Wrap the inner type's schema in the check."""
        from pydantic_core import core_schema

        wrap = (
            core_schema.no_info_before_validator_function
            if self.before
            else core_schema.no_info_after_validator_function
        )
        return wrap(self.fn, handler(source))


def _trimmed(value: str) -> str:
    # `vm:lb01 ` would shadow `vm:lb01`, and `xen01 ` is a different host to Python.
    if not value or value != value.strip():
        raise ValueError(f"{value!r}: empty or surrounded by whitespace")
    if not value.isprintable():
        raise ValueError(f"{value!r}: contains control characters")
    return value


def _host_name(value: str) -> str:
    if not HOST_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid host name")
    return value


def _host_pattern(value: str) -> str:
    # A pattern is a host name with glob characters in it.
    if not HOST_NAME.match(re.sub(r"[*?\[\]!]", "a", value)):
        raise ValueError(f"{value!r} is not a valid host name or pattern")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _unique(key: str) -> Callable[[list], list]:
    def check(items: list) -> list:
        first: dict = {}
        for i, item in enumerate(items):
            name = getattr(item, key)
            if name in first:
                # Two entries may disagree (location, size): which one holds would be a guess.
                raise ValueError(f"[{i}]: {name!r} is listed twice (also [{first[name]}])")
            first[name] = i
        return items

    return check


def control_char(value: str) -> str | None:
    """The first control character in ``value`` (NUL, newline, ESC, DEL...) escaped, or None."""
    for i, ch in enumerate(value):
        if unicodedata.category(ch) == "Cc":
            return f"{ch!r} at position {i}"
    return None


def path_chars(value: str) -> str:
    """A configured path with no control character, else ValueError naming it.

    A NUL cuts a path short in every C API (and Python refuses it), a newline splits a remote
    shell line: either would be blamed later on the host that received it, not on the config.
    """
    bad = control_char(value)
    if bad is not None:
        raise ValueError(f"{value!r}: a path with a control character ({bad})")
    return value


def read_text(path: str, what: str, error: type[Exception] = ConfigError) -> str:
    """A small UTF-8 file's text; every problem one line (size cap, bad bytes, unreadable)."""
    bad = control_char(path)
    if bad is not None:
        raise error(f"{path!r}: cannot read {what}: a path with a control character ({bad})")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise error(f"{path}: {what} larger than {MAX_INPUT_BYTES // 2**20} MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not valid UTF-8 (byte {exc.start})") from None


def one_or_many(value: Any) -> Any:
    """A lone string where a list is expected is that list of one (``exclude: xen03``)."""
    return [value] if isinstance(value, str) else value


def _strict(kind: type, **keys: Any) -> Any:
    return Annotated[kind, Core(strict=True, **keys)]


# Bounds on every number: a huge value is a typo or an attack (2**70 MiB free is not "room"),
# and past 2**53 JSON readers lose precision anyway.
MAX_COUNT = 2**31 - 1
MAX_MIB = 2**32  # 4 PiB: more RAM than any host has
MAX_SECONDS = 10**7  # about 4 months

Str = _strict(str)
Bool = _strict(bool)
Int = _strict(int, ge=-MAX_COUNT, le=MAX_COUNT)
NonNegInt = _strict(int, ge=0, le=MAX_COUNT)
PosInt = _strict(int, ge=1, le=MAX_COUNT)
MiB = _strict(int, ge=0, le=MAX_MIB)
Port = _strict(int, ge=1, le=65535)
# Floats accept whole numbers (`timeout: 10`), never bools, strings, NaN or infinities.
NonNegFloat = Annotated[float, Core(strict=True, ge=0, le=MAX_SECONDS), Check(_finite)]
PosFloat = Annotated[float, Core(strict=True, gt=0, le=MAX_SECONDS), Check(_finite)]
Name = Annotated[str, Core(strict=True), Check(_trimmed)]
HostName = Annotated[str, Core(strict=True), Check(_trimmed), Check(_host_name)]
HostPattern = Annotated[str, Core(strict=True), Check(_trimmed), Check(_host_pattern)]
HostPatterns = Annotated[list[HostPattern], Check(one_or_many, before=True)]


def unique_by(key: str) -> Check:
    """Metadata for a list: no two items share ``getattr(item, key)`` (duplicate hosts)."""
    return Check(_unique(key))


def doc(default: Any = dataclasses.MISSING, help: str = "", shown: str | None = None) -> Any:
    """A dataclass field with its default and help text (``shown`` replaces the default in docs)."""
    meta = {"help": help, "shown": shown}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        # Mutable defaults: each instance gets its own copy.
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def adapter(kind: Any) -> Any:
    """The (cached) pydantic TypeAdapter of a type; building one costs milliseconds."""
    from pydantic import TypeAdapter

    return TypeAdapter(kind, config=None if dataclasses.is_dataclass(kind) else MODEL_CONFIG)


def validate(
    kind: Any, data: Any, source: str, *, prefix: str = "", error: type[XenfabError] = ConfigError
) -> Any:
    """``data`` validated into ``kind``, else ``error``: one line "source: key.path: problem"."""
    from pydantic import ValidationError

    try:
        return adapter(kind).validate_python(data)
    except ValidationError as exc:
        raise error(_at(source, describe(exc, prefix, kind))) from None
    except RecursionError:
        raise error(_at(source, "nested too deeply")) from None


def _at(source: str, message: str) -> str:
    return f"{source}: {message}" if source else message


def describe(exc: ValidationError, prefix: str = "", kind: Any = None) -> str:
    """The first validation error as "key.path: problem, got VALUE"."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = list(first["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        # ('pin', ' a', '[key]'): the key itself is wrong; name the mapping that holds it.
        loc = loc[:-2]
    err_type, msg = first["type"], first["msg"]
    if err_type == "unexpected_keyword_argument":
        allowed = _allowed(kind, loc[:-1])
        msg = "unknown key" + (f" (allowed: {allowed})" if allowed else "")
    elif err_type in ("missing", "missing_argument"):
        msg = "missing (required)"
    elif msg.startswith(("Value error, ", "Assertion failed, ")):
        msg = msg.split(", ", 1)[1]
        # A check on a whole object names its key first ("master: ..."): join it to the path.
        named = re.match(r"^([A-Za-z_][\w.]*|\[\d+\]): (.*)$", msg)
        if named:
            loc.append(named.group(1))
            msg = named.group(2)
    else:
        msg = msg[:1].lower() + msg[1:]
        if err_type != "finite_number" and "input" in first:
            msg += f", got {_short(first['input'])}"
    path = ".".join(p for p in (prefix, ".".join(_loc(p) for p in loc)) if p).replace(".[", "[")
    listing = re.sub(r"\[\d+\]$", "", path)
    msg = msg.replace("(also [", f"(also {listing}[")
    if is_key and not msg.startswith(repr(first.get("input"))):
        msg = f"key {_short(first.get('input'))}: {msg}"
    # Only the first: an environment's merged policy repeats the file's errors, and one fix at a
    # time is how a config is corrected anyway.
    return f"{path or 'top level'}: {msg}"


def _allowed(kind: Any, loc: list) -> list[str] | None:
    # The dataclass at `loc` inside `kind`, for naming the keys it takes; None when unsure.
    import typing

    try:
        for part in [*loc, None]:
            while True:
                origin = typing.get_origin(kind)
                if origin is Annotated:
                    kind = typing.get_args(kind)[0]
                elif origin in (typing.Union, types.UnionType):
                    kind = next(a for a in typing.get_args(kind) if a is not type(None))
                else:
                    break
            if part is None:
                break
            if dataclasses.is_dataclass(kind):
                kind = typing.get_type_hints(kind, include_extras=True)[part]
            elif typing.get_origin(kind) in (dict, list, tuple):
                kind = typing.get_args(kind)[-1 if typing.get_origin(kind) is dict else 0]
            else:
                return None
    except (KeyError, TypeError, StopIteration, NameError):
        return None
    if not dataclasses.is_dataclass(kind):
        return None
    hidden = {"name", "path"}  # given by the mapping key or the loader, never written
    return sorted(f.name for f in dataclasses.fields(kind) if f.name not in hidden)


def _loc(part: Any) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def option(flag: str, value: Any, kind: Any) -> Any:
    """A command-line option's text checked against a schema type (None stays None)."""
    if value is None:
        return None
    from pydantic import ValidationError

    try:
        if isinstance(value, str):
            return adapter(kind).validate_strings(value)
        return adapter(kind).validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        msg = first["msg"]
        if msg.startswith("Value error, "):
            msg = msg.split(", ", 1)[1]
        raise ConfigError(f"{flag}: {msg[:1].lower() + msg[1:]}, got {_short(value)}") from None


def field_type(kind: type, name: str) -> Any:
    """The annotated type of a dataclass field, for checking a CLI option against it."""
    import typing

    hints = typing.get_type_hints(kind, include_extras=True)
    return hints[name]


def docs_table(kind: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every documented field of a schema dataclass."""
    rows = []
    for f in dataclasses.fields(kind):
        if not f.metadata.get("help"):
            continue
        if f.metadata.get("shown") is not None:
            shown = f.metadata["shown"]
        elif f.default is not dataclasses.MISSING:
            shown = f"`{_yaml(f.default)}`"
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            shown = f"`{_yaml(f.default_factory())}`"
        else:
            shown = "required"
        rows.append((f"{prefix}{f.name}", shown, f.metadata["help"]))
    return rows


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)) and not value:
        return "[]" if isinstance(value, list) else "{}"
    return str(value)
