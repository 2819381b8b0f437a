"""vCPU cap: ``vcpu_ratio`` x physical CPUs, counting the running domains and the placed guests."""

from __future__ import annotations

from typing import ClassVar

from .base import (
    NO_LIMIT,
    Demand,
    GuestView,
    Kind,
    ModelView,
    Refusal,
    Row,
    Rule,
    StateView,
    floor_room,
    number_text,
    ref,
)


class VcpuCapRule(Rule):
    """vCPUs used (running domains without dom0, then placed guests) against the cap, if any.

    Always built, cap or not: its counters are the vCPUs the layout reports per host.
    """

    name: ClassVar[str] = "vCPU cap"
    policy_field: ClassVar[str | None] = "vcpu_ratio"
    counts: ClassVar[bool] = True
    order: ClassVar[int] = 10

    def __init__(
        self,
        cap: list[float | None],
        running: list[int],
        ratio: float | None = None,
        cpus: list[int] | None = None,
    ) -> None:
        self.cap = cap  # per host: the most vCPUs it may run (None: no cap)
        self.running = running  # per host: vCPUs of the domains running now (without dom0)
        self.ratio = ratio  # policy.vcpu_ratio: its refusals name it (the cap comes from it)
        self.cpus = cpus or [0] * len(cap)  # per host: physical CPUs

    @classmethod
    def build(cls, model: ModelView) -> list[Rule]:
        """The one vCPU rule, with each host's cap; a host of unknown CPU count gets none."""
        ratio = model.policy.vcpu_ratio
        usable = set(model.usable)
        cap: list[float | None] = []
        for index, host in enumerate(model.snapshot.hosts):
            if ratio is None:
                cap.append(None)
            elif host.cpus <= 0:
                # Unknown CPU count: a cap of 0 would refuse everything on a host that may be fine.
                cap.append(None)
                if index in usable:
                    model.warnings.append(f"{host.name}: CPU count unknown, vCPU cap not applied")
            else:
                cap.append(ratio * host.cpus)
        hosts = model.snapshot.hosts
        return [cls(cap, [h.vcpus_used for h in hosts], ratio, [h.cpus for h in hosts])]

    def start(self) -> list[int]:
        """vCPUs used per host before the plan."""
        return list(self.running)

    def charge(self, counters: list[int], guest: GuestView, host: int, sign: int) -> None:
        """The guest's vCPUs join (or leave) the host's."""
        counters[host] += sign * guest.vcpus

    def fits(self, state: StateView, guest: GuestView, host: int) -> bool:
        """True when the host's vCPU cap (if any) takes the guest's vCPUs."""
        cap = self.cap[host]
        return cap is None or state.counter(self)[host] + guest.vcpus <= cap

    def copies(self, state: StateView, guest: GuestView, host: int) -> int:
        """Guests of this vCPU count the cap still takes."""
        cap = self.cap[host]
        if cap is None or guest.vcpus <= 0:
            return NO_LIMIT
        return floor_room(cap, state.counter(self)[host]) // guest.vcpus

    def refusal(self, state: StateView, guest: GuestView, host: int) -> Refusal | None:
        """'vCPU cap: 30 of 32 used, 4 needed (vcpu_ratio 2 x 16 CPUs)'."""
        if self.fits(state, guest, host):
            return None
        cap = self.cap[host]
        assert cap is not None
        used = state.counter(self)[host]
        text = f"vCPU cap: {used} of {number_text(cap)} used, {guest.vcpus} needed"
        # The cap is the policy's number: name it, so the reader knows which key to change.
        if self.ratio is not None:
            text += f" (vcpu_ratio {number_text(self.ratio)} x {self.cpus[host]} CPUs)"
        return ref(
            self,
            text,
            vcpus_used=used,
            vcpu_cap=cap,
            needed_vcpus=guest.vcpus,
            vcpu_ratio=self.ratio,
            cpus=self.cpus[host],
        )

    def host_key(self, state: StateView, host: int) -> int:
        """vCPUs used on the host."""
        return state.counter(self)[host]

    def kind_key(self, guest: GuestView, relaxed: bool) -> int:
        """The guest's vCPUs."""
        return guest.vcpus

    def rows(
        self, base: StateView, kinds: list[Kind], columns: list[tuple[int, int]], relaxed: bool
    ) -> list[Row]:
        """Per capped host: the guests' vCPUs <= the cap less the vCPUs used in ``base``."""
        per_host: dict[int, list[tuple[int, int]]] = {}
        for col, (kind, host) in enumerate(columns):
            if self.cap[host] is not None and kinds[kind].example.vcpus > 0:
                per_host.setdefault(host, []).append((col, kinds[kind].example.vcpus))
        used = base.counter(self)
        out = []
        for host, terms in per_host.items():
            cap = self.cap[host]
            assert cap is not None
            out.append(Row(terms, floor_room(cap, used[host])))
        return out

    def cannot_hold(self, demand: Demand, hosts: list[int]) -> bool:
        """Every host capped, and the caps' room in all is short of the vCPUs asked."""
        room = 0.0
        for host in hosts:
            cap = self.cap[host]
            if cap is None:
                return False
            room += max(cap - self.running[host], 0)
        return bool(hosts) and demand.vcpus > room
