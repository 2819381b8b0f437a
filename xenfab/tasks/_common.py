"""What every task shares: finding the config, the error boundary, and output formats.

The task modules import little at load time (Invoke, this module, and for one help text
plan.capacity): `fab --list`, `fab --help` and the lab's tasks do not load the parsers, the
gather, the start engine, tabulate or the lab. What a task needs it imports in its body
(function-local imports, on purpose).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoke.exceptions import Exit

from ..errors import ConfigError, ExitCode, XenfabError
from ..textsafe import printable

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
    from ..snapshot import Snapshot

FORMATS = ("table", "json")


def cli(fn: Callable) -> Callable:
    """Turn every XenfabError (and Ctrl-C) into a one-line message and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if isinstance(sys.stdout, _PipeSafe):  # a task called from another (fab demo)
            return _run(fn, args, kwargs)
        guard = _PipeSafe(sys.stdout)
        sys.stdout = guard
        old = _trap_stop_signals()
        try:
            return _run(fn, args, kwargs)
        finally:
            _restore(old)
            sys.stdout = guard.stream

    return wrapper


# A `kill` or a closed terminal stops a task as Ctrl-C does, in every phase: the last line and
# exit 130, never the bare 143/129 of a process killed mid-sentence. The start engine traps them
# itself while it starts guests (first signal: finish what is in flight), then puts these back.
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _trap_stop_signals() -> dict[int, Any]:
    old: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return old
    for sig in _STOP_SIGNALS:
        try:
            current = signal.getsignal(sig)
            if current is signal.SIG_IGN:
                continue  # started under nohup: a hangup is meant to be ignored
            old[sig] = signal.signal(sig, _as_interrupt)
        except (ValueError, OSError):
            continue
    return old


def _restore(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        try:
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        except (ValueError, OSError, TypeError):
            continue


def _run(fn: Callable, args: tuple, kwargs: dict) -> Any:
    from ..show.notes import output

    try:
        with output():  # one output, one set of footnotes: a long reason is said once
            return fn(*args, **kwargs)
    except XenfabError as exc:
        raise Exit(f"xenfab: {printable(exc)}", code=int(exc.exit_code)) from None
    except KeyboardInterrupt:
        raise Exit("xenfab: interrupted", code=int(ExitCode.INTERRUPTED)) from None


class _PipeSafe:
    """stdout that survives its reader going away (`| head`, `| true`).

    The task runs to its end and keeps its exit code and its error line (on stderr): a closed
    pipe must never turn a failure into 0.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        """Write through, or drop the text once the reader is gone."""
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        """Flush through, unless the reader is gone."""
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.broken = True
        # Python flushes stdout once more at exit: point the descriptor at /dev/null so that
        # flush neither fails nor prints "Exception ignored".
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def exit_with(code: int, message: str | None = None) -> None:
    """End a task with ``code`` (ExitCode) and a last line on stderr; returns when code is 0."""
    if code:
        raise Exit(f"xenfab: {message}" if message else None, code=int(code))


def check_format(fmt: str) -> str:
    """Validate a ``--format`` value."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def saved_snapshot(path: str, env: Environment) -> Snapshot:
    """The snapshot ``--from PATH``, refused (one line) when it is of another environment."""
    from ..snapshot import DEFAULT_BACKEND, Snapshot, SnapshotError

    snap = Snapshot.load(path)
    # The environment's policy, backend and lock would be applied to another cluster's facts.
    if snap.environment != env.name:
        raise SnapshotError(
            f"--from {path}: a snapshot of environment {snap.environment!r}, not of "
            f"{env.name!r} (give --env {snap.environment})"
        )
    if (snap.backend or DEFAULT_BACKEND) != env.backend:
        raise SnapshotError(
            f"--from {path}: a snapshot of backend {snap.backend or DEFAULT_BACKEND}, not "
            f"of {env.backend} (environment {env.name})"
        )
    return snap


def split_list(value: str | None) -> list[str]:
    """``a,b, c`` -> ``['a', 'b', 'c']`` (for --exclude, --without)."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def load(
    c: Any, config: str | None, env: str | None, loc: str | None = None
) -> tuple[XenfabConfig, Environment]:
    """The configuration and environment a task runs with (see docs/configuration.md)."""
    cfg, environment = _load(c, config, env)
    # `fab -S FILE` names the ssh_config to use: it wins over the environment's own.
    from ..remote.sshconfig import runtime_ssh_path

    runtime_ssh = runtime_ssh_path(getattr(c, "config", None))
    if runtime_ssh:
        from ..schema import control_char

        bad = control_char(str(runtime_ssh))
        if bad is not None:
            raise ConfigError(f"-S {runtime_ssh!r}: a path with a control character ({bad})")
        environment.ssh.config = os.path.expanduser(runtime_ssh)
    if loc:
        environment = environment.at_location(loc)
    return cfg, environment


def _load(c: Any, config: str | None, env: str | None) -> tuple[XenfabConfig, Environment]:
    from ..config import config_from_dict, find_config, load_config

    inv = getattr(c, "config", None)
    section = None
    try:
        section = inv.get("xenfab") if inv is not None else None
    except Exception:  # noqa: BLE001 - a Context without config data is fine
        section = None
    if config is None and not os.environ.get("XENFAB_CONFIG") and isinstance(section, dict):
        if "environments" in section:
            cfg = config_from_dict(_plain(section), path="Fabric config section 'xenfab'")
            return cfg, cfg.environment(env)
        if section.get("config"):
            config = os.path.expanduser(str(section["config"]))
    project = getattr(inv, "_project_prefix", None) if inv is not None else None
    dirs = (project.rstrip(os.sep),) if project else ()
    path = find_config(config, dirs)
    cfg = load_config(path)
    return cfg, cfg.environment(env)


def _plain(value: Any) -> Any:
    # Invoke hands config sections over as DataProxy objects; the validator wants plain data.
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
