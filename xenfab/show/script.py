"""``fab show-layout --format script``: the plan as a POSIX shell script an admin runs by hand.

The header (what it is, what it does not do) and the footer (the exit status) are common; each
backend renders its guard function and its one line per guest (``ClusterBackend.script_lines``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cluster.base import MASTER, ScriptStep
from ..textsafe import printable

if TYPE_CHECKING:
    from ..cluster import ClusterBackend
    from ..plan.layout import Layout
    from ..snapshot import Snapshot


def script_steps(layout: Layout, snap: Snapshot) -> list[ScriptStep]:
    """The plan's starts in the engine's order: tier by tier, the plan's order within a tier."""
    states = {g.name: g.state for g in snap.guests}
    configs = {g.name: g.config_file for g in snap.guests}
    steps = [
        ScriptStep(
            guest=a.guest,
            host=a.host,
            state=getattr(a, "state", None) or states.get(a.guest),
            tier=a.tier,
            config=configs.get(a.guest),
            dead_owner=getattr(a, "takeover_from", None) or None,
        )
        for a in layout.assignments
    ]
    return sorted(steps, key=lambda s: s.tier)  # stable: the plan's order within a tier


def script_text(layout: Layout, snap: Snapshot, backend: ClusterBackend) -> str:
    """The whole script: header, the backend's guard and lines, the exit status; ``sh -n`` clean.

    Raises UnsafeName (one line) when a name or path could not be sent to a shell.
    """
    steps = script_steps(layout, snap)
    runner = snap.master or "the master" if backend.start_on == MASTER else "each target host"
    where = f"on {runner}" if backend.start_on == MASTER else "each section on its own host"
    head = [
        "#!/bin/sh",
        f"# xenfab: start the {len(steps)} planned guest(s) of environment {snap.environment}"
        f" ({backend.name}) by hand,",
        f"# {where}, in plan order. Planned from facts taken {snap.taken_at}.",
        "# Read it, edit it (delete a line to leave that guest down), then run it.",
        "# It writes NO audit record and takes NO lock: no fab start-* run and no other admin may",
        "# start guests while it runs. Each line re-reads its guest right before acting, as",
        "# fab start-all does, and prints SKIP instead when it is no longer down as planned.",
        "# Exit status: 0 when every line started its guest; otherwise how many did not (max 99).",
        "set -u",
    ]
    unplaced = [u.guest for u in layout.unplaced]
    if unplaced:
        head.append(f"# Not in it: {len(unplaced)} guest(s) that fit nowhere or cannot be planned,")
        head.append("# listed by fab show-layout under STILL DOWN.")
    body = backend.script_lines(steps, runner) if steps else ["fails=0", "# nothing to start"]
    tail = [
        "",
        'echo "xenfab script: $fails start(s) skipped or failed here"',
        'if [ "$fails" -gt 99 ]; then exit 99; fi',
        'exit "$fails"',
    ]
    # Names and paths are validated by the backend; anything else from hosts is made printable.
    return printable("\n".join([*head, *body, *tail]), newlines=True) + "\n"
