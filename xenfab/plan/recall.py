"""What the history remembers of hosts declared dead: the guests that were theirs.

A backend with no cluster manager (xl) learns which down guests are ours from the hosts
themselves: a config linked from a host's autostart directory. A host that is dead cannot say
what it linked, nor what it ran; the last gather in which it answered can. The history
(xenfab.history, read at the I/O edge) finds that gather for each ``--dead`` host and hands it
to the plan as data, on the run's Policy (``Policy.recall``), so the start engine's replans
read it too. What it changes in the planner, and only there (``model._select_guests``):

- a guest the backend calls unclaimed (xl: ``not-ours``) that the dead host ran or linked then
  is ours for this run (it is still left alone wherever a live host lists it);
- with no gather in which a dead host answered, an unclaimed guest may be that host's: it stays
  down, said so, with the way out (``--expect SNAPSHOT.json``), never "not ours";
- a warning names each dead host's autostart entries: its xendomains starts them again when it
  boots, next to the copies this run starts.

Pure: imports nothing of Fabric or SSH.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostMemory:
    """One dead host as the latest saved gather in which it answered saw it."""

    host: str
    source: str  # the history file
    taken_at: str
    age_s: int
    running: tuple[str, ...] = ()  # domains its list showed then (Domain-0 aside)
    # Guests its autostart directory linked then; None: that gather did not read it.
    linked: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """The gather as messages name it: when, how old, and the file."""
        return f"the gather of {self.taken_at} ({age_text(self.age_s)} ago, {self.source})"

    def why(self, guest: str) -> str | None:
        """How this host claimed ``guest`` then (ran it, linked it, both), or None."""
        ran = guest in self.running
        linked = guest in (self.linked or ())
        if ran and linked:
            return "ran it and linked it from its autostart directory"
        if ran:
            return "ran it"
        if linked:
            return "linked it from its autostart directory"
        return None


@dataclass(frozen=True)
class Recall:
    """The history's memory of the hosts declared dead for a run (none remembered: absent)."""

    hosts: Mapping[str, HostMemory] = field(default_factory=dict)
    # The autostart directory of the backend (xl: backend_options.auto_dir), for the warning;
    # None: the backend starts nothing at boot, nothing to warn about.
    auto_dir: str | None = None
    # Where the history is kept, for the message of a host it never saw answer.
    where: str = "the history"

    def claim(self, guest: str, dead: Collection[str]) -> tuple[HostMemory, str] | None:
        """The first dead host that ran or linked ``guest`` when it last answered, and how."""
        for host in sorted(dead):
            mem = self.hosts.get(host)
            how = mem.why(guest) if mem is not None else None
            if mem is not None and how is not None:
                return mem, how
        return None

    def missing(
        self, dead: Collection[str], present: Collection[str], running: Collection[str]
    ) -> list[tuple[str, str]]:
        """(guest, reason) for each guest a dead host linked then that has no entry now."""
        out: dict[str, str] = {}
        for host in sorted(dead):
            mem = self.hosts.get(host)
            for name in mem.linked or () if mem is not None else ():
                if name in present or name in running or name in out:
                    continue
                out[name] = (
                    f"linked from {host}'s autostart directory in {mem.label}, and no "
                    "readable config gives its name now (see the warnings: config skipped)"
                )
        return sorted(out.items())

    def forgotten(self, dead: Collection[str]) -> list[str]:
        """The dead hosts no saved gather saw answer: what they claimed is unknown."""
        return sorted(h for h in dead if h not in self.hosts)

    def unknown_reason(self, hosts: list[str]) -> str:
        """The STILL DOWN reason of an unclaimed guest that a forgotten dead host may claim."""
        names = ", ".join(hosts)
        return (
            f"claimed by no host that answered; {names} (declared dead) answered no gather kept "
            f"in {self.where}: what it ran and linked is unknown, so this guest may be its; "
            "bring back what ran then with --expect SNAPSHOT.json (a snapshot saved with "
            "fab facts --format json while it answered)"
        )

    def warnings(self, dead: Collection[str]) -> list[str]:
        """What the plan says of each dead host: what it is remembered by, and its reboot."""
        out: list[str] = []
        for host in sorted(dead):
            mem = self.hosts.get(host)
            if mem is None:
                out.append(
                    f"{host} (declared dead): no gather in {self.where} saw it answer; the "
                    "guests it ran or linked are unknown (--expect SNAPSHOT.json brings back "
                    "what ran then)"
                )
            else:
                ran = ", ".join(mem.running) or "none"
                linked = ", ".join(mem.linked) if mem.linked is not None else "not read"
                out.append(
                    f"{host} (declared dead): as {mem.label} saw it: it ran {ran}; its "
                    f"autostart directory linked {linked}: those are ours for this run"
                )
            if self.auto_dir is None:
                continue
            if mem is not None and mem.linked is not None:
                if not mem.linked:
                    continue
                what = f"starts {', '.join(mem.linked)} again"
            else:
                what = "starts whatever it links again (unknown here)"
            out.append(
                f"when {host} boots, its xendomains {what}, next to the copies this run "
                f"starts elsewhere (one disk, two domains): before it boots, remove the links in "
                f"{self.auto_dir} on {host} (from a rescue shell), or boot it with xendomains "
                "disabled"
            )
        return out


def age_text(seconds: int) -> str:
    """``seconds`` as messages say an age: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
