"""Parse what the XCP-ng / XenServer ``xe`` CLI prints: records, map values, and errors.

Grammar (xapi's cli_printer.ml and cli_util.ml; docs/backends-xe.md): a record is one
``key (ANN): value`` line per field, the first key left-aligned and the others right-aligned to
one width, records separated by blank lines (two, from a real xe; none from the Windows xe.exe,
where a line that is not indented starts the next record). Annotations are ``( RO)``, ``( RW)``,
``(SRO)``, ``(SRW)``, ``(MRO)``, ``(MRW)``, optionally `` [DEPRECATED]``. Maps print as
``k: v; k: v`` with no escaping at all. Errors print either the API error's doc sentence and one
``name: value`` line per parameter, or ``Error code: CODE`` and ``Error parameters: ...`` for a
code the datamodel does not know; the doc sentences changed wording in xapi 1.178 (XCP-ng 8.1:
"host" became "server", full stops and spacing), and both wordings are recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xenfab.parse._util import normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import RecordMixin

_ANNOTATION = r"\( RO\)|\( RW\)|\(SRO\)|\(SRW\)|\(MRO\)|\(MRW\)"
# Lazy key, then the annotation (absent in vm-start's per-host table), then the first ": ".
_FIELD = re.compile(
    rf"^(?P<indent>\s*)(?P<key>\S.*?)(?: (?:{_ANNOTATION})(?: \[DEPRECATED\])?)?"
    r"\s*:(?: (?P<value>.*))?$"
)
_ANNOTATED = re.compile(rf" (?:{_ANNOTATION})(?: \[DEPRECATED\])?\s*:(?: |$)")


def parse_xe_records(text: str, source: str | None = None) -> list[dict[str, str]]:
    """One dict per record of ``xe *-list`` / ``*-param-list`` output: key -> stripped value.

    Keys are printed names without their annotation (``name-label``). No records (an empty
    list, which xe prints as nothing) is ``[]``. A line that is no field of a record, a key
    twice in one record, or a record that is not annotated, raises ParseError.
    """
    text = normalize_text(text, source)
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            current = None
            continue
        m = _FIELD.match(line)
        if m is None or (current is None and not _ANNOTATED.search(line)):
            raise ParseError(f"not a field of an xe record: {line[:80]!r}", source, lineno)
        key = m.group("key")
        # The first key of a record is never indented: one that is not starts the next record
        # (xe.exe on Windows prints no blank lines between records).
        if current is None or not m.group("indent"):
            current = {}
            records.append(current)
        if key in current:
            raise ParseError(f"field {key!r} twice in one record", source, lineno)
        current[key] = (m.group("value") or "").strip()
    return records


def parse_xe_map(value: str, source: str | None = None) -> dict[str, str]:
    """A map field's value (``cpu_count: 16; vendor: GenuineIntel``) as a dict.

    xe escapes nothing: a key may hold ``:`` (``xs:main``), so each entry splits at its first
    ``": "``; an entry without one belongs to the previous value (which held ``"; "``). Best
    effort by nature: read one key exactly with ``param-get ... param-key=``. Empty is ``{}``;
    text that starts with no key raises ParseError.
    """
    if not isinstance(value, str):
        raise ParseError(f"expected text, got {type(value).__name__}", source)
    value = value.strip()
    out: dict[str, str] = {}
    last: str | None = None
    if not value:
        return out
    for item in value.split("; "):
        key, sep, val = item.partition(": ")
        if not sep and item.endswith(":") and item[:-1].strip():
            key, sep, val = item[:-1], ":", ""
        if not sep or not key.strip() or "\n" in key:
            if last is None:
                raise ParseError(f"not an xe map: {value[:80]!r}", source)
            out[last] += "; " + item
            continue
        key = key.strip()
        if key in out:
            # The same key twice: the second was part of a value that held "; k: ".
            assert last is not None
            out[last] += "; " + item
            continue
        out[key] = val.strip()
        last = key
    return out


def parse_xe_minimal(text: str, source: str | None = None) -> list[str]:
    """``--minimal`` output: the values joined by ``,`` with ``\\,`` and ``\\\\`` escaped."""
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}", source)
    line = normalize_text(text, source).strip("\n")
    if "\n" in line:
        raise ParseError("--minimal output is one line", source)
    if not line:
        return []
    out, buf, escaped = [], [], False
    for ch in line:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if escaped:
        raise ParseError("--minimal output ends in a lone backslash", source)
    out.append("".join(buf))
    return out


@dataclass(frozen=True)
class XeError(RecordMixin):
    """What an ``xe`` call's output and exit status say: success, or which error and why."""

    ok: bool
    code: str | None
    params: dict[str, str] = field(default_factory=dict)
    message: str = ""
    exit_code: int = 0


