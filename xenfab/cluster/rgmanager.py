"""rgmanager (RHEL 5/6): ``clustat`` to read, ``clusvcadm -e vm:NAME -m HOST`` to start."""

from __future__ import annotations

import shlex

from ..parse import ParseError, parse_clustat, parse_clusvcadm
from . import register
from .base import (
    ClusterBackend,
    ClusterState,
    Output,
    Probe,
    ServiceState,
    StartOutcome,
    StateVocabulary,
    safe_guest,
    safe_host,
)

VM_PREFIX = "vm:"

# rgmanager's service states (rg_state.h). Down: the service runs nowhere and rgmanager will not
# start it by itself (`stopped` is also what a failed enable leaves). Transitions: rgmanager is
# acting on it; starting it over would race rgmanager. `checking` is a status check of a started
# service. `uninitialized` and anything new are unknown: left alone.
DOWN_STATES = frozenset({"disabled", "failed", "stopped", "recoverable"})
RUNNING_STATES = frozenset({"started"})
TRANSITION_STATES = frozenset({"starting", "stopping", "recovering", "migrating", "checking"})
# A failed enable leaves the service `failed` (or `stopped`, already down): retried, not waited on.
STATES = StateVocabulary(DOWN_STATES, RUNNING_STATES, TRANSITION_STATES, frozenset({"failed"}))


class RgmanagerBackend(ClusterBackend):
    """Red Hat Cluster Suite's resource group manager."""

    name = "rgmanager"
    service_format = VM_PREFIX + "{guest}"
    state_tool = "clustat"
    start_tool = "clusvcadm"

    @property
    def states(self) -> StateVocabulary:
        """disabled/failed/stopped/recoverable down; started running; the rest transitions."""
        return STATES

    def state_probes(self) -> list[Probe]:
        """``clustat -x`` (names never truncated), the text layout only when XML fails."""
        return [
            Probe("clustat-x", "clustat -x"),
            Probe("clustat", "clustat", fallback_for="clustat-x"),
        ]

    def parse_state(self, outputs: dict[str, Output], source: str) -> ClusterState:
        """Parse clustat XML, or its text layout when XML was not available."""
        errors = []
        for probe in ("clustat-x", "clustat"):
            out = outputs.get(probe)
            if out is None:
                continue
            if out.exit_code != 0:
                first = out.text.strip().splitlines()[:1]
                errors.append(f"{probe} exited {out.exit_code}: {first[0] if first else ''}")
                continue
            try:
                parsed = parse_clustat(out.text, source=f"{source}: {probe.replace('-', ' -')}")
            except ParseError as exc:
                errors.append(str(exc))
                continue
            services = {}
            for svc_name, svc in parsed.services.items():
                if not svc_name.startswith(VM_PREFIX):
                    continue
                guest = svc_name[len(VM_PREFIX) :]
                services[guest] = ServiceState(guest, svc.state, svc.owner, svc.last_owner)
            members = {m.name: m.online for m in parsed.members}
            error = None
            if not parsed.rgmanager_running:
                error = f"{source}: rgmanager is not running; no service information"
            return ClusterState(parsed.quorate, members, services, probe, error)
        return ClusterState(None, source="", error="; ".join(errors) or "no clustat output")

    def start_command(
        self, guest: str, host: str, state: str | None = None, *, config: str | None = None
    ) -> str:
        """``clusvcadm -e vm:NAME -m HOST``; a failed service is disabled first, as rgmanager asks.

        Always the vm: prefix: clusvcadm would otherwise add ``service:``.
        """
        safe_guest(guest)
        service = shlex.quote(VM_PREFIX + guest)
        enable = f"clusvcadm -e {service} -m {safe_host(host)}"
        if state == "failed":
            # rgmanager refuses to enable a failed service; -d clears it. Only ever for a guest
            # just re-read as failed and absent from every host's xl list: -d on a running
            # service would stop it.
            return f"clusvcadm -d {service} && {enable}"
        return enable

    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Success only when clusvcadm says so and acted on the member we asked for."""
        text = output.text
        lines = text.splitlines(keepends=True)
        enable_at = [i for i, line in enumerate(lines) if "trying to enable" in line]
        if enable_at:
            # After a chained `clusvcadm -d`, only the enable's report says what happened.
            start = enable_at[-1]
            while start > 0 and (
                "not in membership list" in lines[start - 1] or "Closest match" in lines[start - 1]
            ):
                start -= 1
            text = "".join(lines[start:])
        try:
            res = parse_clusvcadm(text, output.exit_code, source=f"clusvcadm on {host}")
        except ParseError as exc:
            return StartOutcome(guest, host, False, str(exc), output.exit_code)
        acted = res.member
        ok = bool(res.ok)
        message = res.message
        if ok and acted and acted != host and not res.already_running:
            # rgmanager's fuzzy -m matching picked another member: it runs, but not where planned.
            message = f"{message} (clusvcadm chose member {acted}, not {host})"
        return StartOutcome(
            guest,
            host,
            ok,
            message,
            output.exit_code,
            acted_on=acted,
            running_on=res.running_on or (acted if ok and not res.already_running else None),
            already_running=bool(res.already_running),
        )


register(RgmanagerBackend.name, RgmanagerBackend)
