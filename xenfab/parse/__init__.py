"""Pure parsers for what the Xen toolstacks, rgmanager, cman/fenced and xe print (stdlib only).

Every parser takes the command's text (str) and a keyword ``source`` naming where it came
from (host, command or file), returns frozen records that also read like mappings, and
raises only :class:`ParseError` on input it cannot trust.
"""

from xenfab.parse.clustat import parse_clustat
from xenfab.parse.clusvcadm import parse_clusvcadm
from xenfab.parse.errors import ParseError
from xenfab.parse.fencing import (
    fencing_verdicts,
    parse_cman_nodes,
    parse_fence_tool_ls,
    parse_group_tool_ls,
)
from xenfab.parse.guestcfg import parse_guest_config
from xenfab.parse.records import (
    Clustat,
    ClusvcadmResult,
    CmanNode,
    FenceDomain,
    FenceNode,
    FenceVerdict,
    GroupdGroup,
    GuestConfig,
    HostInfo,
    ListedDomain,
    Member,
    RecordMixin,
    Service,
    Xentop,
    XentopDomain,
)
from xenfab.parse.xe import (
    XeError,
    parse_xe_error,
    parse_xe_map,
    parse_xe_minimal,
    parse_xe_records,
)
from xenfab.parse.xentop import parse_xentop
from xenfab.parse.xlinfo import parse_xl_info
from xenfab.parse.xllist import domain_flags, parse_xl_list

__all__ = [
    "Clustat",
    "ClusvcadmResult",
    "CmanNode",
    "FenceDomain",
    "FenceNode",
    "FenceVerdict",
    "GroupdGroup",
    "GuestConfig",
    "HostInfo",
    "ListedDomain",
    "Member",
    "ParseError",
    "RecordMixin",
    "Service",
    "XeError",
    "Xentop",
    "XentopDomain",
    "domain_flags",
    "fencing_verdicts",
    "parse_clustat",
    "parse_clusvcadm",
    "parse_cman_nodes",
    "parse_fence_tool_ls",
    "parse_group_tool_ls",
    "parse_guest_config",
    "parse_xe_error",
    "parse_xe_map",
    "parse_xe_minimal",
    "parse_xe_records",
    "parse_xentop",
    "parse_xl_info",
    "parse_xl_list",
]
