"""One shell script per host, so gathering costs one SSH round trip; and its output split back.

Each probe's output is framed by marker lines carrying a random nonce, so no guest config or tool
output can forge a section boundary.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass, field

from ..cluster import Output, Probe
from ..cluster.base import TOOLSTACK_PROBES

# Prefer xl; fall back to xm on old (Xen 3.x/4.0) hosts. "toolstack" reports which one answered.
TOOLSTACK = (
    "if command -v xl >/dev/null 2>&1; then t=xl; "
    "elif command -v xm >/dev/null 2>&1; then t=xm; else t=xl; fi"
)
# Every guest config in one process, each after its own marker: a `cat` per file cost the master
# ~0.7 ms of fork and exec each, 0.3 s for 400 guests on the gather's longest path. Files that
# are empty get their marker too (awk never sees their first line); a file without a final
# newline gets one (awk prints whole lines), which changes no config's meaning.
AWK_FILES = shlex.quote(
    'function mark(i) { printf "\\n%s file %s\\n", m, ARGV[i] }'
    " BEGIN { n = 1 }"
    " FNR == 1 { while (n < ARGC && ARGV[n] != FILENAME) mark(n++); mark(n++) }"
    " { print }"
    " END { while (n < ARGC) mark(n++) }"
)
CONFIG_BATCH = 100
# The Xen toolstack probes every host runs (the backend may add its own: backend.host_probes()).
HOST_PROBES = TOOLSTACK_PROBES


@dataclass
class BatchOutput:
    """A host's batch output, split per probe, plus the guest config files it printed."""

    outputs: dict[str, Output] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    complete: bool = False


def new_nonce() -> str:
    """A fresh marker nonce for one gather run."""
    return secrets.token_hex(8)


def build_script(nonce: str, probes: list[Probe], config_dir: str | None = None) -> str:
    """The shell script that runs ``probes`` (and prints the configs in ``config_dir``)."""
    mark = f"@@xenfab:{nonce}"
    lines = [
        f"m={shlex.quote(mark)}",
        'b() { printf \'\\n%s begin %s\\n\' "$m" "$1"; }',
        'e() { printf \'\\n%s end %s %s\\n\' "$m" "$1" "$2"; }',
        TOOLSTACK,
    ]
    rc_var = {}
    for i, probe in enumerate(probes):
        name = shlex.quote(probe.name)
        run = f"b {name}; {{ {probe.command}; }} 2>&1 </dev/null; r{i}=$?; e {name} $r{i}"
        if probe.fallback_for is not None and probe.fallback_for in rc_var:
            run = f"if [ ${rc_var[probe.fallback_for]} -ne 0 ]; then {run}; fi"
        lines.append(run)
        rc_var[probe.name] = f"r{i}"
    if config_dir is not None:
        d = shlex.quote(config_dir.rstrip("/") or "/")
        # Files go to awk in batches of CONFIG_BATCH: appending to "$@" copies it, so one list of
        # every file was quadratic (5,000 configs: 2.4 s of shell), and ARG_MAX stays far away.
        lines += [
            'p() { if [ -n "$a" ]; then awk -v m="$m" ' + AWK_FILES + ' "$@"; '
            'else for f in "$@"; do printf \'\\n%s file %s\\n\' "$m" "$f"; cat -- "$f"; done; '
            "fi; }",
            f"b configs; if [ -d {d} ]; then",
            "a=; if command -v awk >/dev/null 2>&1; then a=1; fi; set --",
            f'for f in {d}/*; do if [ -f "$f" ]; then set -- "$@" "$f"; fi; '
            f'if [ $# -ge {CONFIG_BATCH} ]; then p "$@"; set --; fi; done',
            'if [ $# -gt 0 ]; then p "$@"; fi',
            f'e configs 0; else echo "no such directory: "{d}; e configs 1; fi',
        ]
    lines.append('printf "\\n%s done\\n" "$m"')
    return "\n".join(lines) + "\n"


def split_output(text: str, nonce: str) -> BatchOutput:
    """Split a batch script's stdout back into per-probe outputs and config files."""
    mark = f"@@xenfab:{nonce} "
    result = BatchOutput()
    current: str | None = None
    current_file: str | None = None
    buf: list[str] = []

    def flush() -> str:
        # The marker's leading newline is ours, not the content's: drop exactly one.
        body = "".join(buf)
        buf.clear()
        return body[:-1] if body.endswith("\n") else body

    for line in text.splitlines(keepends=True):
        if not line.startswith(mark):
            if current is not None or current_file is not None:
                buf.append(line)
            continue
        words = line[len(mark) :].rstrip("\n").split(" ", 2)
        kind = words[0]
        if current_file is not None:
            result.files[current_file] = flush()
            current_file = None
        if kind == "begin" and len(words) >= 2:
            current = words[1]
            buf.clear()
        elif kind == "file" and len(words) >= 2:
            current_file = " ".join(words[1:])
            buf.clear()
        elif kind == "end" and len(words) >= 3 and current is not None:
            body = flush()
            if current != "configs":
                code = int(words[2]) if words[2].lstrip("-").isdigit() else 255
                result.outputs[current] = Output(body, code)
            else:
                result.outputs[current] = Output(body, int(words[2]) if words[2].isdigit() else 1)
            current = None
        elif kind == "done":
            result.complete = True
    return result
