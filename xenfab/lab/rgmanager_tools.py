"""The lab's emulated cluster tools: clustat, clusvcadm, cman_tool, fence_tool (RHEL 6, 3.0).

One family of the lab's tools (``xen_tools.py`` has the Xen toolstack, ``emulator.py`` the
dispatcher and the shared state):
a lab brought up with ``backend: rgmanager`` puts these on every host, ``xl`` does not. Its
state is its own: the ``services`` table, derived from the shared state's neutral guests when
the lab is set up (``setup``) and kept in step with them (the emulator's hooks). Like the
emulator it uses the standard library only and never imports the xenfab package.
"""

# The tools are C programs: their printf formats are reproduced with "%" on purpose.
# ruff: noqa: UP031
from __future__ import annotations

import os
import time

try:  # imported as part of xenfab.lab
    from .emulator import (
        DOWN_CLEAN,
        DOWN_CRASHED,
        Ctx,
        _getopt,
        fire_armed,
        guest_down,
        guest_record,
        guest_up,
        host_free_mib,
        meta,
        record_start,
        write_transaction,
    )
    from .xen_tools import hand_start, read_cfg
except ImportError:  # run by path, next to emulator.py
    from emulator import (  # type: ignore[no-redef]
        DOWN_CLEAN,
        DOWN_CRASHED,
        Ctx,
        _getopt,
        fire_armed,
        guest_down,
        guest_record,
        guest_up,
        host_free_mib,
        meta,
        record_start,
        write_transaction,
    )
    from xen_tools import hand_start, read_cfg  # type: ignore[no-redef]


RUNNING_STATES = ("starting", "started", "stopping", "checking", "migrating", "recovering")
# The rgmanager backend's down states (xenfab.cluster.rgmanager): the lab's status counts them.
DOWN_STATES = ("disabled", "failed", "stopped", "recoverable")
SERVICE_PREFIX = "vm:"


# --------------------------------------------------------------------------- the services
# rgmanager's own state: one service per guest, in its words. ``cfg`` is the guest's config
# file, as cluster.conf's <vm path=...> names it.
SCHEMA = """
CREATE TABLE IF NOT EXISTS services(
    name TEXT PRIMARY KEY, state TEXT NOT NULL, owner TEXT, last_owner TEXT,
    transition REAL NOT NULL DEFAULT 0, restarts INTEGER NOT NULL DEFAULT 0, cfg TEXT NOT NULL)
"""
# How a guest went down (the shared state's neutral words) -> the state its service is left in:
# stopped by hand is disabled; a guest whose host failed is failed, as rgmanager leaves a service
# it could not recover.
DOWN_STATE = {DOWN_CLEAN: "disabled", DOWN_CRASHED: "failed"}


def effective_state(state: str, transition: float, boot_s: float, now: float) -> str:
    """A ``starting`` service reads ``started`` once boot_s seconds have passed (no daemon)."""
    if state == "starting" and now >= transition + boot_s:
        return "started"
    return state


def services(db, now: float | None = None) -> list[dict]:
    """All services, sorted by name, with the lazily computed state."""
    now = time.time() if now is None else now
    boot_s = float(meta(db, "boot_s", "2"))
    out = []
    for r in db.execute("SELECT * FROM services ORDER BY name"):
        d = dict(r)
        d["state"] = effective_state(r["state"], r["transition"], boot_s, now)
        if r["state"] == "starting" and d["state"] == "started":
            d["transition"] = r["transition"] + boot_s
        out.append(d)
    return out


def _guest_of(svc: str) -> str:
    return svc[len(SERVICE_PREFIX) :] if svc.startswith(SERVICE_PREFIX) else svc


def _has_services(db) -> bool:
    # A lab set up without this family has no services table: nothing to keep in step.
    return bool(db.execute("SELECT 1 FROM sqlite_master WHERE name = 'services'").fetchone())


def _guest_name(name: str) -> str | None:
    """``vm:web01`` is guest ``web01`` (the emulator's ``guest-name`` hook)."""
    return _guest_of(name) if name.startswith(SERVICE_PREFIX) else None


