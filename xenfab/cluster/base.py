"""The cluster-manager seam: how to read service state and how to start a guest.

A backend (rgmanager, xl-only clusters; XCP-ng later) implements ClusterBackend, registers itself
(``xenfab.cluster.register``) and nothing else in xenfab changes: it owns its vocabulary (states,
service names, quorum, where each command runs, the facts probes, the start command and how to
read and confirm it, where the run lock lives). Backends build command lines and parse outputs;
they never do I/O, so the same backend serves gathering, the start engine and offline tests.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import ConfigError, XenfabError

# One host-name rule for the config, the snapshot and the commands: the schema's.
from ..schema import HOST_NAME

# Xen accepts almost any byte in a domain name; we only let through what is safe to pass to a shell
# and to rgmanager, so a crafted config file cannot smuggle a command into `clusvcadm`.
GUEST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}$")


class Verdict(str, Enum):
    """What a state read says of a guest after an accepted start: one word for the backends'
    ``confirm`` and the engine's confirmation (checks.Confirmation.status).
    """

    WAIT = "wait"  # in transition (or the read lagging): look again
    STARTED = "started"  # running
    FAILED = "failed"  # worth a retry
    STUCK = "stuck"  # not to be retried (vanished, or in transition too long)
    GONE = "gone"  # no service any more (backend.confirm only)
    DOWN = "down"  # down again right after the start (backend.confirm only)

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


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
    # Down states that mean "the start just asked for failed" (worth a retry, not a wait).
    failed: frozenset[str] = frozenset()
    # False when no manager records which host runs a guest: a guest seen nowhere may then run
    # on any host that did not answer, so its liveness is unknown until that host is dead.
    owners_tracked: bool = True
    # Running states a service may be moved from once its owner is proven dead.
    movable: frozenset[str] = frozenset()
    # States of a guest that is down but claimed by nothing (xl: a config no autostart link or
    # pattern names): never started, unless a saved snapshot shows it ran (``--expect``).
    unclaimed: frozenset[str] = frozenset()

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
    """A guest's cluster service state; ``note`` says why, when the state needs explaining."""

    guest: str
    state: str
    owner: str | None = None
    last_owner: str | None = None
    note: str | None = None


@dataclass
class ClusterState:
    """What the cluster manager says: quorum, members, and one state per guest.

    ``members``: name -> online. ``fenced``: name -> whether the manager's own fencing record
    proves that member fenced after it left (the only proof of death a manager gives: offline
    alone is not); a member not in it was not asked about (online, or no fencing to read).
    """

    quorate: bool | None
    members: dict[str, bool] = field(default_factory=dict)
    services: dict[str, ServiceState] = field(default_factory=dict)
    source: str = ""
    error: str | None = None
    fenced: dict[str, bool] = field(default_factory=dict)
    # Backend-specific facts read with the state (xl: the autostart entries).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Gathered:
    """What one gather round brought, for a backend that builds its state from it (``complete``).

    ``configs``: guest name -> its config file; ``running``: guest name -> hosts whose domain
    list shows it; ``host_outputs``: each reachable host's probe outputs; ``unreadable``: config
    files that could not be read (path -> why); ``hosts``: every host of the environment,
    answered or not (None: those of ``host_outputs``).
    """

    configs: Mapping[str, str] = field(default_factory=dict)
    running: Mapping[str, list[str]] = field(default_factory=dict)
    host_outputs: Mapping[str, Mapping[str, Output]] = field(default_factory=dict)
    unreadable: Mapping[str, str] = field(default_factory=dict)
    hosts: tuple[str, ...] | None = None


# Where a backend's guest inventory (which guests exist, their RAM and vCPUs) and its host facts
# come from. CONFIG_FILES: the guest config files of ``guest_config_dir``, read on the master, and
# every host's own toolstack probes (rgmanager, xl). STATE_READ: the backend's state probes on the
# master, which know every host and guest (an XAPI pool master): ``inventory`` builds them.
CONFIG_FILES = "config-files"
STATE_READ = "state"


