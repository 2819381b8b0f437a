"""Parsers for the fence state RHEL 5/6 Cluster Suite keeps, and the verdict drawn from it.

``cman_tool nodes`` (both generations; RHEL 5's ``-f`` adds each node's last fencing),
``fence_tool ls [-n]`` (RHEL 6 fenced: the fence domain, its victims, each node's last fencing)
and ``group_tool ls`` (RHEL 5 groupd: the fence group's recovery state). ``fencing_verdicts``
says, per member that left the cluster, whether the cluster's own record proves it fenced since
it left; anything else (fencing pending, failed, never tried, unreadable) is no proof.
docs/fencing.md has the grammars, their sources and the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from xenfab.parse._util import dec_int, normalize_text
from xenfab.parse.errors import ParseError
from xenfab.parse.records import CmanNode, FenceDomain, FenceNode, FenceVerdict, GroupdGroup

# --- cman_tool nodes --------------------------------------------------------------------------

_CMAN_HEADER = re.compile(r"^Node\s+Sts\s+Inc\s+Joined\s+Name\s*$")
# "%4u   %c  %5d   %s  %s": Joined is 19 blanks for a node that is not a member.
_CMAN_ROW = re.compile(
    r"^\s*(?P<id>[0-9]+)\s+(?P<sts>\S)\s+(?P<inc>[0-9]+)\s+"
    r"(?:(?P<joined>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})\s+)?"
    r"(?P<name>\S+)\s*$"
)
_CMAN_ADDR = re.compile(r"^\s+Addresses:(?P<addrs>.*)$")
_CMAN_FENCED = re.compile(r"^\s+Last fenced:\s+(?P<when>\S.*?)\s+by\s+(?P<by>\S.*?)\s*$")
_CMAN_UNFENCED = re.compile(r"^\s+Node has not been fenced since it went down\s*$")
_CMAN_NOTE = re.compile(
    r"^(NOTE: There are [0-9]+ disallowed nodes,|\s+members list may seem inconsistent across "
    r"the cluster)\s*$"
)
_STATUS_LETTERS = frozenset("MXd?")


def parse_cman_nodes(text: str, source: str | None = None) -> list[CmanNode]:
    """Parse ``cman_tool nodes`` (``-a`` and RHEL 5 ``-f`` continuation lines included)."""
    text = normalize_text(text, source)
    lines = text.split("\n")
    nodes: list[dict] = []
    header = False
    for n, line in enumerate(lines, 1):
        if not line.strip() or _CMAN_NOTE.match(line):
            continue
        if _CMAN_HEADER.match(line):
            if header:
                raise ParseError("a second cman_tool nodes table", source, n)
            header = True
            continue
        if not header:
            first = line.strip()[:120]
            raise ParseError(f"not cman_tool nodes output: {first!r}", source, n)
        row = _CMAN_ROW.match(line)
        if row:
            node_id, inc = dec_int(row["id"]), dec_int(row["inc"])
            if node_id is None or inc is None:
                raise ParseError(f"number out of range in {line.strip()!r}", source, n)
            if row["sts"] not in _STATUS_LETTERS:
                raise ParseError(f"unknown node status {row['sts']!r}", source, n)
            if any(d["node_id"] == node_id for d in nodes):
                raise ParseError(f"node id {node_id} listed twice", source, n)
            nodes.append(
                {
                    "node_id": node_id,
                    "status": row["sts"],
                    "incarnation": inc,
                    "name": row["name"],
                    "joined": row["joined"],
                    "addresses": [],
                    "last_fenced": None,
                    "last_fenced_by": None,
                    "unfenced_since_down": False,
                }
            )
            continue
        # Continuation lines belong to the row above them.
        cont = _CMAN_ADDR.match(line), _CMAN_FENCED.match(line), _CMAN_UNFENCED.match(line)
        if not any(cont) or not nodes:
            raise ParseError(f"not a cman_tool nodes row: {line.strip()[:120]!r}", source, n)
        addr, fenced, unfenced = cont
        last = nodes[-1]
        if addr:
            last["addresses"] = addr["addrs"].split()
        elif fenced:
            last["last_fenced"], last["last_fenced_by"] = fenced["when"], fenced["by"]
        elif unfenced:
            last["unfenced_since_down"] = True
    if not header:
        raise ParseError("not cman_tool nodes output: no header", source)
    return [CmanNode(**d) for d in nodes]


# --- fence_tool ls ----------------------------------------------------------------------------

_FENCE_KEYS = {
    "member count": "member_count",
    "victim count": "victim_count",
    "victim now": "victim_now",
    "master nodeid": "master_nodeid",
    "wait state": "wait_state",
    "members": "members",
}
_FENCE_KEY = re.compile(
    r"^(?P<key>member count|victim count|victim now|master nodeid|wait state|members)"
    r"(?:\s+(?P<value>.*?))?\s*$"
)
_FENCE_NODE = re.compile(
    r"^nodeid (?P<id>[0-9]+) member (?P<member>-?[0-9]+) victim (?P<victim>[01]) "
    r"last fence master (?P<master>[0-9]+) how (?P<how>[a-z]+)\s*$"
)
_WAIT_STATES = frozenset({"none", "quorum", "messages", "fencing", "unknown"})
_HOWS = frozenset({"none", "agent", "member", "override", "external", "unknown"})


def _ids(value: str, source: str | None, n: int) -> list[int]:
    ids = [dec_int(tok) for tok in value.split()]
    if any(i is None for i in ids):
        raise ParseError(f"not a list of node ids: {value[:120]!r}", source, n)
    return [i for i in ids if i is not None]


def parse_fence_tool_ls(text: str, source: str | None = None) -> FenceDomain:
    """Parse RHEL 6 ``fence_tool ls`` or ``fence_tool ls -n`` (with its "all nodes" rows)."""
    text = normalize_text(text, source)
    fields: dict[str, object] = {}
    nodes: list[FenceNode] | None = None
    seen_header = False
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not seen_header:
            if stripped != "fence domain":
                raise ParseError(f"not fence_tool ls output: {stripped[:120]!r}", source, n)
            seen_header = True
            continue
        if stripped == "error":
            raise ParseError("fence_tool could not query fenced (error)", source, n)
        if nodes is None:
            if stripped == "all nodes":
                nodes = []
                continue
            m = _FENCE_KEY.match(stripped)
            if not m:
                raise ParseError(f"not a fence_tool ls line: {stripped[:120]!r}", source, n)
            key, value = _FENCE_KEYS[m["key"]], m["value"] or ""
            if key in fields:
                raise ParseError(f"{m['key']} given twice", source, n)
            if key == "members":
                fields[key] = _ids(value, source, n)
            elif key == "wait_state":
                if value not in _WAIT_STATES:
                    raise ParseError(f"unknown wait state {value[:40]!r}", source, n)
                fields[key] = value
            else:
                number = dec_int(value)
                if number is None:
                    raise ParseError(f"{m['key']}: not a number: {value[:40]!r}", source, n)
                fields[key] = number
            continue
        row = _FENCE_NODE.match(stripped)
        if not row or row["how"] not in _HOWS:
            raise ParseError(f"not a fence_tool ls -n node row: {stripped[:120]!r}", source, n)
        node_id, master = dec_int(row["id"]), dec_int(row["master"])
        member = dec_int(row["member"].lstrip("-"))
        if node_id is None or master is None or member is None or member > 1:
            raise ParseError(f"number out of range in {stripped[:120]!r}", source, n)
        if any(x.node_id == node_id for x in nodes):
            raise ParseError(f"node id {node_id} listed twice", source, n)
        member = -member if row["member"].startswith("-") else member
        nodes.append(FenceNode(node_id, member, row["victim"] == "1", master, row["how"]))
    if not seen_header:
        raise ParseError("not fence_tool ls output: empty", source)
    missing = [k for k, v in _FENCE_KEYS.items() if v not in fields]
    if missing:
        raise ParseError(f"fence_tool ls without {', '.join(missing)}", source)
    return FenceDomain(nodes=nodes, **fields)  # type: ignore[arg-type]


# --- group_tool ls (RHEL 5) -------------------------------------------------------------------

_GROUP_HEADER = re.compile(r"^type\s+level\s+name\s+id\s+state(?:\s+node\s+id\s+local_done)?\s*$")
_GROUP_ROW = re.compile(
    r"^(?P<type>\S+)\s+(?P<level>[0-9]+)\s+(?P<name>\S+)\s+(?P<id>[0-9a-fA-F]{8})\s+"
    r"(?P<state>\S+)(?:\s+.*)?$"
)
_GROUP_MEMBERS = re.compile(r"^\[(?P<ids>[0-9 ]*)\]\s*$")


def parse_group_tool_ls(text: str, source: str | None = None) -> list[GroupdGroup]:
    """Parse RHEL 5 ``group_tool ls`` / ``cman_tool services`` (also the ``-v`` header)."""
    text = normalize_text(text, source)
    groups: list[dict] = []
    header = False
    expect_members = False
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if _GROUP_HEADER.match(stripped):
            if header:
                raise ParseError("a second group_tool table", source, n)
            header = True
            continue
        if not header:
            raise ParseError(f"not group_tool ls output: {stripped[:120]!r}", source, n)
        members = _GROUP_MEMBERS.match(stripped)
        if members:
            if not expect_members:
                raise ParseError("a member list without its group", source, n)
            groups[-1]["members"] = _ids(members["ids"], source, n)
            expect_members = False
            continue
        row = _GROUP_ROW.match(stripped)
        if not row:
            raise ParseError(f"not a group_tool ls row: {stripped[:120]!r}", source, n)
        level = dec_int(row["level"])
        if level is None:
            raise ParseError(f"level out of range in {stripped[:120]!r}", source, n)
        groups.append(
            {
                "type": row["type"],
                "level": level,
                "name": row["name"],
                "id": row["id"].lower(),
                "state": row["state"],
                "members": [],
            }
        )
        expect_members = True
    if not header:
        raise ParseError("not group_tool ls output: no header", source)
    return [GroupdGroup(**g) for g in groups]


# --- the verdict ------------------------------------------------------------------------------

# fenced's ways a victim was finished that mean the node was really cut off; ``member`` (it came
# back before it was fenced) and ``none`` do not.
PROVEN_HOWS = frozenset({"agent", "override", "external"})


def _by_name(name: str, nodes: Iterable[CmanNode]) -> CmanNode | None:
    nodes = list(nodes)
    found = next((x for x in nodes if x.name == name), None)
    if found is None:
        short = name.split(".", 1)[0]
        same = [x for x in nodes if x.name.split(".", 1)[0] == short]
        found = same[0] if len(same) == 1 else None
    return found


def _rhel6(node_id: int | None, domain: FenceDomain) -> FenceVerdict:
    if node_id is None:
        return FenceVerdict(False, "no node id to match fence_tool's record")
    if domain.victim_now == node_id:
        return FenceVerdict(False, "fencing in progress (fence_tool: victim now)")
    if domain.nodes is None:
        return FenceVerdict(False, "fence_tool ls without -n: no per-node record")
    node = next((x for x in domain.nodes if x.node_id == node_id), None)
    if node is None:
        return FenceVerdict(False, "fenced has no record of it")
    if node.victim:
        return FenceVerdict(False, "fencing pending or failing (fence_tool: victim 1)")
    if node.member == 1:
        return FenceVerdict(False, "still a fence domain member (fence_tool: member 1)")
    if node.how not in PROVEN_HOWS:
        return FenceVerdict(False, f"not fenced (fence_tool: how {node.how})")
    # A failed member stays a victim on every member until the fence master's victim_done:
    # left and not a victim, with a real fencing recorded, is fenced after it left.
    return FenceVerdict(True, f"fenced (fence_tool: how {node.how})")


def _rhel5(name: str, nodes: list[CmanNode], groups: list[GroupdGroup] | None) -> FenceVerdict:
    node = _by_name(name, nodes)
    if node is None:
        return FenceVerdict(False, "not in cman_tool nodes")
    if node.status != "X":
        return FenceVerdict(False, f"cman_tool nodes status {node.status}, not X")
    if node.unfenced_since_down:
        return FenceVerdict(False, "cman: not fenced since it went down")
    if node.incarnation == 0:
        return FenceVerdict(False, "cman has not seen it as a member: no fence record")
    if node.last_fenced is None:
        return FenceVerdict(False, "cman has no fence record (cman_tool nodes -f)")
    fence = [g for g in groups or () if g.type == "fence"]
    busy = [g for g in fence if g.state != "none"]
    if busy:
        # A multi-device method sets cman's flag after its first device: wait for the group.
        return FenceVerdict(False, f"fence group {busy[0].name} in {busy[0].state}")
    when = f"{node.last_fenced} by {node.last_fenced_by}"
    return FenceVerdict(True, f"fenced (cman: last fenced {when})")


def fencing_verdicts(
    gone: Mapping[str, int | None],
    *,
    domain: FenceDomain | None = None,
    cman_nodes: list[CmanNode] | None = None,
    groups: list[GroupdGroup] | None = None,
) -> dict[str, FenceVerdict]:
    """Per member that left (name -> cman node id): fenced after it left, or why not proven.

    RHEL 6: ``domain`` from ``fence_tool ls -n``. RHEL 5: ``cman_nodes`` from
    ``cman_tool nodes -f``, and ``groups`` from ``group_tool ls`` when read.
    """
    verdicts = {}
    for name, node_id in gone.items():
        if domain is not None:
            verdicts[name] = _rhel6(node_id, domain)
        elif cman_nodes is not None:
            verdicts[name] = _rhel5(name, cman_nodes, groups)
        else:
            verdicts[name] = FenceVerdict(False, "the cluster's fence state was not read")
    return verdicts