def _status_services(db, now: float) -> list[dict] | None:
    """The guests as lab.status lists them: this family's services."""
    return services(db, now) if _has_services(db) else None


def _domain_built(db, guest: str, host: str, now: float) -> None:
    # A domain built by hand (xl create) is, in rgmanager's record, the service started there.
    if not _has_services(db):
        return
    db.execute(
        "UPDATE services SET state = 'started', owner = ?, last_owner = ?, transition = ? "
        "WHERE name = ?",
        (host, host, now, SERVICE_PREFIX + guest),
    )


def start_behind(db, lab_dir: str, guest: str, host: str) -> None:
    """The cluster started ``guest`` on ``host`` just now, behind xenfab's back."""
    svc = guest if guest.startswith(SERVICE_PREFIX) else SERVICE_PREFIX + guest
    row = db.execute("SELECT * FROM services WHERE name = ?", (svc,)).fetchone()
    if row is None:
        return
    hand_start(db, lab_dir, _guest_of(svc), host)
    last = row["owner"] if row["state"] in RUNNING_STATES else row["last_owner"]
    now = time.time()
    db.execute(
        "UPDATE services SET state = 'starting', owner = ?, last_owner = ?, transition = ? "
        "WHERE name = ?",
        (host, last, now, svc),
    )
    guest_up(db, _guest_of(svc), host, now)


# rgmanager's state numbers (clustat -x state="...")
STATE_CODES = {
    "stopped": 110,
    "starting": 111,
    "started": 112,
    "stopping": 113,
    "failed": 114,
    "uninitialized": 115,
    "checking": 116,
    "recoverable": 117,
    "recovering": 118,
    "disabled": 119,
    "migrating": 120,
}


# clustat shows the last owner, in parentheses, for these states
LAST_OWNER_STATES = ("stopped", "disabled", "failed", "recoverable")


# rgmanager return codes (negative RG_E* values; the shell sees them modulo 256)
RG_SUCCESS, RG_EFAIL, RG_ENOSERVICE, RG_EQUORUM, RG_ENODE, RG_ERUN = 0, -1, -4, -9, -12, 1


RG_MESSAGES = {
    RG_SUCCESS: "Success",
    RG_EFAIL: "Failure",
    RG_ENOSERVICE: "Service does not exist",
    RG_EQUORUM: "Operation requires quorum",
    RG_ENODE: "Target node dead / nonexistent",
    RG_ERUN: "Service is already running",
}


CLUSTER_NAME = "xenlab"


def _members(ctx: Ctx) -> list:
    return ctx.db.execute("SELECT name, nodeid, up FROM hosts ORDER BY nodeid").fetchall()


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


CLUSTAT_USAGE = """usage: %s <options>
    -i <interval>      Refresh every <interval> seconds.  May not be used
                       with -x.
    -I                 Display local node ID and exit
    -m <member>        Display status of <member> and exit
    -s <service>       Display status of <service> and exit
    -v                 Display version & cluster plugin and exit
    -x                 Dump information as XML
    -Q\t\t\tReturn 0 if quorate, 1 if not (no output)
    -f\t\t\tEnable fast clustat reports
    -l\t\t\tUse long format for services

"""


def tool_clustat(ctx: Ctx, args: list[str]) -> int:
    """clustat: text (80 columns, as when stdout is not a tty), -x, -Q, -s, -m, -l, -v, -I."""
    opts, _operands, error = _getopt(args, "fIls:m:i:xvQh?")
    if error:
        ctx.err("clustat: %s\n" % error)
        ctx.out(CLUSTAT_USAGE % "clustat")
        return 1
    xml = long_ = False
    member = svc = None
    runtype = ""
    for o, v in opts:
        if o in "h?":
            ctx.out(CLUSTAT_USAGE % "clustat")
            return 0
        if o == "x":
            xml = True
        elif o == "l":
            long_ = True
        elif o == "m":
            member = v
        elif o == "s":
            svc = v if ":" in v else "service:" + v
        elif o in "QvI":
            runtype = o
    quorate = meta(ctx.db, "quorate", "1") == "1"
    members = _members(ctx)
    if runtype == "Q":
        return 0 if quorate else 1
    if runtype == "v":
        ctx.out("clustat version 3.0.12.1\nConnected via: CMAN/SAM\n")
        return 0
    if runtype == "I":
        ctx.out("0x%08x\n" % ctx.h["nodeid"])
        return 0
    svcs = services(ctx.db, ctx.now)
    if xml:
        return _clustat_xml(ctx, quorate, members, svcs, member, svc)
    return _clustat_text(ctx, quorate, members, svcs, member, svc, long_)


