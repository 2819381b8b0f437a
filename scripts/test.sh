#!/usr/bin/env bash
# The project's one test command (README, and .ci/run): set up, lint, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The layers hold (pyproject.toml [tool.importlinter]) and no two modules import each other.
# (its banner is printed only when a contract breaks, with the whole report)
if ! report=$(.venv/bin/lint-imports --no-cache 2>&1); then echo "$report"; exit 1; fi
echo "$report" | grep -E "KEPT|BROKEN|Contracts:"
.venv/bin/python scripts/import_cycles.py
# Two workers, a file each at a time (a file's tests share their lab's state); then, alone, the
# tests that measure time or load the CPU on purpose.
.venv/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not serial" "$@"
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider -m serial "$@"
rc=$?
set -e
# 5: no serial test selected (a filter given on the command line)
[ "$rc" = 5 ] && rc=0
exit "$rc"
