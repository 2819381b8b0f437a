"""One shell script per host, so gathering costs one SSH round trip; and its output split back.

Each probe's output is framed by marker lines carrying a random nonce, so no guest config or tool
output can forge a section boundary; and no file name either: a name with a control character
(a newline could end the marker line and start "content") is never printed raw, and its file is
not read.

Limits on what a host may send (docs/start.md, "Limits on remote data"): a config file larger
than MAX_CONFIG_BYTES is not read (``find -L -size`` on the host, before any byte of it is read);
its guest is still down with that reason. The limits apply to what a name points to: a symbolic
link is read only when its target is a regular file within the limit, and then through
``head -c`` under a time bound (LINK_READ_S), so a link switched after the check still costs at
most that; a link to a directory, a FIFO, a device or nothing is refused for its file alone.
Every remote command runs under ``bounded`` (xenfab.remote.channel): it is killed with its whole
process group when its time is up, on the host itself, so nothing xenfab started keeps running
there after it gave up.
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
# A Xen guest config is a few hundred bytes; 256 KiB is far above any real one and bounds what
# one file can cost (a name, a memory line) whatever it holds.
MAX_CONFIG_BYTES = 256 * 1024
# How long one read through a symbolic link may take: a regular file of MAX_CONFIG_BYTES reads in
# milliseconds; a link switched to a FIFO after the check would block its open for ever.
LINK_READ_S = 10
# What a link that is not read points to, as the host's `test` tells it (the marker's word).
LINK_TARGETS = {
    "dangling": "nothing (a dangling link)",
    "directory": "a directory",
    "fifo": "a FIFO",
    "device": "a device",
    "socket": "a socket",
    "other": "something other than a regular file",
    "nohead": "a regular file, but the host has no `head` to bound the read",
}
# The Xen toolstack probes every host runs (the backend may add its own: backend.host_probes()).
HOST_PROBES = TOOLSTACK_PROBES


@dataclass
class BatchOutput:
    """A host's batch output, split per probe, plus the guest config files it printed."""

    outputs: dict[str, Output] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    complete: bool = False
    # Config files seen but not read, path -> why (too large, a name with control characters).
    # A path is in ``files`` or here, never both.
    file_errors: dict[str, str] = field(default_factory=dict)


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
        limit = MAX_CONFIG_BYTES
        # Files go to awk in batches of CONFIG_BATCH: appending to "$@" copies it, so one list of
        # every file was quadratic (5,000 configs: 2.4 s of shell), and ARG_MAX stays far away.
        # Too large files are listed by one find (names with control characters left out: they
        # never reach a line of their own), then skipped with a marker; a name with a control
        # character gets a marker with its bytes in hex and is not read.
        lines += [
            'p() { if [ -n "$a" ]; then awk -v m="$m" ' + AWK_FILES + ' "$@"; '
            'else for f in "$@"; do printf \'\\n%s file %s\\n\' "$m" "$f"; cat -- "$f"; done; '
            "fi; }",
            *_link_reader(limit),
            "nl='\n'",
            f"b configs; if [ -d {d} ]; then",
            "a=; if command -v awk >/dev/null 2>&1; then a=1; fi; set --",
            # -L: the size (and type) of what a link points to, not of the link itself.
            f"big=$(find -L {d}/ -maxdepth 1 -type f -size +{limit}c ! -name '*[[:cntrl:]]*' "
            "-print 2>/dev/null)",
            f'for f in {d}/*; do case "$f" in '
            '*[[:cntrl:]]*) if [ -f "$f" ] || [ -L "$f" ]; then '
            "printf '\\n%s badname %s\\n' \"$m\" "
            '"$(printf %s "$f" | od -An -tx1 | tr -d \' \\n\')"; fi;; '
            '*) if [ -L "$f" ] || [ -f "$f" ]; then '
            'if [ -n "$big" ] && case "$nl$big$nl" in *"$nl$f$nl"*) true;; *) false;; esac; '
            'then printf \'\\n%s big %s\\n\' "$m" "$f"; '
            'elif [ -L "$f" ]; then l "$f"; '
            'else set -- "$@" "$f"; fi; fi;; esac; '
            f'if [ $# -ge {CONFIG_BATCH} ]; then p "$@"; set --; fi; done',
            'if [ $# -gt 0 ]; then p "$@"; fi',
            f'e configs 0; else echo "no such directory: "{d}; e configs 1; fi',
        ]
    lines.append('printf "\\n%s done\\n" "$m"')
    return "\n".join(lines) + "\n"


