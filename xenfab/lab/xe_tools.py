"""The lab's emulated XAPI pool: ``xe`` (XCP-ng 8.0 to 8.3), the xe backend's lab family.

A lab brought up with ``backend: xe`` is a pool: every host has ``xe`` and a
``/etc/xensource/pool.conf`` of its own (``master`` on the master, ``slave:ADDRESS`` on the
members: LAB/xensource/pool.conf in a command is that host's own, see ``HOST_PATHS``). ``xe``
answers from the shared state in the real formats, written from the grammar of xapi's CLI
(``cli_printer.ml``, ``cli_util.ml``, ``records.ml``, ``datamodel_errors.ml``; the reference is
/work/shared/reference/FORMATS-xe.md in the project's notes), not from xenfab's parser:

- records: ``key (ANN): value``, the first key left-aligned and the others right-aligned to
  4 + the longest key of the record, two blank lines after every record (none at all for no
  record); fields in the record order of ``records.ml`` whatever the order of ``params=``;
  unknown ``params=`` names ignored; expensive fields (``memory-free-computed``) print
  ``<expensive field>`` in ``*-list`` and are computed by ``*-param-get``/``-param-list``;
  null references ``<not in database>``; maps ``k: v; k: v`` with no escaping; ``--minimal``
  the first field of each record, commas escaped;
- memory in bytes, identity by uuid, name-labels with spaces and duplicates (every ``web``
  VM is a clone named ``web server``);
- errors on stderr, exit 1: a datamodel error's sentence then ``param: value`` lines, in the
  pre-1.178 wording (XCP-ng 8.0) or the current one (fault ``xapi-8.0``/``xapi-8.2``); the
  ``Error code:``/``Error parameters:`` layout for codes outside the datamodel; ``Error: ...``
  for the CLI's own failures; ``Unknown command``/``Required parameter not found`` + usage.

``xe vm-start uuid=VM on=HOST`` checks what XAPI checks (power state, host live and enabled,
the VM's SR plugged on the host, free memory with overhead, as ``memory-free-computed``
shows it), reserves the memory, takes the boot time (``boot_s``), after which the VM is
``running`` resident on the host, then sleeps the VM's ``start-delay`` before it returns. A
second start of the same VM meanwhile waits for the first, then fails as XAPI's does
(VM_BAD_POWER_STATE, running).

A VM runs where the shared state has its domain (so a hand ``xl create`` is seen as running);
with pool HA enabled, the domains of a host that is down are gone (HA fenced it) and its VMs
read halted. The pool's own state (hosts' uuids, VMs' uuids and settings, SRs and their PBDs,
HA, the wording) is this family's tables, derived from the neutral guests at setup. Like the
emulator it uses the standard library only and never imports the xenfab package.
"""

# ruff: noqa: UP031
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time

try:  # imported as part of xenfab.lab
    from .emulator import (
        Ctx,
        fire_armed,
        guest_record,
        guest_up,
        meta,
        record_start,
        write_transaction,
    )
    from .xen_tools import build_domain, read_cfg
except ImportError:  # run by path, next to emulator.py
    from emulator import (  # type: ignore[no-redef]
        Ctx,
        fire_armed,
        guest_record,
        guest_up,
        meta,
        record_start,
        write_transaction,
    )
    from xen_tools import build_domain, read_cfg  # type: ignore[no-redef]

MIB = 1024 * 1024
NID = "<not in database>"
EXPENSIVE = "<expensive field>"

SCHEMA = """
CREATE TABLE IF NOT EXISTS xe_hosts(
    name TEXT PRIMARY KEY, uuid TEXT UNIQUE NOT NULL, label TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS xe_vms(
    uuid TEXT PRIMARY KEY, guest TEXT, label TEXT NOT NULL, control_of TEXT,
    mem_mib INTEGER NOT NULL, vcpus INTEGER NOT NULL, auto_poweron INTEGER NOT NULL,
    ha_prio TEXT NOT NULL DEFAULT '', vm_order INTEGER NOT NULL DEFAULT 0,
    start_delay INTEGER NOT NULL DEFAULT 0, affinity TEXT, sr TEXT, suspended INTEGER NOT NULL
    DEFAULT 0, starting_on TEXT, starting_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS xe_srs(
    uuid TEXT PRIMARY KEY, label TEXT NOT NULL, type TEXT NOT NULL, shared INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS xe_pbds(
    uuid TEXT PRIMARY KEY, sr TEXT NOT NULL, host TEXT NOT NULL, attached INTEGER NOT NULL);
"""
TABLES = ("xe_hosts", "xe_vms", "xe_srs", "xe_pbds")
SHARED_SR = "NFS VM storage"


def _uuid(*parts: object) -> str:
    """A stable version-4-shaped uuid for a lab object (the same seed, the same uuids)."""
    h = hashlib.sha256(("xe-lab|" + "|".join(map(str, parts))).encode()).hexdigest()
    return "%s-%s-4%s-8%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:32])