# The doc sentence of each API error a vm-start (or a read) may meet, as xapi >= 1.178 prints
# it; _key() folds the older wording (XCP-ng 8.0: "host", no full stop, double spaces) onto it.
SENTENCES: dict[str, str] = {
    "HOST_NOT_ENOUGH_FREE_MEMORY": "Not enough server memory is available to perform this "
    "operation.",
    "VM_BAD_POWER_STATE": "You attempted an operation on a VM that was not in an appropriate "
    "power state at the time; for example, you attempted to start a VM that was already "
    "running. The parameters returned are the VM's handle, and the expected and actual VM "
    "state at the time of the call.",
    "NO_HOSTS_AVAILABLE": "There were no servers available to complete the specified operation.",
    "VM_REQUIRES_SR": "You attempted to run a VM on a host which doesn't have access to an SR "
    "needed by the VM. The VM has at least one VBD attached to a VDI in the SR.",
    "VM_REQUIRES_NET": "You attempted to run a VM on a host which doesn't have a PIF on a "
    "Network needed by the VM. The VM has at least one VIF attached to the Network.",
    "HOST_OFFLINE": "You attempted an operation which involves a host which could not be "
    "contacted.",
    "HOST_NOT_LIVE": "This operation cannot be completed as the server is not live.",
    "HOST_DISABLED": "The specified server is disabled.",
    "CANNOT_CONTACT_HOST": "Cannot forward messages because the server cannot be contacted. "
    "The server may be switched off or there may be network connectivity problems.",
    "VM_HOST_INCOMPATIBLE_VERSION": "This VM operation cannot be performed on an "
    "older-versioned host during an upgrade.",
    "NOT_SUPPORTED_DURING_UPGRADE": "This operation is not supported during an upgrade.",
    "OTHER_OPERATION_IN_PROGRESS": "Another operation involving the object is currently in "
    "progress",
    "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN": "This operation cannot be performed because it "
    "would invalidate VM failover planning such that the system would be unable to guarantee "
    "to restart protected VMs after a Host failure.",
    "HOST_NOT_ENOUGH_PCPUS": "The host does not have enough pCPUs to run the VM. It needs at "
    "least as many as the VM has vCPUs.",
    "SR_BACKEND_FAILURE": "There was an SR backend failure.",
    "INTERNAL_ERROR": "The server failed to handle your request, due to an internal error. "
    "The given message may give details useful for debugging the problem.",
}


def _key(sentence: str) -> str:
    """A doc sentence folded so both wordings meet: case, spacing, host/server, final stop."""
    words = re.sub(r"\s+", " ", sentence.strip().lower()).rstrip(".").strip()
    return re.sub(r"\bservers?\b", lambda m: m.group(0).replace("server", "host"), words)


_BY_SENTENCE = {_key(text): code for code, text in SENTENCES.items()}
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_ -]{0,63}): ?(?P<value>.*)$")
_MULTIPLE = re.compile(r"^operation failed on (?P<uuid>[0-9a-f-]{36}): (?P<rest>.*)$")
_UNKNOWN_CODE = re.compile(r"^(?P<code>[A-Z][A-Z0-9_]+): \[ ?(?P<params>.*?) ?\]$")
# Lines of the stdout table vm-start prints before NO_HOSTS_AVAILABLE.
_TABLE_HEAD = (
    "There are no suitable hosts to start this VM on.",
    "The following table provides per-host reasons for why the VM could not be started:",
)