def _member_flags(ctx: Ctx, m) -> str:
    s = "Online" if m["up"] else "Offline"
    if m["name"] == ctx.host:
        s += ", Local"
    if m["up"]:
        s += ", rgmanager"
    return s


def _svc_ret(state: str) -> int:
    return 0 if state in ("starting", "started", "stopping") else STATE_CODES[state]


def _clustat_text(ctx: Ctx, quorate, members, svcs, member, svc, long_) -> int:
    out = []
    ret = 0
    cols = 80
    nodesize = cols // 2
    if not member and not svc:
        out.append("Cluster Status for %s @ %s\n" % (CLUSTER_NAME, time.ctime(ctx.now)))
        out.append("Member Status: %s\n\n" % ("Quorate" if quorate else "Inquorate"))
    if not svc or (member and svc):
        out.append(
            " %-*.*s" % (nodesize, nodesize, "Member Name") + "%-4.4s %s\n" % ("ID", "Status")
        )
        out.append(
            " %-*.*s" % (nodesize, nodesize, "------ ----") + "%-4.4s %s\n" % ("----", "------")
        )
        found = member is None
        for m in members:
            if member and m["name"] != member:
                continue
            found = True
            out.append(
                " %-*.*s %4d %s\n"
                % (nodesize, nodesize, m["name"], m["nodeid"], _member_flags(ctx, m))
            )
            ret = 0 if m["up"] else 1
        out.append("\n")
        if not found:
            ret = 1
        if member and not svc:
            ctx.out("".join(out))
            return ret
    svcsize = (cols - 20) // 2
    if long_:
        out.append("Service Information\n------- -----------\n\n")
    else:
        out.append(
            " %-*.*s %-*.*s %-14.14s\n"
            % (svcsize, svcsize, "Service Name", svcsize, svcsize, "Owner (Last)", "State")
        )
        out.append(
            " %-*.*s %-*.*s %-14.14s\n"
            % (svcsize, svcsize, "------- ----", svcsize, svcsize, "----- ------", "-----")
        )
    if svc:
        ret = -1
    for s in svcs:
        if svc and s["name"] != svc:
            continue
        owner_name = s["owner"] or "none"
        last_name = s["last_owner"] or "none"
        if long_:
            out.append("Service Name      : %s\n" % s["name"])
            out.append("  Current State   : %s (%d)\n" % (s["state"], STATE_CODES[s["state"]]))
            out.append("  Owner           : %s\n" % owner_name)
            out.append("  Last Owner      : %s\n" % last_name)
            out.append("  Last Transition : %s\n\n" % time.ctime(s["transition"]))
        else:
            if s["state"] in LAST_OWNER_STATES:
                owner = "(%-.*s)" % (svcsize - 2, last_name)
            else:
                owner = "%-.*s" % (svcsize, owner_name)
            out.append(
                " %-*.*s %-*.*s %-14.14s\n"
                % (svcsize, svcsize, s["name"], svcsize, svcsize, owner, s["state"])
            )
        if svc:
            ret = _svc_ret(s["state"])
    ctx.out("".join(out))
    return ret & 0xFF


