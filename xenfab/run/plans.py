"""The task side of saved plans and previews: files in, files out, lines on stderr.

The logic (build, validate, compare) is pure, in xenfab.plan.saved; this module reads and writes
the files and words the refusals. See docs/plans.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import StartRefused
from ..textsafe import printable
from ..values import spoken

if TYPE_CHECKING:
    from ..config import Environment, XenfabConfig
    from ..plan import Layout, Policy
    from ..snapshot import Snapshot

# How many differences from the last preview are named before "and N more".
_SHOWN = 5


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_json(path: str, data: dict[str, Any]) -> None:
    """Write atomically (a temporary file renamed over ``path``): never half a plan."""
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".xenfab-", suffix=".json", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_plan(path: str, snap: Snapshot, policy: Policy, layout: Layout, dead: list[str]) -> None:
    """Write the saved plan of ``layout`` to ``path`` (ConfigError, one line, when it cannot)."""
    from ..errors import ConfigError
    from ..plan import saved

    if policy.expect is not None:
        raise ConfigError("--save: a plan made with --expect cannot be saved (not supported yet)")
    doc = saved.build(snap, policy, layout, dead=dead, saved_at=_now_iso())
    try:
        _write_json(path, doc)
    except OSError as exc:
        raise ConfigError(f"--save {path}: cannot write: {exc.strerror or exc}") from None


def load_plan(path: str, env: Environment) -> dict[str, Any]:
    """Read and validate ``--plan PATH`` for ``env`` (PlanError, exit 1, when unusable)."""
    from ..plan import saved

    where = f"--plan {path}"
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise saved.PlanError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise saved.PlanError(f"{where}: not JSON: {exc}") from None
    return saved.validate(doc, where, environment=env.name, backend=env.backend)


def check_plan(
    doc: dict[str, Any], path: str, snap: Snapshot, policy: Policy, now: float | None = None
) -> None:
    """Refuse (StartRefused, exit 3) unless the saved plan still holds on the fresh facts.

    Each reason goes to stderr on a line of its own; the exit line says to preview again.
    """
    from ..plan import saved

    reasons: list[str] = []
    old = saved.too_old(doc, time.time() if now is None else now)
    if old:
        reasons.append(f"too old: {old}")
    reasons += saved.changes(doc, snap)
    changed = saved.policy_changed(doc, policy)
    if changed:
        reasons.append(changed)
    if not reasons:
        reasons += [f"breaks a rule: {r}" for r in saved.rule_breaks(doc, snap, policy)]
        edited = saved.tampered(doc)
        if edited:
            reasons.append(edited)
    if not reasons:
        return
    for r in reasons:
        sys.stderr.write(printable(f"  plan {doc['plan_id']}: {r}") + "\n")
    raise StartRefused(
        f"--plan {path}: not run: {len(reasons)} reason(s) above; preview again "
        f"(fab show-layout --save {path})"
    )


def plan_policy(env_policy: Policy, doc: dict[str, Any]) -> Policy:
    """The environment's policy with the saved plan's --strategy and --exclude."""
    from ..plan.policy import with_run_options

    p = doc["policy"]
    strategy = p.get("strategy") if isinstance(p.get("strategy"), str) else None
    exclude = [e for e in p.get("exclude") or [] if isinstance(e, str)]
    return with_run_options(env_policy, strategy, exclude)


# --- previews ------------------------------------------------------------------------------


def _previews_dir(cfg: XenfabConfig, env: Environment) -> str:
    # Beside the audit log: the state dir (~/.local/state/xenfab), or the lab's directory for
    # the lab, whose audit log lives there (rehearsals never touch the real state).
    from ..config import expand_path

    log = str(env.audit_log or cfg.audit_log)
    return os.path.join(os.path.dirname(os.path.expanduser(expand_path(log))), "previews")


def record_preview(cfg: XenfabConfig, env: Environment, layout: Layout) -> None:
    """Remember this preview's plan (best effort: a preview never fails on its record)."""
    folder = _previews_dir(cfg, env)
    data = {
        "plan_id": layout.plan_id,
        "at": time.time(),
        "assignments": {a.guest: a.host for a in layout.assignments},
        "unplaced": sorted(u.guest for u in layout.unplaced),
    }
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        _write_json(os.path.join(folder, f"{env.name}.json"), data)
    except OSError:
        pass


def preview_note(
    cfg: XenfabConfig, env: Environment, layout: Layout, labels: Mapping[str, str] | None = None
) -> str | None:
    """A line when this plan differs from the last preview of ``env``, else None.

    ``labels``: name -> label (values.labels) for the guests and hosts (xe's are uuids).
    """
    try:
        with open(os.path.join(_previews_dir(cfg, env), f"{env.name}.json"), encoding="utf-8") as f:
            last = json.load(f)
        then = dict(last["assignments"])
        last_id, at = str(last["plan_id"]), float(last["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if last_id == layout.plan_id:
        return None
    now = {a.guest: a.host for a in layout.assignments}
    said = labels or {}

    def host(name: str | None) -> str:
        return said.get(name, name) if name else "down"

    diffs = []
    for guest in sorted(set(then) | set(now)):
        before, after = then.get(guest), now.get(guest)
        if before != after:
            diffs.append(f"{spoken(guest, said.get(guest))} {host(before)} -> {host(after)}")
    ago = max(time.time() - at, 0) / 60
    what = "; ".join(diffs[:_SHOWN]) or "same assignments, other facts or policy"
    if len(diffs) > _SHOWN:
        what += f"; and {len(diffs) - _SHOWN} more"
    return printable(
        f"NOTE: plan {layout.plan_id} differs from the last preview (plan {last_id}, "
        f"{ago:.0f} min ago): {what}"
    )
