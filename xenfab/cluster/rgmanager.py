"""rgmanager (RHEL 5/6): ``clustat`` to read, ``clusvcadm -e vm:NAME -m HOST`` to start."""

from __future__ import annotations

from ..parse import ParseError, parse_clustat, parse_clusvcadm
from .base import (
    ClusterBackend,
    ClusterState,
    Output,
    Probe,
    ServiceState,
    StartOutcome,
    safe_guest,
    safe_host,
)

VM_PREFIX = "vm:"


class RgmanagerBackend(ClusterBackend):
    """Red Hat Cluster Suite's resource group manager."""

    name = "rgmanager"

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

    def start_command(self, guest: str, host: str) -> str:
        """``clusvcadm -e vm:NAME -m HOST``: always the vm: prefix (clusvcadm adds service:)."""
        return f"clusvcadm -e {safe_guest(VM_PREFIX + guest)} -m {safe_host(host)}"

    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Success only when clusvcadm says so and acted on the member we asked for."""
        try:
            res = parse_clusvcadm(output.text, output.exit_code, source=f"clusvcadm on {host}")
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