def _clustat_xml(ctx: Ctx, quorate, members, svcs, member, svc) -> int:
    out = ['<?xml version="1.0"?>\n', '<clustat version="4.1.1">\n']
    if not member and not svc:
        out.append(
            '  <cluster name="%s" id="%d" generation="%d"/>\n'
            % (
                CLUSTER_NAME,
                int(meta(ctx.db, "cluster_id", "4242")),
                int(meta(ctx.db, "generation", "1")),
            )
        )
        # rgmanager prints a newline inside the tag when inquorate
        out.append(
            '  <quorum %s groupmember="%d"/>\n'
            % ('quorate="1"' if quorate else 'quorate="0"\n', 1 if quorate else 0)
        )
    ret1 = ret2 = 0
    if not svc or (member and svc):
        out.append("  <nodes>\n")
        for m in members:
            if member and m["name"] != member:
                continue
            out.append(
                '    <node name="%s" state="%d" local="%d" estranged="0" rgmanager="%d" '
                'rgmanager_master="0" qdisk="0" nodeid="0x%08x"/>\n'
                % (
                    _xml_escape(m["name"]),
                    1 if m["up"] else 0,
                    1 if m["name"] == ctx.host else 0,
                    1 if m["up"] else 0,
                    m["nodeid"],
                )
            )
            if member:
                ret1 = 0 if m["up"] else 1
        out.append("  </nodes>\n")
    if not member or (member and svc):
        out.append("  <groups>\n")
        for s in svcs:
            if svc and s["name"] != svc:
                continue
            t = int(s["transition"])
            out.append(
                '    <group name="%s" state="%d" state_str="%s" flags="0" flags_str="" '
                'owner="%s" last_owner="%s" restarts="%d" last_transition="%d" '
                'last_transition_str="%s"/>\n'
                % (
                    _xml_escape(s["name"]),
                    STATE_CODES[s["state"]],
                    s["state"],
                    _xml_escape(s["owner"] or "none"),
                    _xml_escape(s["last_owner"] or "none"),
                    s["restarts"],
                    t,
                    time.ctime(t),
                )
            )
            if svc:
                ret2 = _svc_ret(s["state"])
        out.append("  </groups>\n")
    out.append("</clustat>\n")
    ctx.out("".join(out))
    if member and ret1:
        return ret1
    return ret2 & 0xFF


CLUSVCADM_USAGE = """usage: %s [command]

Resource Group Control Commands:
  -v                     Display version and exit
  -d <group>             Disable <group>.  This stops a group
                         until an administrator enables it again,
                         the cluster loses and regains quorum, or
                         an administrator-defined event script
                         explicitly enables it again.
  -e <group>             Enable <group>
  -e <group> -F          Enable <group> according to failover
                         domain rules (deprecated; always the
                         case when using central processing)
  -e <group> -m <member> Enable <group> on <member>
  -r <group> -m <member> Relocate <group> [to <member>]
                         Stops a group and starts it on another
                         cluster member.
  -M <group> -m <member> Migrate <group> to <member>
                         (e.g. for live migration of VMs)
  -q                     Quiet operation
  -R <group>             Restart a group in place.
  -s <group>             Stop <group>.  This temporarily stops
                         a group.  After the next group or
                         or cluster member transition, the group
                         will be restarted (if possible).
  -Z <group>             Freeze resource group.  This prevents
                         transitions and status checks, and is
                         useful if an administrator needs to
                         administer part of a service without
                         stopping the whole service.
  -U <group>             Unfreeze (thaw) resource group.  Restores
                         a group to normal operation.
  -c <group>             Convalesce (repair, fix) resource group.
                         Attempts to start failed, non-critical
                         resources within a resource group.
Resource Group Locking (for cluster Shutdown / Debugging):
  -l                     Lock local resource group managers.
                         This prevents resource groups from
                         starting.
  -S                     Show lock state
  -u                     Unlock resource group managers.
                         This allows resource groups to start.
"""


def _closest_node(ctx: Ctx, members, name: str) -> str | None:
    """rgmanager's find_closest_node: the longest common prefix wins; a tie is ambiguous."""
    c = cl = ncl = 0
    for x, m in enumerate(members):
        cur = 0
        mn = m["name"]
        while cur < len(mn) and cur < len(name) and mn[cur] == name[cur]:
            cur += 1
        if not cur:
            continue
        if cur >= cl:
            ncl = cl
            cl = cur
            c = x
    if not cl:
        ctx.out("No matches for '%s' found\n" % name)
        return None
    if ncl == cl:
        ctx.out("More than one possible match for '%s' found\n" % name)
        return None
    ctx.out("Closest match: '%s'\n" % members[c]["name"])
    return members[c]["name"]