def parse_xe_error(text: str, exit_code: int, source: str | None = None) -> XeError:
    """Read an ``xe`` call's output (stdout and stderr merged) and exit status.

    ``ok`` when xe exited 0. Otherwise ``code`` is the API error's name, recovered from its doc
    sentence in either wording or from ``Error code:``; None for a CLI-side failure
    (``Error: ...``, a usage error, no connection to xapi). ``params`` maps each parameter's
    name to its value as printed (``needed``, ``available``, ``actual``...; an ``Error
    parameters:`` line is kept whole under ``parameters``; NO_HOSTS_AVAILABLE's per-host table
    adds one entry per host name-label). ``message`` is one line for people.
    """
    if isinstance(exit_code, bool) or not isinstance(exit_code, int):
        raise ParseError(f"exit code must be an integer, got {exit_code!r}", source)
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}", source)
    lines = [ln.rstrip() for ln in normalize_text(text, source).split("\n")]
    lines = [ln for ln in lines if not ln.startswith("Message: time=")]
    body = [ln for ln in lines if ln.strip()]
    if exit_code == 0:
        return XeError(True, None, {}, body[0].strip() if body else "", 0)
    if not body:
        return XeError(False, None, {}, f"xe exited {exit_code} with no output", exit_code)
    params: dict[str, str] = {}
    # Error code: CODE / Error parameters: a, b, c (a code the datamodel does not know).
    for i, line in enumerate(body):
        if line.startswith("Error code: "):
            code = line[len("Error code: ") :].strip() or None
            raw = ""
            if i + 1 < len(body) and body[i + 1].startswith("Error parameters:"):
                raw = body[i + 1][len("Error parameters:") :].strip()
                params["parameters"] = raw
            # SM errors print three params ["", msg, ""]: the commas around msg are no part of it.
            detail = re.sub(r"^(?:\s*,)+|(?:\s*,)+$", "", raw).strip()
            message = f"{code}: {detail}" if detail else (code or "error")
            return XeError(False, code, params, message, exit_code)
    # The per-host table vm-start prints before NO_HOSTS_AVAILABLE: a record with no
    # annotations, one host name-label per key.
    table = [ln for ln in body if ln not in _TABLE_HEAD]
    # A doc sentence, then one "name: value" line per parameter (a multi-line value continues).
    for i, line in enumerate(table):
        m = _MULTIPLE.match(line)
        sentence = m.group("rest") if m else line
        code = _BY_SENTENCE.get(_key(sentence))
        if code is None and m is not None:
            unknown = _UNKNOWN_CODE.match(sentence)
            code = unknown.group("code") if unknown else None
            if unknown:
                params["parameters"] = unknown.group("params")
        if code is None:
            continue
        if code == "NO_HOSTS_AVAILABLE":
            for before in table[:i]:
                host, sep, why = before.strip().partition(": ")
                if sep and host.strip():
                    params.setdefault(host.strip(), why.strip())
        last: str | None = None
        for after in table[i + 1 :]:
            if _MULTIPLE.match(after):
                break
            p = _PARAM.match(after)
            if p and not after[:1].isspace():
                last = p.group("name")
                params[last] = p.group("value").strip()
            elif last is not None:
                params[last] += "\n" + after
        detail = "; ".join(
            f"{k}: {v.splitlines()[0] if v else v}" for k, v in params.items() if k != "parameters"
        )
        message = code + (f" ({detail})" if detail else "")
        return XeError(False, code, params, message, exit_code)
    first = body[0].strip()
    if first.startswith("Error: "):
        first = first[len("Error: ") :]
    return XeError(False, None, {}, first, exit_code)
