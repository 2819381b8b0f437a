"""XCP-ng / XenServer pools (``backend: xe``): everything from the pool master, through ``xe``.

XAPI knows every host and VM, so only the master is asked (one SSH connection, one batch): the
pool (master, HA), the hosts (enabled, memory, ``cpu_info``, live; ``memory-free-computed``,
the free memory xapi refuses a start on, which ``host-list`` does not print, one
``host-param-get`` per host) and the VMs. Identity is the UUID everywhere (plan, commands,
audit, lock); name-labels, which hold spaces and need not be unique, are for people.

Which halted VMs are ours: ``other-config:auto_poweron=true``, or a uuid/name-label pattern of
``backend_options.guests``, or (``--expect``) one the snapshot shows running; the others are
``not-ours``. Control domains, templates and snapshots never. With pool HA enabled, a halted VM
with ``ha-restart-priority`` restart or best-effort is left to HA (``ha``); a host XAPI marks not
live is then dead for the run (HA fenced it); without HA a dead host needs ``--dead``. A start
is ``xe vm-start uuid=VM on=HOST`` on the master, confirmed by power-state running on that host.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..parse import ParseError, parse_xe_error, parse_xe_map, parse_xe_records
from ..schema import HOST_NAME
from . import register
from .base import (
    MASTER,
    STATE_READ,
    ClusterBackend,
    ClusterState,
    Inventory,
    Output,
    Probe,
    ServiceState,
    StartOutcome,
    StateVocabulary,
    safe_guest,
    safe_host,
)

HALTED, RUNNING, PAUSED, SUSPENDED = "halted", "running", "paused", "suspended"
NOT_OURS = "not-ours"
# Halted, but HA restarts it (pool HA enabled, ha-restart-priority restart or best-effort): on
# xapi >= 25.30 HA starts every halted best-effort VM when hosts join; never race it.
HA = "ha"
HA_PRIORITIES = frozenset({"restart", "best-effort"})
STATES = StateVocabulary(
    frozenset({HALTED}),
    frozenset({RUNNING, PAUSED}),
    frozenset(),
    frozenset(),
    movable=frozenset({RUNNING, PAUSED}),
    unclaimed=frozenset({NOT_OURS}),
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NID = "<not in database>"
MIB = 1024 * 1024
DEFAULT_POOL_CONF = "/etc/xensource/pool.conf"
_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]{1,4095}$")
OPTION_KEYS = {"guests", "pool_conf"}
HOST_PARAMS = "uuid,name-label,enabled,memory-total,memory-free,cpu_info,host-metrics-live"
VM_PARAMS = (
    "uuid,name-label,is-a-template,is-a-snapshot,is-control-domain,power-state,"
    "memory-overhead,memory-static-max,VCPUs-max,VCPUs-at-startup,resident-on,affinity,"
    "other-config,ha-restart-priority,start-delay,order"
)
# Which hosts can reach each VM's storage: a start on a host without a plugged PBD of one of
# its SRs fails VM_REQUIRES_SR. VBD -> VDI -> SR takes two lists (a VBD record names no SR);
# empty VBDs (a CD drive with no disc) need no SR.
PBD_PARAMS = "host-uuid,sr-uuid,currently-attached"
VBD_PARAMS = "vm-uuid,vdi-uuid"
VDI_PARAMS = "uuid,sr-uuid"
# What the guard in front of a power-state reset prints when it refuses (nothing was sent).
GUARD_REFUSED = "XENFAB-GUARD-REFUSED"
PROMOTE_HINT = (
    "a pool needs its master: if the master is gone for good, promote a member "
    "(on it: xe pool-emergency-transition-to-master, then xe pool-recover-slaves) and point "
    "the environment's master at it"
)


class XeBackend(ClusterBackend):
    """An XCP-ng / XenServer pool, driven through its master's ``xe``."""

    name = "xe"
    # "Quorum" is the master's word: True only when the host read answers as the pool master.
    quorum = True
    start_on = MASTER
    state_tool = "xe vm-list"
    start_tool = "xe vm-start"
    quorum_hint = PROMOTE_HINT
    inventory_source = STATE_READ
    master_only = True
    # xapi's VM.start sleeps the VM's start-delay once it runs, before returning.
    start_includes_gate = True

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: str) -> dict[str, Any]:
        """``guests`` (uuid or name-label patterns, also ours), ``pool_conf`` (its path)."""
        unknown = sorted(set(options) - OPTION_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}.backend_options: unknown key(s) {', '.join(unknown)} "
                f"(xe knows {', '.join(sorted(OPTION_KEYS))})"
            )
        guests = options.get("guests", [])
        if isinstance(guests, str):
            guests = [guests]
        if not isinstance(guests, list) or not all(isinstance(g, str) and g for g in guests):
            raise ConfigError(
                f"{where}.backend_options.guests: a list of VM uuid or name-label patterns"
            )
        conf = options.get("pool_conf", DEFAULT_POOL_CONF)
        if isinstance(conf, str):
            from ..paths import expand_path  # ~ and $VARS ($XENFAB_LAB_DIR in the lab)

            conf = expand_path(conf)
        if not isinstance(conf, str) or not _PATH.match(conf) or ".." in conf.split("/"):
            raise ConfigError(
                f"{where}.backend_options.pool_conf: {conf!r} is not an absolute path"
            )
        return {"guests": list(guests), "pool_conf": conf}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        """An xe backend; ``options`` as ``check_options`` returns them (defaults otherwise)."""
        super().__init__(self.check_options(options or {}, "backend_options"))

    @property
    def states(self) -> StateVocabulary:
        """halted down; running/paused running; not-ours, ha, suspended left alone."""
        return STATES

    def host_probes(self) -> list[Probe]:
        """Nothing per host: the master's state read holds every host's facts."""
        return []

    def state_probes(self) -> list[Probe]:
        """The pool role, the pool, its hosts, their computed free memory, and the VMs."""
        conf = shlex.quote(self.options.get("pool_conf", DEFAULT_POOL_CONF))
        return [
            Probe("pool-role", f"cat {conf}"),
            Probe("pool", "xe pool-list params=uuid,master,ha-enabled"),
            Probe("hosts", f"xe host-list params={HOST_PARAMS}"),
            # An expensive field: host-list prints <expensive field>; param-get computes it.
            Probe(
                "free",
                "for h in $(xe host-list params=uuid --minimal | tr , ' '); do "
                'printf "%s " "$h"; xe host-param-get uuid="$h" '
                "param-name=memory-free-computed || echo; done",
            ),
            Probe("vms", f"xe vm-list params={VM_PARAMS}"),
            Probe("pbds", f"xe pbd-list params={PBD_PARAMS}"),
            Probe("vbds", f"xe vbd-list empty=false params={VBD_PARAMS}"),
            Probe("vdis", f"xe vdi-list params={VDI_PARAMS}"),
        ]

    def parse_state(self, outputs: dict[str, Output], source: str) -> ClusterState:
        """The pool as its master tells it; a member (or no answer) is no master: refused."""
        role = outputs.get("pool-role")
        if role is not None and role.exit_code == 0 and role.text.strip().startswith("slave"):
            at = role.text.strip().partition(":")[2].strip() or "unknown"
            return ClusterState(
                False,
                source="pool.conf",
                error=f"{source} is a pool member, not its master (master: {at}); {PROMOTE_HINT}",
            )
        records: dict[str, list[dict[str, str]]] = {}
        for probe in ("pool", "hosts", "vms"):
            out = outputs.get(probe)
            if out is None:
                return ClusterState(None, error=f"{source}: xe {probe}: no output")
            if out.exit_code != 0:
                err = parse_xe_error(out.text, out.exit_code)
                return ClusterState(
                    None, error=f"{source}: xe {probe} failed: {err.message}; {PROMOTE_HINT}"
                )
            try:
                records[probe] = parse_xe_records(out.text, source=f"{source}: xe {probe}")
            except ParseError as exc:
                return ClusterState(None, error=str(exc))
        if len(records["pool"]) != 1:
            return ClusterState(None, error=f"{source}: xe pool-list: not one pool")
        pool = records["pool"][0]
        ha = pool.get("ha-enabled") == "true"
        hosts = {h["uuid"]: h for h in records["hosts"] if _ref(h.get("uuid"))}
        members: dict[str, bool] = {}
        fenced: dict[str, bool] = {}
        for uuid, h in hosts.items():
            live = h.get("host-metrics-live") == "true"
            if live:
                members[uuid] = True
            elif ha:
                # With HA on, XAPI marks a host not live only once HA has fenced it: the pool's
                # proof of death. Without HA, not live is only not answering (needs --dead).
                members[uuid] = False
                fenced[uuid] = True
        patterns = list(self.options.get("guests", []))
        services: dict[str, ServiceState] = {}
        vms: dict[str, dict[str, str]] = {}
        for vm in records["vms"]:
            uuid = vm.get("uuid", "")
            if not _ref(uuid):
                continue
            vms[uuid] = vm
            if "true" in (
                vm.get("is-control-domain"),
                vm.get("is-a-template"),
                vm.get("is-a-snapshot"),
            ):
                continue
            services[uuid] = self._service(uuid, vm, ha, patterns, hosts)
        return ClusterState(
            True,
            members,
            services,
            fenced=fenced,
            source="xe vm-list",
            extra={
                "ha": ha,
                "master": pool.get("master"),
                "hosts": hosts,
                "vms": vms,
                "free": _free(outputs.get("free")),
                "storage": _storage(outputs, source),
            },
        )

    def _service(
        self,
        uuid: str,
        vm: dict[str, str],
        ha: bool,
        patterns: list[str],
        hosts: Mapping[str, Any],
    ) -> ServiceState:
        """One VM's service state, owner (resident-on) and preferred host (affinity)."""
        power = vm.get("power-state", "")
        label = vm.get("name-label", "")
        resident = _ref(vm.get("resident-on"))
        affinity = _ref(vm.get("affinity"))
        if power in (RUNNING, PAUSED):
            return ServiceState(uuid, power, resident, resident)
        if power != HALTED:
            note = f"{power or 'unknown power state'}: resume it with xe vm-resume, not a start"
            return ServiceState(uuid, power or "unknown", None, None, note)
        prio = vm.get("ha-restart-priority", "")
        last = affinity if affinity in hosts else None
        if ha and prio in HA_PRIORITIES:
            note = f"ha-restart-priority {prio} and pool HA enabled: left to HA"
            return ServiceState(uuid, HA, None, last, note)
        try:
            auto = parse_xe_map(vm.get("other-config", "")).get("auto_poweron") == "true"
        except ParseError:
            auto = False
        pattern = next(
            (p for p in patterns if fnmatch.fnmatchcase(uuid, p) or fnmatch.fnmatchcase(label, p)),
            None,
        )
        if auto:
            return ServiceState(uuid, HALTED, None, last, "other-config:auto_poweron=true")
        if pattern is not None:
            note = f"matches backend_options.guests {pattern!r}"
            return ServiceState(uuid, HALTED, None, last, note)
        note = "halted, not auto_poweron nor in backend_options.guests: not ours to start"
        return ServiceState(uuid, NOT_OURS, None, last, note)

    def inventory(
        self, cluster: ClusterState, outputs: Mapping[str, Output], master: str
    ) -> Inventory:
        """Hosts by uuid (name-label as label), guests by uuid with their size, from the read."""
        from ..values import Domain, Guest, Host

        inv = Inventory()
        if cluster.error is not None or not cluster.extra:
            return inv
        ha = bool(cluster.extra.get("ha"))
        free: dict[str, int] = cluster.extra.get("free", {})
        vms: dict[str, dict[str, str]] = cluster.extra.get("vms", {})
        by_host: dict[str, list[Any]] = {}
        for uuid, vm in vms.items():
            host = _ref(vm.get("resident-on"))
            if host is None or vm.get("power-state") not in (RUNNING, PAUSED):
                continue
            control = vm.get("is-control-domain") == "true"
            name = "Domain-0" if control else uuid
            mem = (_int(vm.get("memory-static-max")) or 0) // MIB
            cpus = _int(vm.get("VCPUs-at-startup")) or _int(vm.get("VCPUs-max")) or 0
            by_host.setdefault(host, []).append(Domain(name, mem, cpus, vm.get("power-state", "")))
        for uuid, h in sorted(cluster.extra.get("hosts", {}).items()):
            label = h.get("name-label") or None
            host = Host(name=uuid, label=label, toolstack="xe")
            host.domains = sorted(by_host.get(uuid, []), key=lambda d: d.name)
            total = _int(h.get("memory-total"))
            host.total_mib = (total or 0) // MIB
            computed = free.get(uuid)
            if computed is None:
                inv.warnings.append(
                    f"{uuid} ({label}): memory-free-computed unread, using memory-free"
                )
                computed = _int(h.get("memory-free")) or 0
            host.free_mib = computed // MIB
            try:
                cpus = parse_xe_map(h.get("cpu_info", "")).get("cpu_count", "")
            except ParseError:
                cpus = ""
            host.cpus = int(cpus) if cpus.isdigit() else 0
            if h.get("host-metrics-live") != "true":
                host.reachable = False
                host.error = f"{uuid} ({label}): XAPI marks it not live" + (
                    " (HA enabled: fenced, dead for the run)"
                    if ha
                    else f"; its VMs' liveness is unknown until --dead {uuid}"
                )
            elif h.get("enabled") != "true":
                host.disabled = "disabled in XAPI (maintenance)"
            if total is None:
                host.reachable, host.error = False, f"{uuid} ({label}): memory-total unread"
            inv.hosts.append(host)
            if host.error:
                inv.errors.append(host.error)
        tiers = _order_tiers(vms)
        storage: tuple[dict[str, set[str]], dict[str, set[str]]] | str = cluster.extra.get(
            "storage", "not read"
        )
        if isinstance(storage, str):
            inv.warnings.append(f"SR plug state unread ({storage}): VM_REQUIRES_SR is not foreseen")
        for uuid, svc in sorted(cluster.services.items()):
            vm = vms.get(uuid, {})
            guest = Guest(name=uuid, label=vm.get("name-label") or None, state=svc.state)
            guest.owner, guest.last_owner = svc.owner, svc.last_owner
            mem = _int(vm.get("memory-static-max"))
            guest.memory_mib = -(-mem // MIB) if mem else 0
            guest.vcpus = _int(vm.get("VCPUs-at-startup")) or _int(vm.get("VCPUs-max")) or 1
            if svc.owner:
                guest.running_on = [svc.owner]
            if svc.note and self.states.kind(svc.state) == "unknown":
                guest.reason = svc.note
            if not mem:
                guest.plannable, guest.reason = False, "memory-static-max unread"
            # xapi refuses a start unless static-max plus the VM's overhead is free.
            overhead = _int(vm.get("memory-overhead"))
            guest.overhead_mib = -(-overhead // MIB) if overhead else 0
            guest.tier = tiers.get(uuid)
            guest.gate_s = float(_int(vm.get("start-delay")) or 0)
            if not isinstance(storage, str):
                guest.refused_hosts = _unplugged(uuid, storage, inv.hosts)
            inv.guests.append(guest)
        return inv

    def domain_lists(self, state: ClusterState) -> dict[str, set[str] | str]:
        """Each live host's running VMs; a host XAPI marks not live is unproven (without HA)."""
        hosts: Mapping[str, Mapping[str, str]] = state.extra.get("hosts", {})
        vms: Mapping[str, Mapping[str, str]] = state.extra.get("vms", {})
        out: dict[str, set[str] | str] = {}
        for uuid, h in hosts.items():
            if h.get("host-metrics-live") == "true":
                out[uuid] = set()
            else:
                out[uuid] = "XAPI marks it not live: what it runs is unknown"
        for uuid, vm in vms.items():
            host = _ref(vm.get("resident-on"))
            if vm.get("power-state") in (RUNNING, PAUSED) and host is not None:
                listed = out.get(host)
                if isinstance(listed, set):
                    listed.add(uuid)
        return out

    def live_state(
        self, domains: Mapping[str, Iterable[str]], guests: Iterable[str]
    ) -> ClusterState | None:
        """None: the master's state read is the state."""
        return None

    def start_command(
        self,
        guest: str,
        host: str,
        state: str | None = None,
        *,
        config: str | None = None,
        dead_owner: str | None = None,
    ) -> str:
        """``xe vm-start uuid=VM on=HOST``; off a dead owner, its power state is reset first.

        The reset (``vm-reset-powerstate --force``) runs only behind a guard in the same
        command that re-reads the dead owner's liveness and refuses unless XAPI still marks it
        not live: a host that came back keeps its VM.
        """
        vm = _uuid(guest, "VM")
        on = _uuid(host, "host")
        start = f"xe vm-start uuid={vm} on={on}"
        if dead_owner is None:
            return start
        dead = _uuid(dead_owner, "host")
        return (
            f"l=$(xe host-param-get uuid={dead} param-name=host-metrics-live 2>&1); "
            f'if [ "$l" != false ]; then echo {GUARD_REFUSED} live "$l"; exit 3; fi; '
            f"xe vm-reset-powerstate uuid={vm} --force && {start}"
        )

    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Exit 0: started; XAPI's errors become the outcomes rgmanager's do."""
        if GUARD_REFUSED in output.text:
            return StartOutcome(
                guest,
                host,
                False,
                f"not reset: XAPI no longer marks the old owner of {guest} not live; nothing sent",
                output.exit_code,
                refused=True,
            )
        try:
            err = parse_xe_error(output.text, output.exit_code, source=f"xe vm-start on {host}")
        except ParseError as exc:
            return StartOutcome(guest, host, False, str(exc), output.exit_code)
        if err.ok:
            return StartOutcome(guest, host, True, "xe vm-start done", 0, acted_on=host)
        if err.code == "VM_BAD_POWER_STATE" and err.params.get("actual") in (RUNNING, PAUSED):
            return StartOutcome(
                guest,
                host,
                False,
                f"{guest} is already {err.params['actual']}: someone else started it",
                output.exit_code,
                already_running=True,
            )
        return StartOutcome(guest, host, False, err.message, output.exit_code)


def _ref(value: str | None) -> str | None:
    """A reference field's uuid, or None (``<not in database>``, ``<invalid reference>``, empty).

    Any name safe as a host name passes, not only a uuid: XAPI prints uuids, and the contract
    tests' pools use short names.
    """
    return value if value and HOST_NAME.match(value) else None


def _int(value: str | None) -> int | None:
    """A decimal integer field, or None."""
    return int(value) if value and value.isdigit() and len(value) < 30 else None


def _uuid(value: str, what: str) -> str:
    """``value`` quoted for a shell: a uuid (what the plan holds), or at least a safe name."""
    if UUID.match(value or ""):
        return value
    return safe_guest(value) if what == "VM" else safe_host(value)


def _order_tiers(vms: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """VM uuid -> tier from XAPI's ``order``: 1 for the lowest order set, and so on.

    ``order`` 0 is XAPI's default (never set) and a negative one is HA's "last": both come
    after every ordered VM. No VM ordered: no tiers (the policy's default tier for all).
    """
    orders: dict[str, int] = {}
    for uuid, vm in vms.items():
        if "true" in (vm.get("is-control-domain"), vm.get("is-a-template")):
            continue
        order = _int(vm.get("order"))  # digits only: a negative order reads as unset
        orders[uuid] = order or 0
    ranks = {o: i for i, o in enumerate(sorted({o for o in orders.values() if o > 0}), 1)}
    if not ranks:
        return {}
    last = len(ranks) + 1
    return {uuid: ranks.get(o, last) for uuid, o in orders.items()}


def _storage(
    outputs: Mapping[str, Output], source: str
) -> tuple[dict[str, set[str]], dict[str, set[str]]] | str:
    """(VM uuid -> its SRs, SR -> the hosts it is plugged on), or why they are unread."""
    records: dict[str, list[dict[str, str]]] = {}
    for probe in ("pbds", "vbds", "vdis"):
        out = outputs.get(probe)
        if out is None:
            return f"xe {probe[:-1]}-list: no output"
        if out.exit_code != 0:
            return f"xe {probe[:-1]}-list failed: {parse_xe_error(out.text, out.exit_code).message}"
        try:
            records[probe] = parse_xe_records(out.text, source=f"{source}: xe {probe}")
        except ParseError as exc:
            return str(exc)
    sr_of = {r.get("uuid", ""): r.get("sr-uuid", "") for r in records["vdis"]}
    srs: dict[str, set[str]] = {}
    for r in records["vbds"]:
        sr = _ref(sr_of.get(r.get("vdi-uuid", "")))
        vm = _ref(r.get("vm-uuid"))
        if vm and sr:
            srs.setdefault(vm, set()).add(sr)
    plugged: dict[str, set[str]] = {}
    for r in records["pbds"]:
        sr, host = _ref(r.get("sr-uuid")), _ref(r.get("host-uuid"))
        if sr and host:
            hosts = plugged.setdefault(sr, set())
            if r.get("currently-attached") == "true":
                hosts.add(host)
    return srs, plugged


def _unplugged(
    vm: str, storage: tuple[dict[str, set[str]], dict[str, set[str]]], hosts: list[Any]
) -> dict[str, str]:
    """Host -> why ``vm`` cannot start there: one of its SRs has no plugged PBD on it."""
    srs, plugged = storage
    out: dict[str, str] = {}
    for h in hosts:
        missing = sorted(sr for sr in srs.get(vm, ()) if h.name not in plugged.get(sr, ()))
        if missing:
            out[h.name] = f"SR {', '.join(missing)} not plugged here (xe pbd-list)"
    return out


def _free(out: Output | None) -> dict[str, int]:
    """The ``free`` probe's lines (``UUID BYTES``) as host uuid -> bytes."""
    found: dict[str, int] = {}
    if out is None:
        return found
    for line in out.text.splitlines():
        uuid, _, value = line.strip().partition(" ")
        n = _int(value.strip())
        if _ref(uuid) and n is not None:
            found[uuid] = n
    return found


register(XeBackend.name, XeBackend)