def tool_clusvcadm(ctx: Ctx, args: list[str]) -> int:
    """clusvcadm -e SVC [-m MEMBER] and -d SVC: messages and exit codes of rgmanager 3.0."""
    opts, _operands, error = _getopt(args, "lSue:M:d:r:n:m:FvR:s:Z:U:qh?")
    if error:
        ctx.err("clusvcadm: %s\n" % error)
        ctx.out(CLUSVCADM_USAGE % "clusvcadm")
        return 1
    action = svc = node = None
    quiet = False
    for o, v in opts:
        if o == "v":
            ctx.out("3.0.12.1\n")
            return 0
        if o in "h?":
            ctx.out(CLUSVCADM_USAGE % "clusvcadm")
            return 1
        if o in "lSu":
            ctx.out("Resource groups locked\n" if o == "S" else "Done\n")
            return 0
        if o in "eMdrRsZU":
            action, svc = o, v
        elif o in "mn":
            node = v
        elif o == "q":
            quiet = True
    if not svc:
        ctx.out(CLUSVCADM_USAGE % "clusvcadm")
        return 1
    if action == "M" and not node:
        ctx.out("Migration requires a target cluster member\n")
        return 1
    if action not in ("e", "d"):
        # the lab's cluster only knows how to enable and disable
        ctx.out(
            "Trying to %s %s...Invalid operation for resource\n"
            % ({"M": "migrate", "r": "relocate"}.get(action, "act on"), svc)
        )
        return 248
    if quiet:
        ctx.out = lambda text: None  # type: ignore[method-assign]
    if ":" not in svc:
        svc = "service:" + svc
    members = _members(ctx)
    target = None
    if node is not None:
        names = [m["name"] for m in members]
        if node in names:
            target = node
        else:
            ctx.out("'%s' not in membership list\n" % node)
            target = _closest_node(ctx, members, node)
            if target is None:
                return 1
    verb = "trying to enable" if action == "e" else "disabling"
    who = ("Member %s" % target) if target else "Local machine"
    ctx.out("%s %s %s..." % (who, verb, svc))
    ctx.flush()
    if action == "e":
        rc, owner = _enable(ctx, svc, target or ctx.host)
    else:
        rc, owner = _disable(ctx, svc), None
    ctx.out(RG_MESSAGES[rc] + "\n")
    if rc == RG_ERUN:
        return 0
    if rc == RG_SUCCESS and action == "e":
        ctx.out(
            "%s%s is now running on %s\n"
            % ("" if not target or owner == target else "Warning: ", svc, owner)
        )
    return rc & 0xFF


def _enable(ctx: Ctx, svc: str, target: str) -> tuple[int, str | None]:
    with write_transaction(ctx.db):
        return _enable_locked(ctx, svc, target)


