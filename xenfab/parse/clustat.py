"""Parser for rgmanager's ``clustat`` (text, ``-l`` long form, and ``-x`` XML)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from xenfab.parse._util import dec_int, normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import Clustat, Member, Service

# rgmanager's state numbers (`clustat -x` state=, `clustat -s` exit status).
STATE_NAMES = {
    110: "stopped",
    111: "starting",
    112: "started",
    113: "stopping",
    114: "failed",
    115: "uninitialized",
    116: "checking",
    117: "recoverable",
    118: "recovering",
    119: "disabled",
    120: "migrating",
}
# For these states clustat shows the *last* owner, in parentheses.
_LAST_OWNER_STATES = frozenset({"stopped", "disabled", "recoverable", "failed"})
_NO_OWNER = frozenset({"none", "(none)", "unknown", "(unknown)", "(null)", ""})

_QUORUM_RE = re.compile(r"^\s*Member Status:\s*(?P<q>\w+)", re.IGNORECASE)
_DASHES_RE = re.compile(r"^\s*-+(?:\s+-+)*\s*$")
_NODE_ID_RE = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]+")
_STATE_WORD_RE = re.compile(r"[A-Za-z_-]+")
_LONG_NAME_RE = re.compile(r"^Service Name\s*:")
_LONG_RE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s?(?P<value>.*)$")


def _owner(text: str | None) -> str | None:
    """An owner/last-owner value, None for rgmanager's 'none'/'unknown' placeholders."""
    if text is None:
        return None
    text = text.strip()
    if text.lower() in _NO_OWNER:
        return None
    return text


def _node_id(token: str | None) -> int | None:
    if not token or len(token) > 20 or not _NODE_ID_RE.fullmatch(token):
        return None
    return int(token, 16) if token[:2] in ("0x", "0X") else int(token)


def _state_word(text: str) -> str:
    """The plain state word: 'started[Z]' / 'started [P]' / 'started (112)' -> 'started'."""
    m = _STATE_WORD_RE.match(text.strip())
    return m.group().lower() if m else ""


# ---------------------------------------------------------------------------
# XML
# ---------------------------------------------------------------------------


def _flag(el: ET.Element, attr: str) -> bool:
    return el.get(attr, "0").strip() not in ("0", "", "false", "no")


def _parse_xml(text: str, source: str | None) -> Clustat:
    body = text.strip()
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        # Trailing noise (stderr merged into stdout) after the document is tolerated.
        end = body.rfind("</clustat>")
        if end < 0:
            line = exc.position[0] if getattr(exc, "position", None) else None
            raise ParseError(f"invalid clustat XML: {exc}", source, line) from None
        try:
            root = ET.fromstring(body[: end + len("</clustat>")])
        except ET.ParseError as exc2:
            raise ParseError(f"invalid clustat XML: {exc2}", source, exc2.position[0]) from None
    if root.tag != "clustat":
        found = root.find(".//clustat")
        if found is None:
            raise ParseError(f"XML root is <{root.tag}>, not <clustat>", source)
        root = found

    quorate: bool | None = None
    quorum = root.find("quorum")
    if quorum is not None and quorum.get("quorate") is not None:
        quorate = _flag(quorum, "quorate")

    members: list[Member] = []
    for node in root.iter("node"):
        name = (node.get("name") or "").strip()
        if not name or _flag(node, "qdisk"):
            continue
        members.append(
            Member(
                name=name,
                online=_flag(node, "state"),
                local=_flag(node, "local"),
                node_id=_node_id((node.get("nodeid") or "").strip()),
            )
        )

    groups = root.find("groups")
    services: dict[str, Service] = {}
    for group in root.iter("group"):
        name = (group.get("name") or "").strip()
        if not name:
            continue
        state = _state_word(group.get("state_str") or "")
        if not state:
            number = dec_int((group.get("state") or "").strip())
            state = STATE_NAMES.get(number, "") if number is not None else ""
        owner = _owner(group.get("owner"))
        last_owner = _owner(group.get("last_owner"))
        if state in _LAST_OWNER_STATES:
            # rgmanager may leave rs_owner set after a stop; it is history, not a host.
            last_owner = last_owner or owner
            owner = None
        services[name] = Service(state=state, owner=owner, last_owner=last_owner)
    return Clustat(
        quorate=quorate,
        members=members,
        services=services,
        rgmanager_running=groups is not None or bool(services),
    )


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def _is_member_header(tokens: list[str]) -> bool:
    return len(tokens) >= 3 and tokens[0] == "Member" and tokens[1] == "Name"


def _is_service_header(line: str) -> bool:
    s = line.strip()
    return ("Owner" in s or "State" in s) and (
        s.startswith("Service Name") or s.startswith("Resource Group") or s.startswith("Group Name")
    )