def _num(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


# --------------------------------------------------------------------------- errors

# Datamodel errors: code -> (params, current sentence, pre-xapi-1.178 sentence or None).
ERRORS = {
    "HOST_NOT_ENOUGH_FREE_MEMORY": (
        ("needed", "available"),
        "Not enough server memory is available to perform this operation.",
        "Not enough host memory is available to perform this operation",
    ),
    "VM_BAD_POWER_STATE": (
        ("vm", "expected", "actual"),
        "You attempted an operation on a VM that was not in an appropriate power state at the "
        "time; for example, you attempted to start a VM that was already running. The "
        "parameters returned are the VM's handle, and the expected and actual VM state at the "
        "time of the call.",
        None,
    ),
    "NO_HOSTS_AVAILABLE": (
        (),
        "There were no servers available to complete the specified operation.",
        "There were no hosts available to complete the specified operation.",
    ),
    "VM_REQUIRES_SR": (
        ("vm", "sr"),
        "You attempted to run a VM on a host which doesn't have access to an SR needed by the "
        "VM. The VM has at least one VBD attached to a VDI in the SR.",
        None,
    ),
    "HOST_NOT_LIVE": ((), "This operation cannot be completed as the server is not live.", None),
    "HOST_IS_LIVE": (
        ("host",),
        "This operation cannot be completed as the server is still live.",
        "This operation cannot be completed as the host is still live.",
    ),
    "HOST_DISABLED": (
        ("host",),
        "The specified server is disabled.",
        "The specified host is disabled.",
    ),
    "UUID_INVALID": (("type", "uuid"), "The uuid you supplied was invalid.", None),
    "INTERNAL_ERROR": (
        ("message",),
        "The server failed to handle your request, due to an internal error. The given message "
        "may give details useful for debugging the problem.",
        "The server failed to handle your request, due to an internal error.  The given "
        "message may give details useful for debugging the problem.",
    ),
}
NO_FORCE = (
    "This operation is dangerous and may cause data loss. This operation must be forced "
    "(use --force)."
)


class XeFailure(Exception):
    """What xe prints on stderr for a failed command (exit 1)."""

    def __init__(self, text: str, stdout: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.stdout = stdout
        self.attempt: str | None = None


def api_error(db: sqlite3.Connection, code: str, *params: str) -> XeFailure:
    """A server error as the CLI prints it (cli_util.server_error), in the pool's wording."""
    if code not in ERRORS:
        return XeFailure("Error code: %s\nError parameters: %s\n" % (code, ", ".join(params)))
    names, text, old = ERRORS[code]
    if old is not None and meta(db, "xe_wording", "new") == "old":
        text = old
    lines = [text]
    for i, name in enumerate(names):
        lines.append("%s: %s" % (name, params[i] if i < len(params) else "<unknown>"))
    lines += ["<extra>: %s" % p for p in params[len(names) :]]
    return XeFailure("\n".join(lines) + "\n")


def cli_failure(text: str) -> XeFailure:
    return XeFailure("Error: %s\n" % text)


def usage_error(kind: str, what: str) -> XeFailure:
    return XeFailure("%s: %s\nFor usage run: 'xe help'\n" % (kind, what))


# --------------------------------------------------------------------------- the pool's state


def _has_pool(db: sqlite3.Connection) -> bool:
    return bool(db.execute("SELECT 1 FROM sqlite_master WHERE name = 'xe_vms'").fetchone())


def _boot_s(db: sqlite3.Connection) -> float:
    return float(meta(db, "boot_s", "2") or 2)


def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def _overhead_mib(mem_mib: int, vcpus: int) -> int:
    """What xapi adds to a VM's memory to start it (shadow and page tables), roughly."""
    return mem_mib // 256 + vcpus + 1


class Pool:
    """One consistent read of the pool: hosts, VMs (with their power state), SRs, PBDs."""

    def __init__(self, db: sqlite3.Connection, now: float) -> None:
        self.db = db
        self.now = now
        self.ha = meta(db, "xe_ha", "0") == "1"
        self.master = meta(db, "xe_master", "")
        self.hosts = {
            r["name"]: dict(r)
            for r in db.execute(
                "SELECT x.*, h.up, h.total_mib, h.dom0_mib, h.cpus, h.cpu_mhz, h.address, "
                "h.nodeid, h.booted FROM xe_hosts x JOIN hosts h ON h.name = x.name "
                "ORDER BY h.nodeid"
            )
        }
        self.host_by_uuid = {h["uuid"]: h for h in self.hosts.values()}
        self.srs = {r["uuid"]: dict(r) for r in db.execute("SELECT * FROM xe_srs ORDER BY label")}
        self.pbds = [dict(r) for r in db.execute("SELECT * FROM xe_pbds ORDER BY uuid")]
        domains: dict[str, list] = {}
        for d in db.execute("SELECT * FROM domains ORDER BY id"):
            host = self.hosts.get(d["host"])
            if host is None or (self.ha and not host["up"]):
                continue  # HA fenced that host: its domains are gone
            domains.setdefault(d["name"], []).append(dict(d))
        self.vms = {}
        for r in db.execute("SELECT * FROM xe_vms ORDER BY uuid"):
            vm = dict(r)
            if vm["control_of"]:
                vm["power"], vm["resident"], vm["domid"] = "running", vm["control_of"], 0
                vm["since"] = self.hosts[vm["control_of"]]["booted"]
            else:
                doms = domains.get(vm["guest"], [])
                if doms:
                    vm["power"], vm["resident"] = "running", doms[0]["host"]
                    vm["domid"], vm["since"] = doms[0]["domid"], doms[0]["created"]
                else:
                    vm["power"] = "suspended" if vm["suspended"] else "halted"
                    vm["resident"], vm["domid"], vm["since"] = None, -1, 0
            vm["busy"] = bool(vm["starting_on"]) and vm["starting_until"] > now - 600
            self.vms[vm["uuid"]] = vm

    def host_uuid(self, name: str | None) -> str:
        return self.hosts[name]["uuid"] if name in self.hosts else NID

    def live(self, name: str) -> bool:
        return bool(self.hosts[name]["up"])

    def free_bytes(self, name: str, computed: bool) -> int:
        """memory-free (what Xen reports) or memory-free-computed (what xapi refuses on)."""
        h = self.hosts[name]
        used = 0
        for vm in self.vms.values():
            on = vm["resident"] if vm["power"] == "running" else None
            if vm["control_of"]:
                continue
            if on == name:
                used += vm["mem_mib"] + (
                    _overhead_mib(vm["mem_mib"], vm["vcpus"]) if computed else 0
                )
            elif computed and vm["busy"] and vm["starting_on"] == name:
                used += vm["mem_mib"] + _overhead_mib(vm["mem_mib"], vm["vcpus"])
        return max(0, h["total_mib"] - h["dom0_mib"] - used) * MIB

    def sr_plugged(self, sr: str | None, host: str) -> bool:
        if not sr:
            return True
        return any(p["sr"] == sr and p["host"] == host and p["attached"] for p in self.pbds)


def _bool(v: object) -> str:
    return "true" if v else "false"


def _map(pairs: list[tuple[str, str]]) -> str:
    return "; ".join("%s: %s" % kv for kv in pairs)


def _stamp(t: float) -> str:
    return time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime(t))


def _vm_ref(pool: Pool, uuid: str) -> str:
    vm = pool.vms[uuid]
    return "%s (%s)" % (uuid, vm["label"]) if vm["label"] else uuid


def _host_ref(pool: Pool, name: str) -> str:
    h = pool.hosts[name]
    return "%s (%s)" % (h["uuid"], h["label"])


# A field: (name, annotation, getter(pool, obj), expensive).
def _vm_fields() -> list:
    def other(p, v):
        pairs = []
        if v["auto_poweron"]:
            pairs.append(("auto_poweron", "true"))
        if not v["control_of"]:
            pairs.append(("base_template_name", "Debian Bookworm 12"))
            pairs.append(("import_task", "OpaqueRef:NULL"))
        return _map(pairs)

    def possible(p, v):
        return "; ".join(
            p.hosts[n]["uuid"] for n in p.hosts if not _start_check(p, v, n, quiet=True)
        )

    mem = lambda p, v: str(v["mem_mib"] * MIB)  # noqa: E731
    return [
        ("uuid", "( RO)", lambda p, v: v["uuid"], False),
        ("name-label", "( RW)", lambda p, v: v["label"], False),
        ("name-description", "( RW)", lambda p, v: "" if v["control_of"] else "lab guest", False),
        ("user-version", "( RW)", lambda p, v: "1", False),
        ("is-a-template", "( RW)", lambda p, v: "false", False),
        ("is-default-template", "( RW)", lambda p, v: "false", False),
        ("is-a-snapshot", "( RO)", lambda p, v: "false", False),
        ("snapshot-of", "( RO)", lambda p, v: NID, False),
        ("is-control-domain", "( RO)", lambda p, v: _bool(v["control_of"]), False),
        ("power-state", "( RO)", lambda p, v: v["power"], False),
        (
            "memory-actual",
            "( RO)",
            lambda p, v: mem(p, v) if v["power"] == "running" else "0",
            False,
        ),
        ("memory-target", "( RO)", mem, True),
        (
            "memory-overhead",
            "( RO)",
            lambda p, v: str(_overhead_mib(v["mem_mib"], v["vcpus"]) * MIB),
            False,
        ),
        ("memory-static-max", "( RW)", mem, False),
        ("memory-dynamic-max", "( RW)", mem, False),
        ("memory-dynamic-min", "( RW)", mem, False),
        ("memory-static-min", "( RW)", lambda p, v: str(min(v["mem_mib"], 512) * MIB), False),
        ("VCPUs-max", "( RW)", lambda p, v: str(v["vcpus"]), False),
        ("VCPUs-at-startup", "( RW)", lambda p, v: str(v["vcpus"]), False),
        (
            "allowed-operations",
            "(SRO)",
            lambda p, v: "; ".join(
                ("start", "start_on", "export")
                if v["power"] == "halted" and not v["busy"]
                else ("clean_shutdown", "hard_shutdown", "pause")
                if v["power"] == "running"
                else ()
            ),
            False,
        ),
        ("current-operations", "(SRO)", lambda p, v: "start_on" if v["busy"] else "", False),
        ("possible-hosts", "( RO)", possible, True),
        ("resident-on", "( RO)", lambda p, v: p.host_uuid(v["resident"]), False),
        ("affinity", "( RW)", lambda p, v: p.host_uuid(v["affinity"]), False),
        ("other-config", "(MRW)", other, False),
        ("dom-id", "( RO)", lambda p, v: str(v["domid"]), False),
        (
            "ha-always-run",
            "( RW) [DEPRECATED]",
            lambda p, v: _bool(v["ha_prio"] == "restart"),
            False,
        ),
        ("ha-restart-priority", "( RW)", lambda p, v: v["ha_prio"], False),
        (
            "start-time",
            "( RO)",
            lambda p, v: _stamp(v["since"]) if v["since"] else "19700101T00:00:00Z",
            False,
        ),
        (
            "VCPUs-number",
            "( RO)",
            lambda p, v: str(v["vcpus"] if v["power"] == "running" else 0),
            False,
        ),
        ("tags", "(SRW)", lambda p, v: "", False),
        ("appliance", "( RW)", lambda p, v: NID, False),
        ("start-delay", "( RW)", lambda p, v: str(v["start_delay"]), False),
        ("shutdown-delay", "( RW)", lambda p, v: "0", False),
        ("order", "( RW)", lambda p, v: str(v["vm_order"]), False),
    ]


def _host_fields() -> list:
    def cpu_info(p, h):
        return _map(
            [
                ("cpu_count", str(h["cpus"])),
                ("socket_count", "2" if h["cpus"] >= 24 else "1"),
                ("vendor", "GenuineIntel"),
                ("speed", "%d.%03d" % (h["cpu_mhz"], (h["cpu_mhz"] * 37) % 1000)),
                ("modelname", "Intel(R) Xeon(R) CPU           E5-2650 v2 @ 2.60GHz"),
                ("family", "6"),
                ("model", "62"),
                ("stepping", "4"),
            ]
        )

    def live(p, h):
        return _bool(h["up"])

    def mem(key):
        def get(p, h):
            if key == "total":
                return str(h["total_mib"] * MIB)
            return str(p.free_bytes(h["name"], computed=key == "computed"))

        return get

    return [
        ("uuid", "( RO)", lambda p, h: h["uuid"], False),
        ("name-label", "( RW)", lambda p, h: h["label"], False),
        ("name-description", "( RW)", lambda p, h: "Default install", False),
        ("allowed-operations", "(SRO)", lambda p, h: "VM.start; provision; evacuate", False),
        ("current-operations", "(SRO)", lambda p, h: "", False),
        ("enabled", "( RO)", lambda p, h: _bool(h["enabled"]), False),
        (
            "software-version",
            "(MRO)",
            lambda p, h: _map(
                [
                    ("product_version", "8.2.1"),
                    ("product_brand", "XCP-ng"),
                    ("xapi", "1.249" if meta(p.db, "xe_wording", "new") == "new" else "1.160"),
                ]
            ),
            False,
        ),
        (
            "other-config",
            "(MRW)",
            lambda p, h: _map([("iscsi_iqn", "iqn.2024-01.lab:" + h["name"])]),
            False,
        ),
        ("cpu_info", "(MRO)", cpu_info, False),
        ("hostname", "( RO)", lambda p, h: h["name"], False),
        ("address", "( RO)", lambda p, h: h["address"], False),
        ("memory-overhead", "( RO)", lambda p, h: str(96 * MIB), False),
        ("memory-total", "( RO)", mem("total"), False),
        ("memory-free", "( RO)", mem("free"), False),
        ("memory-free-computed", "( RO)", mem("computed"), True),
        ("host-metrics-live", "( RO)", live, False),
        (
            "resident-vms",
            "(SRO)",
            lambda p, h: "; ".join(
                v["uuid"]
                for v in p.vms.values()
                if v["power"] == "running" and v["resident"] == h["name"]
            ),
            False,
        ),
    ]


def _pool_fields() -> list:
    return [
        ("uuid", "( RO)", lambda p, o: o["uuid"], False),
        ("name-label", "( RW)", lambda p, o: "xenfab lab pool", False),
        ("name-description", "( RW)", lambda p, o: "", False),
        ("master", "( RO)", lambda p, o: p.host_uuid(p.master), False),
        ("default-SR", "( RW)", lambda p, o: _shared_sr(p) or NID, False),
        ("other-config", "(MRW)", lambda p, o: _map([("auto_poweron", "true")]), False),
        ("ha-enabled", "( RO)", lambda p, o: _bool(p.ha), False),
        ("ha-host-failures-to-tolerate", "( RW)", lambda p, o: "1" if p.ha else "0", False),
        ("ha-plan-exists-for", "( RO)", lambda p, o: "1" if p.ha else "0", False),
        ("ha-allow-overcommit", "( RW)", lambda p, o: "false", False),
        ("ha-overcommitted", "( RO)", lambda p, o: "false", False),
    ]


def _shared_sr(p: Pool) -> str | None:
    return next((u for u, s in p.srs.items() if s["shared"]), None)


def _sr_fields() -> list:
    return [
        ("uuid", "( RO)", lambda p, s: s["uuid"], False),
        ("name-label", "( RW)", lambda p, s: s["label"], False),
        ("name-description", "( RW)", lambda p, s: "", False),
        (
            "PBDs",
            "(SRO)",
            lambda p, s: "; ".join(b["uuid"] for b in p.pbds if b["sr"] == s["uuid"]),
            False,
        ),
        ("type", "( RO)", lambda p, s: s["type"], False),
        ("content-type", "( RO)", lambda p, s: "user", False),
        ("shared", "( RW)", lambda p, s: _bool(s["shared"]), False),
    ]


def _pbd_fields() -> list:
    return [
        ("uuid", "( RO)", lambda p, b: b["uuid"], False),
        ("host-uuid", "( RO)", lambda p, b: p.host_uuid(b["host"]), False),
        ("host-name-label", "( RO)", lambda p, b: p.hosts[b["host"]]["label"], False),
        ("sr-uuid", "( RO)", lambda p, b: b["sr"], False),
        ("sr-name-label", "( RO)", lambda p, b: p.srs[b["sr"]]["label"], False),
        ("currently-attached", "( RO)", lambda p, b: _bool(b["attached"]), False),
    ]


def _vbds(p: Pool) -> list[dict]:
    """Each VM's disk (a VBD on its VDI in its SR) and its CD drive, empty (no VDI)."""
    out = []
    for vm in p.vms.values():
        if vm["control_of"] or not vm["sr"]:
            continue
        out.append(
            {
                "uuid": _uuid("vbd", vm["uuid"]),
                "vm": vm["uuid"],
                "vdi": _uuid("vdi", vm["uuid"]),
                "device": "xvda",
                "type": "Disk",
                "empty": False,
            }
        )
        out.append(
            {
                "uuid": _uuid("cd", vm["uuid"]),
                "vm": vm["uuid"],
                "vdi": None,
                "device": "xvdd",
                "type": "CD",
                "empty": True,
            }
        )
    return sorted(out, key=lambda b: b["uuid"])


def _vdis(p: Pool) -> list[dict]:
    return sorted(
        (
            {
                "uuid": _uuid("vdi", vm["uuid"]),
                "vm": vm["uuid"],
                "sr": vm["sr"],
                "label": "%s 0" % vm["label"],
                "size": vm["mem_mib"] * 8 * MIB,
            }
            for vm in p.vms.values()
            if vm["sr"] and not vm["control_of"]
        ),
        key=lambda d: d["uuid"],
    )


def _vbd_fields() -> list:
    # records.ml's vbd_record order
    return [
        ("uuid", "( RO)", lambda p, b: b["uuid"], False),
        ("vm-uuid", "( RO)", lambda p, b: b["vm"], False),
        ("vm-name-label", "( RO)", lambda p, b: p.vms[b["vm"]]["label"], False),
        ("vdi-uuid", "( RO)", lambda p, b: b["vdi"] or NID, False),
        (
            "vdi-name-label",
            "( RO)",
            lambda p, b: ("%s 0" % p.vms[b["vm"]]["label"]) if b["vdi"] else NID,
            False,
        ),
        ("empty", "( RO)", lambda p, b: _bool(b["empty"]), False),
        ("device", "( RO)", lambda p, b: b["device"], False),
        ("userdevice", "( RW)", lambda p, b: "0" if b["type"] == "Disk" else "3", False),
        ("bootable", "( RW)", lambda p, b: _bool(b["type"] == "Disk"), False),
        ("mode", "( RW)", lambda p, b: "RW" if b["type"] == "Disk" else "RO", False),
        ("type", "( RW)", lambda p, b: b["type"], False),
        (
            "currently-attached",
            "( RO)",
            lambda p, b: _bool(p.vms[b["vm"]]["power"] == "running"),
            False,
        ),
    ]


def _vdi_fields() -> list:
    # records.ml's vdi_record order
    return [
        ("uuid", "( RO)", lambda p, d: d["uuid"], False),
        ("name-label", "( RW)", lambda p, d: d["label"], False),
        ("name-description", "( RW)", lambda p, d: "", False),
        ("is-a-snapshot", "( RO)", lambda p, d: "false", False),
        ("sr-uuid", "( RO)", lambda p, d: d["sr"], False),
        ("sr-name-label", "( RO)", lambda p, d: p.srs[d["sr"]]["label"], False),
        ("vbd-uuids", "(SRO)", lambda p, d: _uuid("vbd", d["vm"]), False),
        ("virtual-size", "( RO)", lambda p, d: str(d["size"]), False),
        ("type", "( RO)", lambda p, d: "User", False),
        ("sharable", "( RO)", lambda p, d: "false", False),
        ("read-only", "( RO)", lambda p, d: "false", False),
    ]


# class -> (fields, objects(pool), default params, the class name in UUID_INVALID)
CLASSES = {
    "vm": (
        _vm_fields(),
        lambda p: list(p.vms.values()),
        ("uuid", "name-label", "power-state"),
        "VM",
    ),
    "host": (
        _host_fields(),
        lambda p: list(p.hosts.values()),
        ("uuid", "name-label", "name-description"),
        "host",
    ),
    "pool": (
        _pool_fields(),
        lambda p: [{"uuid": meta(p.db, "xe_pool", "")}],
        ("uuid", "name-label", "name-description", "master", "default-SR"),
        "pool",
    ),
    "sr": (
        _sr_fields(),
        lambda p: list(p.srs.values()),
        ("uuid", "name-label", "name-description", "host", "type", "content-type"),
        "SR",
    ),
    "pbd": (
        _pbd_fields(),
        lambda p: list(p.pbds),
        ("uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"),
        "PBD",
    ),
    "vbd": (
        _vbd_fields(),
        _vbds,
        ("uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "device", "empty"),
        "VBD",
    ),
    "vdi": (
        _vdi_fields(),
        _vdis,
        (
            "uuid",
            "name-label",
            "name-description",
            "virtual-size",
            "read-only",
            "sharable",
            "sr-uuid",
        ),
        "VDI",
    ),
}
STDPARAMS = {
    "server",
    "password",
    "port",
    "username",
    "minimal",
    "force",
    "multiple",
    "all",
    "message-priority",
    "trace",
}


# --------------------------------------------------------------------------- printing


def _record(pairs: list[tuple[str, str]]) -> str:
    """cli_printer.multi_line_record: first key left-aligned, the rest right-aligned."""
    if not pairs:
        return ""
    width = 4 + max(len(k) for k, _ in pairs)
    lines = [pairs[0][0].ljust(width) + ": " + pairs[0][1]]
    lines += [k.rjust(width) + ": " + v for k, v in pairs[1:]]
    return "\n".join(lines) + "\n"


def _print_records(ctx: Ctx, records: list[list[tuple[str, str]]], minimal: bool) -> None:
    if minimal:
        firsts = [r[0][1] if r else "" for r in records]
        ctx.out(",".join(v.replace("\\", "\\\\").replace(",", "\\,") for v in firsts) + "\n")
        return
    for r in records:
        # Print (record ^ "\n"), and the client's print_endline adds one more.
        ctx.out(_record(r) + "\n\n")


def _filter(pool: Pool, fields: list, objs: list, filters: list[tuple[str, str]]) -> list:
    names = {f[0]: f for f in fields}
    for key, value in filters:
        base, _, mkey = key.partition(":")
        field = names.get(key) or (names.get(base) if mkey else None)
        if field is None:
            raise cli_failure("Unknown field '%s'" % key)
        if key in names:
            objs = [o for o in objs if field[2](pool, o) == value]
        elif field[1].startswith("(M"):
            objs = [o for o in objs if _map_get(field[2](pool, o), mkey) == value]
        elif field[1].startswith("(S") and mkey == "contains":
            objs = [o for o in objs if value in field[2](pool, o).split("; ")]
        else:
            raise cli_failure("Invalid syntax for set filtering (should be set-param:contains=key)")
    return objs


def _map_get(text: str, key: str) -> str | None:
    for part in text.split("; ") if text else []:
        k, _, v = part.partition(": ")
        if k == key:
            return v
    return None


def _list(ctx: Ctx, pool: Pool, cls: str, params: list[tuple[str, str]]) -> int:
    fields, objs_of, defaults, _ = CLASSES[cls]
    given = dict(params)
    minimal = given.get("minimal") == "true"
    wanted = given.get("params")
    if wanted is None:
        chosen = list(defaults)
    elif wanted == "all":
        chosen = [f[0] for f in fields]
    else:
        chosen = wanted.split(",")
    filters = [(k, v) for k, v in params if k != "params" and k not in STDPARAMS]
    objs = objs_of(pool)
    if cls == "vm":
        filters = [("is-a-template", "false"), *filters]
    objs = _filter(pool, fields, objs, filters)
    records = [
        [
            (name + " " + ann, EXPENSIVE if exp else get(pool, o))
            for name, ann, get, exp in fields
            if name in chosen
        ]
        for o in objs
    ]
    _print_records(ctx, records, minimal)
    return 0


def _by_uuid(pool: Pool, cls: str, uuid: str | None) -> dict:
    _, objs_of, _, kind = CLASSES[cls]
    for o in objs_of(pool):
        if o["uuid"] == uuid:
            return o
    raise api_error(pool.db, "UUID_INVALID", kind, uuid or "")


def _param_get(ctx: Ctx, pool: Pool, cls: str, params: list[tuple[str, str]]) -> int:
    given = dict(params)
    for p in ("uuid", "param-name"):
        if p not in given:
            raise usage_error("Required parameter not found", p)
    obj = _by_uuid(pool, cls, given["uuid"])
    fields = CLASSES[cls][0]
    field = next((f for f in fields if f[0] == given["param-name"]), None)
    if field is None:
        raise XeFailure(
            "Error code: Missing parameter\nError parameters: %s\n" % given["param-name"]
        )
    value = field[2](pool, obj)
    if "param-key" in given:
        got = _map_get(value, given["param-key"]) if field[1].startswith("(M") else None
        if got is None:
            raise cli_failure("Key %s not found in map" % given["param-key"])
        value = got
    ctx.out(value + "\n")
    return 0


def _param_list(ctx: Ctx, pool: Pool, cls: str, params: list[tuple[str, str]]) -> int:
    given = dict(params)
    if "uuid" not in given:
        raise usage_error("Required parameter not found", "uuid")
    obj = _by_uuid(pool, cls, given["uuid"])
    pairs = [(name + " " + ann, get(pool, obj)) for name, ann, get, _exp in CLASSES[cls][0]]
    _print_records(ctx, [pairs], False)
    return 0


# --------------------------------------------------------------------------- vm-start


def _start_check(pool: Pool, vm: dict, host: str, quiet: bool = False):
    """Why ``vm`` cannot boot on ``host`` (XAPI's assert_can_boot_here), or None."""
    h = pool.hosts[host]
    if not h["up"]:
        return ("Host down", ("HOST_NOT_LIVE",))
    if not h["enabled"]:
        return (
            "Host disabled (use 'xe host-enable' to re-enable)",
            ("HOST_DISABLED", _host_ref(pool, host)),
        )
    if not pool.sr_plugged(vm["sr"], host):
        sr = pool.srs[vm["sr"]]
        return (
            "VM requires access to SR: %s (%s)" % (sr["uuid"], sr["label"]),
            ("VM_REQUIRES_SR", _vm_ref(pool, vm["uuid"]), "%s (%s)" % (sr["uuid"], sr["label"])),
        )
    needed = (vm["mem_mib"] + _overhead_mib(vm["mem_mib"], vm["vcpus"])) * MIB
    available = pool.free_bytes(host, computed=True)
    if needed > available:
        return (
            "Not enough free memory",
            ("HOST_NOT_ENOUGH_FREE_MEMORY", str(needed), str(available)),
        )
    return None


def _find_host(pool: Pool, name: str) -> str:
    """on=: a host uuid or name-label, the first match (get_host_by_name_or_id)."""
    for h in pool.hosts.values():
        if h["uuid"] == name or h["label"] == name:
            return h["name"]
    raise cli_failure("Host %s not found" % name)


def _select_vms(pool: Pool, params: list[tuple[str, str]], ignore: set[str]) -> list[dict]:
    fields = CLASSES["vm"][0]
    filters = [("is-a-template", "false")]
    objs = list(pool.vms.values())
    for k, v in params:
        if k in STDPARAMS or k in ignore or k.split(":")[0] in ignore:
            continue
        if k == "vm":
            objs = [o for o in objs if v in (o["uuid"], o["label"])]
            continue
        base = k.split(":")[0]
        if not any(f[0] == base for f in fields):
            raise cli_failure(
                "Parameter '%s' is not a field of the VM class. Failed to select VM for "
                "operation." % k
            )
        filters.append((k, v))
    return _filter(pool, fields, objs, filters)


def _vm_op(ctx: Ctx, params: list[tuple[str, str]], ignore: set[str], op) -> int:
    """do_vm_op: one VM, or every selected one with --multiple (failures on stdout)."""
    given = dict(params)
    pool = Pool(ctx.db, time.time())
    vms = _select_vms(pool, params, ignore)
    if not vms:
        raise cli_failure("No matching VMs found")
    if len(vms) > 1 and given.get("multiple") != "true":
        raise cli_failure(
            "Multiple matches VMs found. --multiple required to complete the operation"
        )
    if len(vms) == 1:
        return op(vms[0]["uuid"])
    failed = []
    for vm in vms:
        try:
            op(vm["uuid"])
        except XeFailure as exc:
            lines = exc.text.rstrip("\n").split("\n")
            failed.append("operation failed on %s: %s" % (vm["uuid"], "\n".join(lines)))
    for text in reversed(failed):
        ctx.out(text + "\n")
    return 1 if failed else 0


def tool_vm_start(ctx: Ctx, params: list[tuple[str, str]]) -> int:
    """xe vm-start SELECTORS [on=HOST] [force=] [paused=] [--multiple]."""
    on = dict(params).get("on")

    def start(uuid: str) -> int:
        return _start_one(ctx, uuid, on)

    return _vm_op(ctx, params, {"on", "paused"}, start)


def _start_one(ctx: Ctx, uuid: str, on: str | None) -> int:
    db = ctx.db
    boot_s = _boot_s(db)
    while True:
        try:
            wait, target, delay, vm = _begin_start(ctx, uuid, on, boot_s)
        except XeFailure as exc:
            if exc.attempt is not None:
                with write_transaction(db):
                    row = db.execute("SELECT guest FROM xe_vms WHERE uuid = ?", (uuid,)).fetchone()
                    now = time.time()
                    record_start(db, row[0] or uuid, exc.attempt, now, now, False)
            raise
        if not wait:
            break
        time.sleep(min(wait, 5.0) + 0.01)
    began = time.time()
    time.sleep(delay)
    failure = None
    with write_transaction(db):
        now = time.time()
        db.execute(
            "UPDATE xe_vms SET starting_on = NULL, starting_until = 0 WHERE uuid = ?", (uuid,)
        )
        record = guest_record(db, vm["guest"]) if vm["guest"] else None
        host_up = db.execute("SELECT up FROM hosts WHERE name = ?", (target,)).fetchone()[0]
        if record is not None and record["start_fails"]:
            record_start(db, vm["guest"], target, began, now, False)
            failure = api_error(
                db,
                "SR_BACKEND_FAILURE_46",
                "",
                "The VDI is not available [opterr=VDI %s locked]" % _uuid("vdi", uuid),
                "",
            )
        elif not host_up:
            record_start(db, vm["guest"], target, began, now, False)
            failure = api_error(db, "INTERNAL_ERROR", "xenopsd internal error: Xenlight.Error(_)")
        else:
            _build(db, vm, target, began, now)
    # Raised once the transaction is committed: the reservation is released either way.
    if failure is not None:
        raise failure
    # xapi's VM.start sleeps the VM's start-delay once it runs, then returns (start_delay at
    # the end of Xapi_vm.start): the next VM of a start sequence waits that long after it.
    time.sleep(vm["start_delay"])
    return 0


def _build(db: sqlite3.Connection, vm: dict, target: str, began: float, now: float) -> None:
    """The VM's domain on ``target``: it runs there now."""
    if meta(db, "xe_ha", "0") == "1":
        # HA fenced the hosts that are down: no domain of this VM survives there
        db.execute(
            "DELETE FROM domains WHERE name = ? AND host IN (SELECT name FROM hosts WHERE up = 0)",
            (vm["guest"],),
        )
    cfg = {
        "name": vm["guest"],
        "memory": vm["mem_mib"],
        "maxmem": vm["mem_mib"],
        "vcpus": vm["vcpus"],
    }
    build_domain(db, target, cfg, now)
    guest_up(db, vm["guest"], target, now)
    record_start(db, vm["guest"], target, began, now, True)


def _begin_start(ctx: Ctx, uuid: str, on: str | None, boot_s: float):
    """Check and reserve a start: (seconds to wait for another start first, host, boot, vm)."""
    db = ctx.db
    with write_transaction(db):
        now = time.time()
        pool = Pool(db, now)
        vm = pool.vms[uuid]
        if vm["busy"] and vm["starting_until"] > now:
            # xapi serialises operations on one VM: wait for the other start, then re-check
            return vm["starting_until"] - now, None, 0.0, vm
        fire_armed(ctx, vm["guest"] or uuid)
        pool = Pool(db, now)
        vm = pool.vms[uuid]
        target = _reserve(ctx, pool, vm, on)
        delay = boot_s
        db.execute(
            "UPDATE xe_vms SET starting_on = ?, starting_until = ? WHERE uuid = ?",
            (target, now + delay, uuid),
        )
    return 0.0, target, delay, vm


def _reserve(ctx: Ctx, pool: Pool, vm: dict, on: str | None) -> str:
    """The host ``vm`` starts on, checked as XAPI checks it; XeFailure when it cannot."""
    if vm["power"] != "halted" or vm["busy"]:
        actual = "running" if vm["busy"] else vm["power"]
        raise api_error(pool.db, "VM_BAD_POWER_STATE", _vm_ref(pool, vm["uuid"]), "halted", actual)
    if on is not None:
        target = _find_host(pool, on)
        why = _start_check(pool, vm, target)
        if why is not None:
            failure = api_error(pool.db, *why[1])
            failure.attempt = target  # a start tried there (lab.status lists it, FAILED)
            raise failure
        return target
    # No on=: the affinity host first, then any host that passes (Xapi_vm_placement).
    order = sorted(pool.hosts, key=lambda n: (n != vm["affinity"], _num(vm["uuid"] + n)))
    reasons = []
    for name in order:
        why = _start_check(pool, vm, name)
        if why is None:
            return name
        reasons.append((pool.hosts[name]["label"], "Cannot start here [%s]" % why[0]))
    table = _record(sorted(reasons))
    raise XeFailure(
        api_error(pool.db, "NO_HOSTS_AVAILABLE").text,
        stdout="There are no suitable hosts to start this VM on.\n"
        "The following table provides per-host reasons for why the VM could not be started:\n\n"
        + table
        + "\n\n",
    )


def tool_vm_reset_powerstate(ctx: Ctx, params: list[tuple[str, str]]) -> int:
    """xe vm-reset-powerstate SELECTORS --force: halted in the database, if its host is dead."""
    if dict(params).get("force") != "true":
        raise cli_failure(NO_FORCE)

    def reset(uuid: str) -> int:
        with write_transaction(ctx.db):
            pool = Pool(ctx.db, time.time())
            vm = pool.vms[uuid]
            if vm["power"] in ("running", "paused") and vm["resident"]:
                if pool.live(vm["resident"]):
                    raise api_error(pool.db, "HOST_IS_LIVE", _host_ref(pool, vm["resident"]))
                ctx.db.execute(
                    "DELETE FROM domains WHERE name = ? AND host = ?", (vm["guest"], vm["resident"])
                )
        return 0

    return _vm_op(ctx, params, set(), reset)


def tool_transition(ctx: Ctx, params: list[tuple[str, str]]) -> int:
    """xe pool-emergency-transition-to-master, on a member: it becomes the master."""
    with write_transaction(ctx.db):
        _set_meta(ctx.db, "xe_master", ctx.host)
    _write_pool_conf(ctx.lab_dir, ctx.db)
    return 0


# --------------------------------------------------------------------------- the tool

COMMANDS = ("list", "param-get", "param-list")
USAGE = """Usage: xe <command> [-s server] [-pw passwd] [-p port] [-u user] [-pwf password-file]
  [command specific arguments]

To get help on a specific command: xe help <command>
To get a full listing of commands: xe help --all

Common command list
-------------------
    host-list, host-param-get, host-param-list, pool-list, pool-param-get, vm-list,
    vm-param-get, vm-param-list, vm-start, vm-reset-powerstate, sr-list, pbd-list,
    vbd-list, vdi-list
"""


def _parse(args: list[str]) -> list[tuple[str, str]]:
    """cli_frontend.parse_params_2: --x is x=true, -x VALUE a switch, else name=value."""
    switches = {"-u": "username", "-pw": "password", "-s": "server", "-h": "server", "-p": "port"}
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            out.append((a[2:], "true"))
        elif a.startswith("-"):
            if a not in switches:
                raise usage_error("Syntax error", "Unknown switch: %s" % a)
            if i + 1 >= len(args):
                raise usage_error("Syntax error", "")
            out.append((switches[a], args[i + 1]))
            i += 1
        else:
            name, _, value = a.partition("=")
            out.append((name, value))
        i += 1
    return out


def tool_xe(ctx: Ctx, args: list[str]) -> int:
    """xe: the commands a recovery needs, against the pool's master."""
    if not args or args[0] in ("help", "--help", "-h"):
        ctx.out(USAGE)
        return 0
    cmd = args[0]
    try:
        if "=" in cmd:
            raise usage_error("Syntax error", "command name is missing")
        params = _parse(args[1:])
        master = meta(ctx.db, "xe_master", "")
        here_master = master == ctx.host
        if cmd == "pool-emergency-transition-to-master":
            # On the master already: nothing to do (xapi returns at once).
            return 0 if here_master else tool_transition(ctx, params)
        if not here_master:
            up = ctx.db.execute("SELECT up FROM hosts WHERE name = ?", (master,)).fetchone()
            if up is None or not up[0]:
                # A member forwards to its master; with the master gone there is nobody to ask.
                ctx.err("Unable to contact server. Please check server and port settings.\n")
                return 1
        cls, _, verb = cmd.partition("-")
        if cls in CLASSES and verb in COMMANDS:
            pool = Pool(ctx.db, time.time())
            return {"list": _list, "param-get": _param_get, "param-list": _param_list}[verb](
                ctx, pool, cls, params
            )
        if cmd == "vm-start":
            return tool_vm_start(ctx, params)
        if cmd == "vm-reset-powerstate":
            return tool_vm_reset_powerstate(ctx, params)
        if cmd == "pool-recover-slaves":
            return 0
        raise usage_error("Unknown command", cmd)
    except XeFailure as exc:
        ctx.out(exc.stdout)
        ctx.err(exc.text)
        return 1


# --------------------------------------------------------------------------- faults


def _set_pbds(db: sqlite3.Connection, host: str, attached: bool) -> None:
    db.execute(
        "UPDATE xe_pbds SET attached = ? WHERE host = ? AND sr IN "
        "(SELECT uuid FROM xe_srs WHERE shared = 1)",
        (1 if attached else 0, host),
    )


def _set_enabled(db: sqlite3.Connection, host: str, enabled: bool) -> None:
    db.execute("UPDATE xe_hosts SET enabled = ? WHERE name = ?", (1 if enabled else 0, host))


FAULTS = {
    # the pool's shared SR unplugged from (or plugged back into) HOST: VM_REQUIRES_SR there
    "sr-unplugged": (("HOST",), lambda db, lab, v: _set_pbds(db, v["host"], False)),
    "sr-plugged": (("HOST",), lambda db, lab, v: _set_pbds(db, v["host"], True)),
    # armed: the shared SR unplugged from HOST at the next start acting on a VM other than
    # GUEST's (a run's plan, read before, then meets VM_REQUIRES_SR there)
    "sr-unplugged-on-start": (("GUEST", "HOST"), "armed"),
    "ha-enable": ((), lambda db, lab, v: _set_meta(db, "xe_ha", "1")),
    "ha-disable": ((), lambda db, lab, v: _set_meta(db, "xe_ha", "0")),
    # maintenance mode: xe host-disable / host-enable
    "host-disable": (("HOST",), lambda db, lab, v: _set_enabled(db, v["host"], False)),
    "host-enable": (("HOST",), lambda db, lab, v: _set_enabled(db, v["host"], True)),
    # the error wording of XCP-ng 8.0 (xapi 1.160, before 1.178) or of 8.1 and later
    "xapi-8.0": ((), lambda db, lab, v: _set_meta(db, "xe_wording", "old")),
    "xapi-8.2": ((), lambda db, lab, v: _set_meta(db, "xe_wording", "new")),
}
FAIL_MESSAGES = {"xe": ("Lost connection to the server.\n", "", 1)}
BACKEND = "xe"
TOOLS = {"xe": tool_xe}
# Armed faults (emulator.fire_armed): [kind] -> (db, lab_dir, guest, host).
ARMED = {"sr-unplugged-on-start": lambda db, lab, guest, host: _set_pbds(db, host, False)}


def _status_services(db: sqlite3.Connection, now: float) -> list[dict] | None:
    """The pool's VMs as lab.status lists them (by the lab's guest names), if this is a pool."""
    if not _has_pool(db) or meta(db, "backend", "") != BACKEND:
        return None
    pool = Pool(db, now)
    out = []
    for vm in sorted(pool.vms.values(), key=lambda v: v["guest"] or ""):
        if vm["control_of"]:
            continue
        out.append(
            {
                "name": vm["guest"],
                "state": vm["power"],
                "owner": vm["resident"],
                "last_owner": vm["affinity"],
            }
        )
    return out


HOOKS = {"services": _status_services}

# --------------------------------------------------------------------------- the lab's control side

HOST_TOOLS = ("xe",)
# /etc/xensource is a host's own: LAB/xensource in a command is LAB/hosts/HOST/xensource.
CONF_SHARED, CONF_HOST = "xensource", "xensource"
HOST_PATHS = {CONF_SHARED: CONF_HOST}


def summary(db: sqlite3.Connection, guests: list[dict], now: float) -> dict:
    """The pool's view: VMs running, halted; "quorate" is the master answering."""
    pool = Pool(db, now)
    vms = [v for v in pool.vms.values() if not v["control_of"]]
    running = sum(1 for v in vms if v["power"] == "running")
    master = pool.hosts.get(pool.master)
    return {
        "running": running,
        "down": len(vms) - running,
        "quorate": bool(master and master["up"]),
    }


def _write_pool_conf(lab_dir: str, db: sqlite3.Connection) -> None:
    master = meta(db, "xe_master", "")
    rows = list(db.execute("SELECT name, address FROM hosts ORDER BY nodeid"))
    address = next((r["address"] for r in rows if r["name"] == master), "")
    for r in rows:
        d = os.path.join(lab_dir, "hosts", r["name"], CONF_HOST)
        os.makedirs(d, exist_ok=True)
        text = "master" if r["name"] == master else "slave:%s" % address
        tmp = os.path.join(d, ".pool.conf.tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, os.path.join(d, "pool.conf"))


def _label(guest: str) -> str:
    """Name-labels as a pool has them: clones of one template share theirs; some have spaces."""
    if guest.startswith("web"):
        return "web server"
    if guest.startswith("reporting-"):
        return guest.replace("-", " ")
    return guest


def setup(lab_dir: str, db: sqlite3.Connection, guests: list[dict], active: bool) -> None:
    """The pool (hosts, VMs, SRs, PBDs; master the first host) from the scenario, if active."""
    hosts = [dict(r) for r in db.execute("SELECT * FROM hosts ORDER BY nodeid")]
    for h in hosts:
        shutil.rmtree(os.path.join(lab_dir, "hosts", h["name"], CONF_HOST), ignore_errors=True)
    with write_transaction(db):
        for t in TABLES:
            db.execute("DROP TABLE IF EXISTS %s" % t)
        if not active or not hosts:
            return
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        seed = meta(db, "seed", "1")
        _set_meta(db, "xe_pool", _uuid(seed, "pool"))
        _set_meta(db, "xe_master", hosts[0]["name"])
        _set_meta(db, "xe_ha", "0")
        _set_meta(db, "xe_wording", "new")
        shared = _uuid(seed, "sr", "shared")
        db.execute("INSERT INTO xe_srs VALUES (?, ?, 'nfs', 1)", (shared, SHARED_SR))
        for h in hosts:
            uuid = _uuid(seed, "host", h["name"])
            db.execute("INSERT INTO xe_hosts VALUES (?, ?, ?, 1)", (h["name"], uuid, h["name"]))
            local = _uuid(seed, "sr", "local", h["name"])
            db.execute("INSERT INTO xe_srs VALUES (?, 'Local storage', 'ext', 0)", (local,))
            for sr in (shared, local):
                db.execute(
                    "INSERT INTO xe_pbds VALUES (?, ?, ?, 1)",
                    (_uuid(seed, "pbd", sr, h["name"]), sr, h["name"]),
                )
            db.execute(
                "INSERT INTO xe_vms(uuid, guest, label, control_of, mem_mib, vcpus, auto_poweron) "
                "VALUES (?, NULL, ?, ?, ?, ?, 0)",
                (
                    _uuid(seed, "dom0", h["name"]),
                    "Control domain on host: %s" % h["name"],
                    h["name"],
                    h["dom0_mib"],
                    min(4, h["cpus"]),
                ),
            )
        names = {h["name"] for h in hosts}
        for g in guests:
            try:
                cfg = read_cfg(os.path.join(lab_dir, "xenconfig", g["cfg"]))
                mem, vcpus = cfg["memory"], cfg["vcpus"]
            except (OSError, ValueError, KeyError):
                mem, vcpus = 1024, 2  # the xm-style config a parser cannot read: its VM is fine
            n = _num(seed + g["guest"])
            # A VM that never ran was never set to start with the pool: halted, not ours.
            auto = g["since"] != 0 or g["running"]
            prio = {0: "restart", 1: "best-effort"}.get(n % 6, "")
            order = 1 if g["guest"].startswith("db") else 2 if g["guest"].startswith("app") else 0
            affinity = g["host"] if g["host"] in names and n % 2 == 0 else None
            db.execute(
                "INSERT INTO xe_vms(uuid, guest, label, control_of, mem_mib, vcpus, auto_poweron, "
                "ha_prio, vm_order, start_delay, affinity, sr) "
                "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _uuid(seed, "vm", g["guest"]),
                    g["guest"],
                    _label(g["guest"]),
                    mem,
                    vcpus,
                    1 if auto else 0,
                    prio,
                    order,
                    1 if order == 1 else 0,
                    affinity,
                    shared,
                ),
            )
    _write_pool_conf(lab_dir, db)