def _enable_locked(ctx: Ctx, svc: str, target: str) -> tuple[int, str | None]:
    db = ctx.db
    fire_armed(ctx, _guest_of(svc))
    now = time.time()
    boot_s = float(meta(db, "boot_s", "2"))
    if meta(db, "quorate", "1") != "1":
        return RG_EQUORUM, None
    row = db.execute("SELECT * FROM services WHERE name = ?", (svc,)).fetchone()
    if row is None:
        return RG_ENOSERVICE, None
    host = db.execute("SELECT * FROM hosts WHERE name = ?", (target,)).fetchone()
    if host is None or not host["up"]:
        return RG_ENODE, None
    guest = svc.split(":", 1)[1]
    state = effective_state(row["state"], row["transition"], boot_s, now)
    if state == "failed":
        # rgmanager: "#43: Service vm:x has failed; can not start." -- disable it first
        record_start(ctx.db, guest, target, now, now, False)
        return RG_EFAIL, None
    if state in RUNNING_STATES and row["owner"]:
        owner = db.execute("SELECT up FROM hosts WHERE name = ?", (row["owner"],)).fetchone()
        if owner is not None and owner["up"]:
            return RG_ERUN, None
        # running on a member that is down: rgmanager takes the service over
    fail = False
    cfg = None
    try:
        cfg = read_cfg(os.path.join(ctx.lab_dir, "xenconfig", row["cfg"]))
    except (OSError, ValueError, KeyError):
        fail = True
    record = guest_record(db, guest)
    if not fail and record is not None and record["start_fails"]:
        fail = True
    if not fail and cfg["memory"] > host_free_mib(db, target):
        fail = True
    if (
        not fail
        and db.execute(
            "SELECT 1 FROM domains WHERE host = ? AND name = ?", (target, cfg["name"])
        ).fetchone()
    ):
        # vm.sh's `xl create` fails (libxl: Domain with name "..." already exists): the start
        # failed and its stop could not clear it: rgmanager marks the service failed.
        record_start(ctx.db, guest, target, now, now, False)
        db.execute(
            "UPDATE services SET state = 'failed', owner = NULL, last_owner = ?, transition = ? "
            "WHERE name = ?",
            (target, now, svc),
        )
        return RG_EFAIL, None
    if fail:
        record_start(ctx.db, guest, target, now, now, False)
        db.execute(
            "UPDATE services SET state = 'stopped', owner = NULL, last_owner = ?, transition = ? "
            "WHERE name = ?",
            (target, now, svc),
        )
        guest_down(db, guest, DOWN_CRASHED, target, now)
        return RG_EFAIL, None
    domid = host["next_domid"]
    db.execute("UPDATE hosts SET next_domid = next_domid + 1 WHERE name = ?", (target,))
    db.execute(
        "INSERT INTO domains(name, host, mem_mib, maxmem_mib, vcpus, domid, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (cfg["name"], target, cfg["memory"], cfg["maxmem"], cfg["vcpus"], domid, now),
    )
    last = row["owner"] if row["state"] in RUNNING_STATES else row["last_owner"]
    db.execute(
        "UPDATE services SET state = 'starting', owner = ?, last_owner = ?, transition = ?, "
        "restarts = 0 WHERE name = ?",
        (target, last, now, svc),
    )
    guest_up(db, guest, target, now)
    record_start(ctx.db, guest, target, now, now + boot_s, True)
    return RG_SUCCESS, target


def _disable(ctx: Ctx, svc: str) -> int:
    with write_transaction(ctx.db):
        return _disable_locked(ctx, svc)


def _disable_locked(ctx: Ctx, svc: str) -> int:
    db = ctx.db
    fire_armed(ctx, _guest_of(svc))
    if meta(db, "quorate", "1") != "1":
        return RG_EQUORUM
    row = db.execute("SELECT * FROM services WHERE name = ?", (svc,)).fetchone()
    if row is None:
        return RG_ENOSERVICE
    if row["state"] == "disabled":
        return RG_SUCCESS
    last = row["last_owner"]
    guest = svc.split(":", 1)[1]
    if row["state"] in RUNNING_STATES and row["owner"]:
        last = row["owner"]
        owner_up = db.execute("SELECT up FROM hosts WHERE name = ?", (row["owner"],)).fetchone()
        if owner_up is not None and owner_up["up"]:
            # the owner stops the guest; a guest on a dead member is left alone (fencing's job)
            db.execute("DELETE FROM domains WHERE host = ? AND name = ?", (row["owner"], guest))
    now = time.time()
    db.execute(
        "UPDATE services SET state = 'disabled', owner = NULL, last_owner = ?, transition = ? "
        "WHERE name = ?",
        (last, now, svc),
    )
    guest_down(db, guest, DOWN_CLEAN, last, now)
    return RG_SUCCESS


# --------------------------------------------------------------------------- fencing (cman 3.0)
# The cluster's fence record: hosts.left_at / fenced_at / fenced_by. A member that left and was
# not fenced since is fenced's victim (its fence device "fails" in the lab: `lab.inject fence`
# is the fence that works); the fence master is the lowest node id that is up.


def _fence_master(db) -> int:
    return db.execute("SELECT MIN(nodeid) FROM hosts WHERE up = 1").fetchone()[0] or 0


