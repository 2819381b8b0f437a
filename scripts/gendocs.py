#!/usr/bin/env python3
"""Regenerate the docs' key tables from the schema (the dataclass fields, their defaults and help),
and the table of placement rules from the rules themselves (``xenfab.plan.rules.RULES``).

Only the text between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->`` is
rewritten. ``--check`` changes nothing and exits 1 when a file is stale (tests/test_schema.py
runs it), so a default or a meaning is written once, in the schema, and the docs follow.

    .venv/bin/python scripts/gendocs.py          # rewrite the generated tables in docs/*.md
    .venv/bin/python scripts/gendocs.py --check  # exit 1 if they are stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xenfab.config import Environment, SSHSettings, StartPolicy, XenfabConfig  # noqa: E402
from xenfab.plan.policy import Policy  # noqa: E402
from xenfab.plan.rules import RULES  # noqa: E402
from xenfab.schema import docs_table  # noqa: E402


def _table(rows: list[tuple[str, str, str]], header: tuple[str, str, str]) -> str:
    lines = [f"| {' | '.join(header)} |", "|---|---|---|"]
    lines += [f"| `{key}` | {default} | {meaning} |" for key, default, meaning in rows]
    return "\n".join(lines)


def config_reference() -> str:
    """docs/configuration.md's table of every configuration key but the policy's."""
    top = {key: (key, d, m) for key, d, m in docs_table(XenfabConfig)}
    rows = [top.pop(k) for k in ("default_env", "audit_log", "lock_path")]
    env = "environments.NAME."
    for key, default, meaning in docs_table(Environment, env):
        rows.append((key, default, meaning))
        if key == env + "backend":
            rows += docs_table(SSHSettings, env + "ssh.")
    rows.append(("policy.*", "see [policy.md](policy.md)", "placement policy"))
    rows += docs_table(StartPolicy, "start.")
    return _table(rows, ("key", "default", "meaning"))


def start_defaults() -> str:
    """docs/configuration.md's table of the start engine's caps (the start policy)."""
    rows = [(m, d.strip("`"), f"`start.{k}`") for k, d, m in docs_table(StartPolicy)]
    lines = ["| limit | default | set with |", "|---|---|---|"]
    lines += [f"| {m} | {d} | {k} |" for m, d, k in rows]
    return "\n".join(lines)


def policy_keys() -> str:
    """docs/policy.md's table of the placement policy keys."""
    return _table(docs_table(Policy), ("key", "default", "meaning"))


def rule_table() -> str:
    """docs/architecture-rules.md's table of every placement rule, in the order greedy asks them."""
    lines = ["| order | rule | module | policy key | counters | what it holds |"]
    lines.append("|---|---|---|---|---|---|")
    for rule in RULES:
        module = rule.__module__.rsplit(".", 1)[-1]
        key = f"`{rule.policy_field}`" if rule.policy_field else "(run option)"
        summary = (rule.__doc__ or "").strip().splitlines()[0]
        counts = "yes" if rule.counts else "no"
        lines.append(
            f"| {rule.order} | `{rule.name}` | `rules/{module}.py` | {key} | {counts} | {summary} |"
        )
    return "\n".join(lines)


BLOCKS = {
    "docs/configuration.md": {
        "config-reference": config_reference,
        "start-defaults": start_defaults,
    },
    "docs/policy.md": {"policy-keys": policy_keys},
    "docs/architecture-rules.md": {"rules": rule_table},
}


def render(text: str, blocks: dict) -> str:
    """``text`` with each generated block replaced by its fresh content."""
    for name, make in blocks.items():
        pattern = re.compile(
            rf"(<!-- BEGIN generated: {name} [^>]*-->\n).*?(\n<!-- END generated: {name} -->)",
            re.DOTALL,
        )
        if not pattern.search(text):
            raise SystemExit(f"gendocs: no generated block {name!r} (marker comments missing)")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    """Rewrite the generated blocks, or with --check report the stale files."""
    stale = []
    for rel, blocks in BLOCKS.items():
        path = ROOT / rel
        old = path.read_text(encoding="utf-8")
        new = render(old, blocks)
        if new != old:
            stale.append(rel)
            if "--check" not in argv:
                path.write_text(new, encoding="utf-8")
    if stale and "--check" in argv:
        print(f"stale: {', '.join(stale)}; run: python scripts/gendocs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
