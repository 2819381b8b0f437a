"""The Invoke/Fabric task collection ``xenfab.ns``; add it to a team fabfile with add_collection."""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType

from invoke import Collection

from . import capacity, core, demo, lab, ops, report

ns = Collection()
for _task in (
    core.facts,
    core.show_layout,
    core.start_host,
    core.start_all,
    demo.demo,
    ops.check,
    ops.trust_host,
    capacity.capacity,
    report.report,
):
    ns.add_task(_task)
ns.add_collection(lab.ns)

__all__ = ["ns"]


def _quiet_broken_pipe(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None, _prev=sys.excepthook
) -> None:
    """A closed stdout outside our tasks (`fab --list | head`): one line, not a traceback.

    Our tasks survive a closed stdout themselves (tasks/_common.py); this catches what Invoke
    prints before any task runs. Anything else goes to the hook that was there before.
    """
    if not issubclass(kind, BrokenPipeError):
        _prev(kind, exc, tb)
        return
    # Python flushes stdout once more at exit: point it at /dev/null so that flush is quiet too.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.write("xenfab: stdout was closed before the output ended\n")


sys.excepthook = _quiet_broken_pipe


def _program():
    # `xenfab TASK` behaves like `fab TASK` with this collection, for users without a fabfile.
    from fabric import Config, Executor
    from fabric.main import Fab

    from .. import __version__

    return Fab(
        name="xenfab",
        version=__version__,
        namespace=ns,
        config_class=Config,
        executor_class=Executor,
    )


program = _program()