def tool_fence_tool(ctx: Ctx, args: list[str]) -> int:
    """fence_tool ls [-n]: the fence domain (fenced 3.0.12's fence_tool.c layout)."""
    opts, operands, error = _getopt(args[1:] if args else [], "n")
    if not args or args[0] != "ls" or error or operands:
        ctx.err("fence_tool: %s\n" % (error or "usage: fence_tool ls [-n]"))
        return 1
    hosts = ctx.db.execute("SELECT * FROM hosts ORDER BY nodeid").fetchall()
    up = [h for h in hosts if h["up"]]
    victims = [h for h in hosts if not h["up"] and h["fenced_at"] < h["left_at"]]
    master = _fence_master(ctx.db)
    quorate = meta(ctx.db, "quorate", "1") == "1"
    on_master = ctx.h["nodeid"] == master
    wait = "none"
    if victims and on_master:
        wait = "fencing" if quorate else "quorum"
    now_id = victims[0]["nodeid"] if victims and on_master and quorate else 0
    out = [
        "fence domain\n",
        "member count  %d\n" % len(up),
        "victim count  %d\n" % len(victims),
        "victim now    %d\n" % now_id,
        "master nodeid %d\n" % master,
        "wait state    %s\n" % wait,
        "members       %s\n" % "".join("%d " % h["nodeid"] for h in up),
    ]
    if ("n", "") in opts:
        out.append("all nodes\n")
        for h in hosts:
            out.append(
                "nodeid %d member %d victim %d last fence master %d how %s\n"
                % (
                    h["nodeid"],
                    1 if h["up"] else 0,
                    1 if h in victims else 0,
                    h["fenced_by"] if h["fenced_at"] else 0,
                    "agent" if h["fenced_at"] else "none",
                )
            )
    out.append("\n")
    ctx.out("".join(out))
    return 0


def tool_cman_tool(ctx: Ctx, args: list[str]) -> int:
    """cman_tool nodes [-a]: cman 3.0's table; -f is gone in cluster 3 (unknown option)."""
    if not args or args[0] != "nodes":
        ctx.err("cman_tool: no command specified\n" if not args else "cman_tool: unknown command\n")
        return 1
    opts, _operands, error = _getopt(args[1:], "an:F:")
    if error:
        # cluster 3.0.12: 'f' is still in getopt's string but has no handler any more.
        bad = error.rsplit("'", 2)[-2] if "'" in error else "?"
        ctx.err("cman_tool: unknown option: %s\n" % bad)
        return 1
    only = next((v for o, v in opts if o == "n"), None)
    addresses = ("a", "") in opts
    ctx.out("Node  Sts   Inc   Joined               Name\n")
    for h in ctx.db.execute("SELECT * FROM hosts ORDER BY nodeid"):
        if only is not None and h["name"] != only:
            continue
        member = bool(h["up"])
        joined = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["booted"]))
        inc = 4 * h["nodeid"] + (4 if h["left_at"] else 0)
        ctx.out(
            "%4u   %c  %5d   %s  %s\n"
            % (h["nodeid"], "M" if member else "X", inc, joined if member else " " * 19, h["name"])
        )
        if addresses:
            ctx.out("       Addresses: %s \n" % h["address"])
    return 0


def _host_fenced(db, host: str, now: float) -> None:
    # rgmanager after the fence: the member's services are taken over. The lab has no failover
    # domains: it does what rgmanager does when no member of a service's restricted domain is
    # online ("Marking vm:X as stopped: Restricted domain unavailable"). Disabled, failed and
    # recovering services are skipped by the node-down evaluation (groups.c).
    if not _has_services(db):
        return
    db.execute(
        "UPDATE services SET state = 'stopped', owner = NULL, last_owner = ?, transition = ? "
        "WHERE owner = ? AND state IN ('starting', 'started', 'stopping', 'checking', "
        "'migrating')",
        (host, now, host),
    )


def _host_booted(db, lab_dir: str, host: str, now: float) -> None:
    # The restricted domain's member is back: rgmanager starts there what it kept stopped for it.
    if not _has_services(db) or meta(db, "backend", BACKEND) != BACKEND:
        return
    for row in db.execute(
        "SELECT * FROM services WHERE state = 'stopped' AND last_owner = ?", (host,)
    ).fetchall():
        guest = _guest_of(row["name"])
        try:
            cfg = read_cfg(os.path.join(lab_dir, "xenconfig", row["cfg"]))
        except (OSError, ValueError, KeyError):
            continue
        if cfg["memory"] > host_free_mib(db, host):
            continue
        hand_start(db, lab_dir, guest, host)
        db.execute(
            "UPDATE services SET state = 'starting', owner = ?, transition = ? WHERE name = ?",
            (host, now, row["name"]),
        )
        guest_up(db, guest, host, now)


