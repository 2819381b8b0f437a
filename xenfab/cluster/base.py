"""The cluster-manager seam: how to read service state and how to start a guest.

A backend (rgmanager today; xl-only clusters or XCP-ng later) implements ClusterBackend and nothing
else in xenfab changes. Backends build command lines and parse outputs; they never do I/O, so the
same backend serves gathering, the start engine and offline tests.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..errors import XenfabError

# One host-name rule for the config, the snapshot and the commands: the schema's.
from ..schema import HOST_NAME

# Xen accepts almost any byte in a domain name; we only let through what is safe to pass to a shell
# and to rgmanager, so a crafted config file cannot smuggle a command into `clusvcadm`.
GUEST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}$")


class UnsafeName(XenfabError):
    """A guest or host name contains characters that must not reach a remote shell."""


def safe_guest(name: str) -> str:
    """Return ``name`` quoted for a shell, or raise UnsafeName."""
    if not GUEST_NAME.match(name or ""):
        raise UnsafeName(f"guest name {name!r} has characters xenfab will not send to a shell")
    return shlex.quote(name)


def safe_host(name: str) -> str:
    """Return ``name`` quoted for a shell, or raise UnsafeName."""
    if not HOST_NAME.match(name or ""):
        raise UnsafeName(f"host name {name!r} has characters xenfab will not send to a shell")
    return shlex.quote(name)


@dataclass(frozen=True)
class Probe:
    """A command to run in the batch; ``fallback_for`` runs it only when that probe failed."""

    name: str
    command: str
    fallback_for: str | None = None


@dataclass
class Output:
    """What one command printed (stdout and stderr merged) and its exit status."""

    text: str
    exit_code: int


@dataclass(frozen=True)
class StateVocabulary:
    """Which of a cluster manager's service states mean down, running, or in transition.

    ``down``: ours to start. ``running``: the guest occupies its owner. ``transition``: the
    manager is acting on it (wait for it or report it; never start it over). Any other state is
    unknown to us and left alone.
    """

    down: frozenset[str]
    running: frozenset[str]
    transition: frozenset[str]

    @property
    def occupying(self) -> frozenset[str]:
        """States in which the service holds its owner (running or in transition)."""
        return self.running | self.transition

    def kind(self, state: str | None) -> str:
        """``down``, ``running``, ``transition`` or ``unknown`` for ``state``."""
        if state in self.down:
            return "down"
        if state in self.running:
            return "running"
        if state in self.transition:
            return "transition"
        return "unknown"


@dataclass
class ServiceState:
    """A guest's cluster service state."""

    guest: str
    state: str
    owner: str | None = None
    last_owner: str | None = None


@dataclass
class ClusterState:
    """What the cluster manager says: quorum, members, and one state per guest."""

    quorate: bool | None
    members: dict[str, bool] = field(default_factory=dict)
    services: dict[str, ServiceState] = field(default_factory=dict)
    source: str = ""
    error: str | None = None


@dataclass
class StartOutcome:
    """The result of asking the cluster manager to start one guest on one host."""

    guest: str
    host: str
    ok: bool
    message: str
    exit_code: int
    acted_on: str | None = None
    running_on: str | None = None
    already_running: bool = False
    # A guard in the start command refused before anything was sent (the state had changed).
    refused: bool = False


class ClusterBackend(ABC):
    """How one cluster manager is read and driven."""

    name: str = ""

    @property
    @abstractmethod
    def states(self) -> StateVocabulary:
        """This manager's service states: which are down, running, in transition."""

    @abstractmethod
    def state_probes(self) -> list[Probe]:
        """Commands that read quorum and every guest's service state (run on the master)."""

    @abstractmethod
    def parse_state(self, outputs: dict[str, Output], source: str) -> ClusterState:
        """Turn the probes' outputs into a ClusterState; never raises on bad output."""

    @abstractmethod
    def start_command(
        self, guest: str, host: str, state: str | None = None, *, dead_owner: str | None = None
    ) -> str:
        """The shell command that starts ``guest`` (now in ``state``) on ``host``, names quoted.

        Pass the state the guest was just re-read in: some managers need a different command for
        a failed service (rgmanager must disable it before it can be enabled again).
        ``dead_owner``: the service is in a running state on that host, which is proven dead
        (declared dead for the run, or offline in the manager's word); the command moves it.
        """

    @abstractmethod
    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Interpret what the start command printed and returned."""