def _link_reader(limit: int) -> list[str]:
    """Shell function ``l PATH``: print a link's target (a regular file) or why it is not read.

    The read is ``head -c`` (one byte past the limit, so a file that grew is still seen as too
    large) under a time bound: coreutils ``timeout`` where there is one, else a watchdog
    subshell (RHEL 5's coreutils 5.97 has no ``timeout``) that kills the read at LINK_READ_S and
    takes its own ``sleep`` with it when the read ends first.
    """
    t, n = LINK_READ_S, limit + 1
    return [
        "hd=; if command -v head >/dev/null 2>&1; then hd=1; fi",
        "if command -v timeout >/dev/null 2>&1; then "
        f'rl() {{ timeout -k 1 {t} head -c {n} -- "$1" </dev/null; }}; else '
        f'rl() {{ head -c {n} -- "$1" </dev/null & lp=$!; '
        f"( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep {t} & s=$!; wait $s; "
        'kill -KILL "$lp" ) >/dev/null 2>&1 </dev/null & lw=$!; '
        'wait "$lp"; lr=$?; kill -TERM "$lw" 2>/dev/null; wait "$lw" 2>/dev/null; '
        'return "$lr"; }; fi',
        'l() { if [ ! -e "$1" ]; then k=dangling; elif [ -d "$1" ]; then k=directory; '
        'elif [ -p "$1" ]; then k=fifo; elif [ -c "$1" ] || [ -b "$1" ]; then k=device; '
        'elif [ -S "$1" ]; then k=socket; elif [ ! -f "$1" ]; then k=other; '
        'elif [ -z "$hd" ]; then k=nohead; else k=; fi; '
        'if [ -n "$k" ]; then printf \'\\n%s badlink %s %s\\n\' "$m" "$k" "$1"; return; fi; '
        'printf \'\\n%s file %s\\n\' "$m" "$1"; rl "$1"; lr=$?; '
        'if [ $lr -ne 0 ]; then printf \'\\n%s unread %s %s\\n\' "$m" "$lr" "$1"; fi; }',
    ]


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
        if kind == "unread" and len(words) >= 3 and current_file == words[2]:
            # The read through a link failed or was cut at its time bound: what came is partial
            # (a memory line cut short is a wrong size), so none of it is kept.
            flush()
            result.file_errors[current_file] = _unread_reason(words[1])
            current_file = None
            continue
        if current_file is not None:
            _file_done(result, current_file, flush())
            current_file = None
        if kind == "badlink" and len(words) >= 3:
            what = LINK_TARGETS.get(words[1], LINK_TARGETS["other"])
            result.file_errors[words[2]] = f"a symbolic link to {what}: not read"
        elif kind == "big" and len(words) >= 2:
            result.file_errors[" ".join(words[1:])] = (
                f"larger than {MAX_CONFIG_BYTES} bytes (MAX_CONFIG_BYTES): not read"
            )
        elif kind == "badname" and len(words) >= 2:
            name = _unhex(words[1])
            result.file_errors[name] = "file name has control characters: not read"
        elif kind == "begin" and len(words) >= 2:
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


def _file_done(result: BatchOutput, path: str, body: str) -> None:
    """Record one file's content, or why not (it grew past the limit after the host's check)."""
    if len(body) > MAX_CONFIG_BYTES:
        result.file_errors[path] = (
            f"larger than {MAX_CONFIG_BYTES} bytes (MAX_CONFIG_BYTES): not read"
        )
        return
    result.files[path] = body


def _unread_reason(code: str) -> str:
    """Why a read through a link gave nothing usable, from its exit status."""
    if code in ("124", "137"):
        return f"a symbolic link whose read did not end within {LINK_READ_S} s: not read"
    return f"a symbolic link that could not be read (head exit {code}): not read"


def _unhex(text: str) -> str:
    """A file name from the hex ``od`` printed (undecodable bytes replaced)."""
    try:
        return bytes.fromhex(text).decode("utf-8", errors="replace")
    except ValueError:
        return f"(unreadable name {text[:64]})"
