"""Cluster managers behind one seam; ``backend(name)`` returns the one an environment uses."""

from __future__ import annotations

from ..errors import ConfigError
from .base import (
    ClusterBackend,
    ClusterState,
    Output,
    Probe,
    ServiceState,
    StartOutcome,
    StateVocabulary,
    UnsafeName,
    safe_guest,
    safe_host,
)


def backend(name: str) -> ClusterBackend:
    """The backend called ``name`` (only ``rgmanager`` today)."""
    if name == "rgmanager":
        from .rgmanager import RgmanagerBackend

        return RgmanagerBackend()
    raise ConfigError(f"backend: {name!r} is not a known cluster manager (known: rgmanager)")


__all__ = [
    "ClusterBackend",
    "ClusterState",
    "Output",
    "Probe",
    "ServiceState",
    "StartOutcome",
    "StateVocabulary",
    "UnsafeName",
    "backend",
    "safe_guest",
    "safe_host",
]