FAIL_MESSAGES = {
    "clustat": ("Could not connect to CMAN: No such file or directory\n", "", 1),
    "clusvcadm": ("", "Could not connect to cluster service\n", 1),
    "cman_tool": ("cman_tool: Cannot open connection to cman, is it running ?\n", "", 1),
    # fence_tool ls with fenced unreachable: exit 1, nothing on stdout (fence_tool.c:534).
    "fence_tool": ("", "", 1),
}
# The backend this family is the lab of (control.BACKENDS is built from this), and the lab's
# backend when none is named (xenfab's default too).
BACKEND = "rgmanager"
DEFAULT = True
TOOLS = {
    "clustat": tool_clustat,
    "clusvcadm": tool_clusvcadm,
    "cman_tool": tool_cman_tool,
    "fence_tool": tool_fence_tool,
}
# Armed faults (emulator.fire_armed) this family fires: [kind] -> (db, lab_dir, guest, host).
ARMED = {"start-behind-on-start": start_behind}
HOOKS = {
    "guest-name": _guest_name,
    "services": _status_services,
    "domain-built": _domain_built,
    "host-fenced": _host_fenced,
    "host-booted": _host_booted,
}


# --------------------------------------------------------------------------- the lab's control side
# What xenfab.lab.control reads for a lab with ``backend: rgmanager``: the tools every host
# gets beyond the toolstack, the status summary, the faults.

HOST_TOOLS = ("clustat", "clusvcadm", "cman_tool", "fence_tool")
HOST_PATHS: dict = {}


def _set_quorate(db, quorate: bool) -> None:
    db.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('quorate', ?)", ("1" if quorate else "0",)
    )


# [kind] -> (arguments, handler(db, lab_dir, values)); "armed" ones wait for a start.
FAULTS = {
    "inquorate": ((), lambda db, lab, v: _set_quorate(db, False)),
    "quorate": ((), lambda db, lab, v: _set_quorate(db, True)),
    "start-behind": (
        ("GUEST", "HOST"),
        lambda db, lab, v: start_behind(db, lab, v["guest"], v["host"]),
    ),
    # armed: fire at the next start acting on another guest (during a run's starts)
    "start-behind-on-start": (("GUEST", "HOST"), "armed"),
}


def summary(db, guests: list[dict], now: float) -> dict:
    """rgmanager's view of the lab's guests: services running (or starting), down, quorum."""
    states = [s["state"] for s in services(db, now)]
    running = sum(1 for s in states if s in ("started", "starting"))
    down = sum(1 for s in states if s in DOWN_STATES)
    return {"running": running, "down": down, "quorate": meta(db, "quorate", "1") == "1"}


def setup(lab_dir: str, db, guests: list[dict], active: bool) -> None:
    """rgmanager's services, one per guest of the scenario, derived from its neutral record.

    Kept in every lab that has this family, active or not, and kept in step by its hooks: an
    xl lab's status lists the same services as before (the lab needs none of it to work).
    A guest that never ran is a service with no last owner and no transition (clustat: "none",
    0); one running is ``started`` on its host; one down is left as DOWN_STATE says.
    """
    with write_transaction(db):
        db.execute(SCHEMA)
        db.execute("DELETE FROM services")
        for g in guests:
            if g["running"]:
                state, owner, last = "started", g["host"], None
            else:
                state, owner, last = DOWN_STATE[g["down_how"]], None, g["host"]
            db.execute(
                "INSERT INTO services(name, state, owner, last_owner, transition, restarts, cfg) "
                "VALUES (?, ?, ?, ?, ?, 0, ?)",
                (SERVICE_PREFIX + g["guest"], state, owner, last, g["since"], g["cfg"]),
            )