def _member_row(line: str, with_id: bool) -> Member | None:
    tokens = line.split()
    if not tokens:
        return None
    name, rest = tokens[0], tokens[1:]
    node_id = None
    if with_id:
        # The ID is the first all-digit (or 0x) token after the name; it may sit left or right
        # of the status words (RHCS 4 prints "State ID").
        for i, tok in enumerate(rest):
            nid = _node_id(tok)
            if nid is not None:
                node_id = nid
                rest = rest[:i] + rest[i + 1 :]
                break
    status = " ".join(rest)
    words = {w.strip().lower() for w in status.split(",")}
    if "quorum disk" in words:
        return None
    online = "online" in words
    return Member(name=name, online=online, local="local" in words, node_id=node_id)


def _service_row(line: str) -> tuple[str, Service] | None:
    tokens = line.split()
    if not tokens:
        return None
    name = tokens[0]
    owner_tok: str | None = None
    state = ""
    if len(tokens) >= 3:
        owner_tok, state = tokens[1], _state_word(tokens[2])
    elif len(tokens) == 2:
        # Only one of Owner/State survived (clustat-02 lost its State column).
        tok = tokens[1]
        if tok.startswith("(") or _state_word(tok) not in STATE_NAMES.values():
            owner_tok = tok
        else:
            state = _state_word(tok)
    owner = last_owner = None
    if owner_tok is not None:
        if owner_tok.startswith("("):
            # A cut-off column may have lost the closing parenthesis.
            last_owner = _owner(owner_tok[1:].removesuffix(")"))
        elif state in _LAST_OWNER_STATES:
            last_owner = _owner(owner_tok)
        else:
            owner = _owner(owner_tok)
    return name, Service(state=state, owner=owner, last_owner=last_owner)


def _parse_text(text: str, source: str | None) -> Clustat:
    quorate: bool | None = None
    members: list[Member] = []
    services: dict[str, Service] = {}
    rg_not_running = False
    recognised = False
    section: str | None = None  # "members", "services" or "long"
    member_with_id = True
    long_name: str | None = None
    long_fields: dict[str, str] = {}
    any_rg_flag = False
    service_table = False

    def flush_long() -> None:
        nonlocal long_name, long_fields
        if long_name:
            state = _state_word(long_fields.get("current state", ""))
            owner = _owner(long_fields.get("owner"))
            last = _owner(long_fields.get("last owner"))
            if state in _LAST_OWNER_STATES:
                last, owner = last or owner, None
            services[long_name] = Service(state=state, owner=owner, last_owner=last)
        long_name, long_fields = None, {}

    for line in text.split("\n"):
        stripped = line.strip()
        tokens = stripped.split()
        m = _QUORUM_RE.match(line)
        if m:
            recognised = True
            q = m.group("q").lower()
            quorate = True if q == "quorate" else False if q == "inquorate" else None
            section = None
            continue
        if stripped.startswith("Cluster Status for"):
            # `clustat -i N` repeats the whole screen: only the last one counts.
            flush_long()
            recognised = True
            members, services = [], {}
            quorate, rg_not_running, any_rg_flag, service_table = None, False, False, False
            section = None
            continue
        if "Resource Group Manager not running" in stripped:
            recognised = True
            rg_not_running = True
            section = None
            continue
        if _is_member_header(tokens):
            recognised = True
            section = "members"
            members = []
            # RHEL 5 prints only "Member Name  Status": no ID column.
            member_with_id = "ID" in tokens
            continue
        if _is_service_header(line) and not _LONG_NAME_RE.match(stripped):
            recognised = True
            service_table = True
            section = "services"
            services = {}
            continue
        if stripped.startswith("Service Information"):
            flush_long()
            recognised = True
            section = "long"
            services = {}
            continue
        if _LONG_NAME_RE.match(stripped):
            # `clustat -l`: one "Service Name : X" block per service.
            flush_long()
            recognised = True
            section = "long"
            long_name = stripped.split(":", 1)[1].strip() or None
            continue
        if not stripped:
            if section in ("members", "services"):
                section = None
            continue
        if _DASHES_RE.match(line):
            continue
        if section == "members":
            member = _member_row(line, member_with_id)
            if member is not None:
                members.append(member)
                if re.search(r"\b(rgmanager|RG-Master|RG-Worker)\b", line):
                    any_rg_flag = True
        elif section == "services":
            row = _service_row(line)
            if row is not None:
                services[row[0]] = row[1]
        elif section == "long" and long_name is not None:
            lm = _LONG_RE.match(line)
            if lm:
                long_fields[lm.group("key").strip().lower()] = lm.group("value").strip()
    flush_long()

    if not recognised:
        first = next((ln.strip() for ln in text.split("\n") if ln.strip()), "")
        raise ParseError(f"not clustat output: {first[:120]!r}", source)
    rgmanager_running = not rg_not_running and (service_table or bool(services) or any_rg_flag)
    return Clustat(
        quorate=quorate, members=members, services=services, rgmanager_running=rgmanager_running
    )


def parse_clustat(text: str, source: str | None = None) -> Clustat:
    """Parse ``clustat`` text (RHEL 6/5, RHCS 4, ``-l``) or ``clustat -x`` XML."""
    text = normalize_text(text, source)
    if text.lstrip().startswith("<"):
        return _parse_xml(text, source)
    return _parse_text(text, source)
