"""fab report: a run read back from the audit log, written as one self-contained HTML file."""

from __future__ import annotations

import sys

from ._common import check_format, load
from ._options import REPORT, run_task


@run_task(REPORT, name="report")
def report(c, **options):
    """Write a run (the last, or --run ID) from the audit log as one HTML file; say where."""
    from .. import show
    from ..run.timeline import write_report
    from ..show.timeline import gantt_text, gantt_width
    from ..textsafe import printable

    fmt = check_format(options["format"])
    cfg, env = load(c, options["config"], options["env"], None)
    written = write_report(cfg, env, run=options["run"], out=options["out"])
    tl = written.timeline
    if fmt == "json":
        doc = {
            "path": written.path,
            "run": tl.run,
            "environment": tl.environment,
            "plan_id": tl.plan_id,
            "began": tl.began,
            "ended": tl.ended,
            "seconds": round(tl.seconds, 2),
            "still_down": [s.guest for s in tl.still_down()],
            "unnamed_down": tl.unnamed_down,
            "timeline": tl.to_json(),
        }
        print(show.to_json(doc))
    else:
        text = gantt_text(tl, gantt_width(_columns()))
        if text is not None:
            print(text)
    sys.stderr.write(printable(f"report of run {tl.run} written to {written.path}") + "\n")


def _columns() -> int | None:
    import shutil

    return shutil.get_terminal_size((0, 0)).columns or None
