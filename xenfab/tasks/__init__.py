"""The Invoke/Fabric task collection ``xenfab.ns``; add it to a team fabfile with add_collection."""

from __future__ import annotations

from invoke import Collection

from . import capacity, core, demo, lab, ops

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
):
    ns.add_task(_task)
ns.add_collection(lab.ns)

__all__ = ["ns"]


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
