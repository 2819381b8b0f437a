"""Cluster managers behind one seam; ``backend(name)`` returns the one an environment uses.

Backends are found, not listed: every module of this package that calls ``register`` at import
is one (rgmanager.py, xl.py), and so is every entry point of the group ``xenfab.backends`` an
installed distribution declares (``name = "package.module:BackendClass"``). Config validation
and ``--help`` read ``names()``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from ..errors import ConfigError
from .base import (
    CONFIG_FILES,
    STATE_READ,
    ClusterBackend,
    ClusterState,
    Gathered,
    Inventory,
    Output,
    Probe,
    ServiceState,
    StartOutcome,
    StateVocabulary,
    UnsafeName,
    safe_guest,
    safe_host,
)

ENTRY_POINT_GROUP = "xenfab.backends"

Factory = Callable[..., ClusterBackend]
_REGISTRY: dict[str, Factory] = {}
# Entry points that failed to load: name -> why (said when that backend is asked for).
_BROKEN: dict[str, str] = {}
_found = False


def register(name: str, factory: Factory) -> None:
    """Make the backend ``name`` known; ``factory(options)`` builds one (a class will do)."""
    _REGISTRY[name] = factory


def _find() -> None:
    """Import this package's backend modules and the installed entry points, once."""
    global _found
    if _found:
        return
    _found = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_") and mod.name != "base":
            importlib.import_module(f"{__name__}.{mod.name}")
    try:
        points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - broken metadata of another package must not stop us
        points = ()
    for point in points:
        if point.name in _REGISTRY:
            continue
        try:
            register(point.name, point.load())
        except Exception as exc:  # noqa: BLE001 - one broken plug-in is reported, not fatal
            _BROKEN[point.name] = f"{point.value}: {exc!r}"


def names() -> tuple[str, ...]:
    """The names of every backend found, sorted."""
    _find()
    return tuple(sorted(_REGISTRY))


def backend(name: str, options: Mapping[str, Any] | None = None) -> ClusterBackend:
    """The backend called ``name``, built with its environment's ``backend_options``."""
    _find()
    factory = _REGISTRY.get(name)
    if factory is None:
        why = f" ({_BROKEN[name]})" if name in _BROKEN else ""
        raise ConfigError(
            f"backend: {name!r} is not a known cluster manager{why} (known: {', '.join(names())})"
        )
    return factory(dict(options or {}))


def check_options(name: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``options`` for backend ``name``, validated by the backend (ConfigError naming ``where``)."""
    _find()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"{where}: backend {name!r} is not known (known: {', '.join(names())})")
    check = getattr(factory, "check_options", None)
    if check is None:
        return dict(options)
    return check(dict(options), where)


__all__ = [
    "CONFIG_FILES",
    "ENTRY_POINT_GROUP",
    "STATE_READ",
    "ClusterBackend",
    "ClusterState",
    "Gathered",
    "Inventory",
    "Output",
    "Probe",
    "ServiceState",
    "StartOutcome",
    "StateVocabulary",
    "UnsafeName",
    "backend",
    "check_options",
    "names",
    "register",
    "safe_guest",
    "safe_host",
]
