"""Readiness probes (``start.ready``): is a started guest answering?

A probe is a short command run on a cluster host over the SSH connections the run already
holds (the engine's SessionPool): no new network path from the workstation. Each is bounded
in time twice: by the tool's own limit (``ping -W``, ``nc -w``, ``timeout``) and by the
command timeout given to the pool. Names and ports are validated and quoted here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cluster import safe_guest

if TYPE_CHECKING:
    from .schedule import Job

STARTED = "started"
# Seconds between two probes of one guest that did not answer yet.
PROBE_INTERVAL_S = 1.0
# The probe's own limits: ping waits 1 s for its reply, nc 2 s for its connection, a command
# probe 10 s; the pool's timeout for the whole SSH command is a little above each.
PING_WAIT_S = 1
NC_WAIT_S = 2
COMMAND_WAIT_S = 10
SSH_SLACK_S = 5.0


def probe_command(probe: str, guest: str) -> str:
    """The shell command for ``probe`` of ``guest``; UnsafeName/ValueError if it cannot be.

    ``ping`` and ``tcp:PORT`` use the forms every Linux host has (iputils ping, netcat);
    ``command:/PATH`` runs PATH with the guest's name as its one argument (exit 0: ready).
    """
    name = safe_guest(guest)
    if probe == "ping":
        return f"ping -c 1 -W {PING_WAIT_S} {name}"
    kind, _, arg = probe.partition(":")
    if kind == "tcp":
        port = int(arg)
        if not 1 <= port <= 65535 or arg != str(port):
            raise ValueError(f"probe {probe!r}: port out of range")
        return f"nc -z -w {NC_WAIT_S} {name} {port}"
    if kind == "command" and arg.startswith("/"):
        return f"timeout {COMMAND_WAIT_S} {shlex.quote(arg)} {name}"
    raise ValueError(f"unknown probe {probe!r}")


def probe_timeout(probe: str) -> float:
    """Seconds the pool lets one probe's SSH command run."""
    if probe == "ping":
        return PING_WAIT_S + SSH_SLACK_S
    if probe.startswith("tcp:"):
        return NC_WAIT_S + SSH_SLACK_S
    return COMMAND_WAIT_S + SSH_SLACK_S


@dataclass
class ProbeDone:
    """One probe's answer: ``ok`` (the guest answered) and, when not, what it said."""

    job: Job
    host: str
    ok: bool
    said: str
    at: float