@dataclass
class Inventory:
    """The hosts and guests a backend's own state read knows (``snapshot.Host``/``Guest``)."""

    hosts: list[Any] = field(default_factory=list)
    guests: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


# Every host's facts: which toolstack answers, its memory and CPUs, its running domains.
TOOLSTACK_PROBES = [
    Probe("toolstack", 'echo "$t"'),
    Probe("info", '"$t" info'),
    Probe("list", '"$t" list'),
]
MASTER = "master"
TARGET = "target"


class ClusterBackend(ABC):
    """How one cluster manager is read and driven."""

    name: str = ""
    # A manager with a quorum: nothing is started unless it is known quorate.
    quorum: bool = True
    # Where the start command runs: MASTER (the host that reads the cluster) or TARGET.
    start_on: str = MASTER
    # What one guest's service is called in the manager's own words, as a format.
    service_format: str = "{guest}"
    # The tools that read the state and start a guest, as messages name them.
    state_tool: str = "the cluster state"
    start_tool: str = "the start command"
    # What an inquorate refusal tells the operator to do, in the manager's own words.
    quorum_hint: str = "restore quorum first"
    # Where the guest inventory and host facts come from: CONFIG_FILES or STATE_READ.
    inventory_source: str = CONFIG_FILES
    # True when the master answers for every host (facts and domain lists): the other hosts
    # are never asked. False: every host runs ``host_probes`` and lists its own domains.
    master_only: bool = False
    # True when the start command returns only once the guest's start delay (Guest.gate_s)
    # has passed (XAPI's vm-start sleeps start-delay): the next tier need not wait it again.
    start_includes_gate: bool = False

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        """A backend for one environment; ``options`` are its ``backend_options``, checked."""
        self.options = dict(options or {})

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Validate an environment's ``backend_options``; ConfigError naming ``where``."""
        if options:
            at = f"{where}." if where else ""
            raise ConfigError(
                f"{at}backend_options: backend {cls.name} takes none ({', '.join(options)})"
            )
        return {}

    def service_name(self, guest: str) -> str:
        """The manager's name for ``guest``'s service (rgmanager: ``vm:NAME``)."""
        return self.service_format.format(guest=guest)

    @property
    def reads_guest_configs(self) -> bool:
        """True when the inventory is the config files of ``guest_config_dir`` (required then)."""
        return self.inventory_source == CONFIG_FILES

    def host_probes(self) -> list[Probe]:
        """Commands every host runs in the gather batch (toolstack, info, domain list)."""
        return list(TOOLSTACK_PROBES)

    def inventory(
        self, cluster: ClusterState, outputs: Mapping[str, Output], master: str
    ) -> Inventory:
        """STATE_READ: the hosts and guests from the state probes' ``outputs`` read on ``master``.

        ``cluster`` is what ``parse_state`` made of the same outputs. Never raises on bad output:
        what cannot be read is an error of the Inventory.
        """
        raise NotImplementedError(f"backend {self.name} reads its inventory from config files")

    def domain_lists(self, state: ClusterState) -> dict[str, set[str] | str]:
        """``master_only``: each host's running guests as ``state`` shows them, or why unknown.

        A host missing from the answer, or given a reason instead of a set, is unproven: starts
        wait for it as for a host that did not list its domains.
        """
        raise NotImplementedError(f"backend {self.name} lists domains on every host")

    def complete(self, cluster: ClusterState, gathered: Gathered) -> ClusterState:
        """The cluster state once every host answered (``gathered``: configs, lists, outputs).

        A manager that tracks services itself returns ``cluster`` as is.
        """
        return cluster

    def live_state(
        self, domains: Mapping[str, Iterable[str]], guests: Iterable[str]
    ) -> ClusterState | None:
        """The state of ``guests`` from fresh domain lists alone, or None: read the probes.

        A manager without its own service state (xl) is read this way by the start engine.
        """
        return None

    def command_for(self, guest: Any, host: str, dead_owner: str | None = None) -> str:
        """``start_command`` for a snapshot Guest (its state and config file) onto ``host``.

        ``dead_owner``: the plan takes the guest over from that dead host (``takeover_from``).
        """
        state = getattr(guest, "state", None)
        config = getattr(guest, "config_file", None)
        return self.start_command(guest.name, host, state, config=config, dead_owner=dead_owner)

    def start_host(self, master: str, target: str) -> str:
        """The host the start command for ``target`` runs on."""
        return target if self.start_on == TARGET else master

    def lock_host(self, reader: str, configured: str) -> str:
        """The host holding the run lock: ``reader`` (the host that read the cluster state).

        ``configured`` is the environment's master, or its first host.
        """
        return reader

    def replan_state(self, state: str) -> str:
        """The state a guest whose start just failed is re-planned from (a down state)."""
        return state

    def confirm(self, svc: ServiceState | None) -> Verdict:
        """After an accepted start: STARTED, FAILED, WAIT, GONE or DOWN for ``svc``."""
        if svc is None:
            return Verdict.GONE
        kind = self.states.kind(svc.state)
        if kind == "running":
            return Verdict.STARTED
        if svc.state in self.states.failed:
            return Verdict.FAILED
        if kind == "transition":
            return Verdict.WAIT
        return Verdict.DOWN

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
        self,
        guest: str,
        host: str,
        state: str | None = None,
        *,
        config: str | None = None,
        dead_owner: str | None = None,
    ) -> str:
        """The shell command that starts ``guest`` (now in ``state``) on ``host``, names quoted.

        Pass the state the guest was just re-read in: some managers need a different command for
        a failed service (rgmanager must disable it before it can be enabled again). ``config``
        is the guest's config file, for a backend that starts from it (xl create).
        ``dead_owner``: the service is in a running state on that host, which is proven dead
        (declared dead for the run, or fenced after it left in the manager's record); the
        command moves it.
        """

    @abstractmethod
    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Interpret what the start command printed and returned."""

    # -- for people: the start in plain words, and a script to run by hand -----------------------

    def start_plain(
        self,
        guest: str,
        host: str,
        state: str | None = None,
        *,
        config: str | None = None,
        dead_owner: str | None = None,
    ) -> str:
        """The start as a person reads it; ``start_command`` is what is sent (and validates)."""
        self.start_command(guest, host, state, config=config, dead_owner=dead_owner)
        return self.plain_words(guest, host, state, dead_owner)

    def plain_words(self, guest: str, host: str, state: str | None, dead_owner: str | None) -> str:
        """How this backend says a start in words (names already validated by start_plain)."""
        return f"start {guest} on {host}"

    def script_lines(self, steps: Sequence[ScriptStep], runner: str) -> list[str]:
        """The body of a shell script that makes ``steps`` by hand on ``runner``, in order.

        This default sends each step's exact ``start_command``: correct, but long lines; a
        backend renders a guard function once and one short line per guest instead.
        """
        lines = [f"# Run on {runner}.", "fails=0"]
        for step in steps:
            command = self.start_command(
                step.guest, step.host, step.state, config=step.config, dead_owner=step.dead_owner
            )
            lines.append(f"( {command} ) || fails=$((fails + 1))")
        return lines


@dataclass(frozen=True)
class ScriptStep:
    """One planned start, as the script renderer hands it to a backend (plan order)."""

    guest: str
    host: str
    state: str | None
    tier: int = 0
    config: str | None = None
    dead_owner: str | None = None


def tier_comments(steps: Sequence[ScriptStep], line: Callable[[ScriptStep], str]) -> list[str]:
    """One line per step, each tier headed by a comment (steps come in plan order)."""
    out: list[str] = []
    tier: int | None = None
    for step in steps:
        if step.tier != tier:
            out.append(f"# tier {step.tier}")
            tier = step.tier
        out.append(line(step))
    return out
