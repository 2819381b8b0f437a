"""The history of gathers: every gathered snapshot kept, bounded, per environment (I/O edge).

Where: ``history/ENV/`` in the state directory, the directory of the environment's audit log
(``~/.local/state/xenfab/`` by default; the lab's environments keep theirs in the lab's
directory, so rehearsals never touch the real one). Each gather is one gzip'd snapshot,
``YYYYmmddTHHMMSSZ-PID-RAND.json.gz``; ``index.json`` lists them with the hosts that answered,
so finding a host's last answer reads one small file, not every snapshot. Every file is written
to a temporary name, fsynced and renamed (a reader sees the old file or the new, whole); a lock
file (``flock``) serialises two runs that record at once.

Bounds: the KEEP newest gathers, and beyond them, for each host, the newest gather in which it
answered (a host dead for a week of gathers is still remembered); nothing older than MAX_AGE_S.

What it is for: a host declared dead (``--dead``) cannot say what it ran or what its autostart
directory links; its last answer here can (``recall``, handed to the plan as data:
xenfab.plan.recall).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import gzip
import json
import os
import secrets
import stat
import statistics
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import XenfabError
from .plan.recall import HostMemory, Recall
from .plan.timing import KEEP_SAMPLES
from .snapshot import Snapshot, SnapshotError

KEEP = 50
MAX_AGE_S = 30 * 86400
INDEX = "index.json"
HISTORY_VERSION = 1


class HistoryError(XenfabError):
    """The history could not be written or read (the run goes on; it says so)."""


def history_dir(audit_log: str, environment: str) -> str:
    """Where ``environment``'s history lives: beside its audit log, in ``history/ENV``."""
    if not environment or environment in (".", "..") or "/" in environment:
        raise HistoryError(f"environment {environment!r}: not a name a directory can have")
    state = os.path.dirname(os.path.abspath(os.path.expanduser(audit_log)))
    return os.path.join(state, "history", environment)


def record(snap: Snapshot, directory: str, now: _dt.datetime | None = None) -> str:
    """Keep ``snap`` in the history at ``directory``, prune it; the file's path.

    Raises HistoryError (one line) when it cannot be written.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with _locked(directory):
            stamp = _parse_time(snap.taken_at) or now
            name = f"{stamp:%Y%m%dT%H%M%SZ}-{os.getpid()}-{secrets.token_hex(3)}.json.gz"
            body = json.dumps(snap.to_dict(), separators=(",", ":")).encode()
            _write(directory, name, gzip.compress(body, compresslevel=6, mtime=0))
            entries = [e for e in _index(directory) if e["file"] != name]
            answered = [h.name for h in snap.hosts if h.reachable]
            entries.append({"file": name, "taken_at": snap.taken_at, "answered": answered})
            keep, drop = _prune(entries, now)
            _write(directory, INDEX, json.dumps({"version": HISTORY_VERSION, "gathers": keep}))
            for entry in drop:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, entry["file"]))
            _fsync_dir(directory)
    except OSError as exc:
        raise HistoryError(f"history {directory}: not kept: {exc.strerror or exc}") from None
    return os.path.join(directory, name)


def recall(
    directory: str,
    dead: Iterable[str],
    environment: str,
    auto_dir: str | None = None,
    now: _dt.datetime | None = None,
) -> Recall:
    """For each of ``dead``, the newest gather in ``directory`` in which it answered, as data.

    A gather that cannot be read (deleted, corrupt, another environment's) is passed over for
    the next older one. Raises nothing: no history is a Recall that remembers no host.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    hosts: dict[str, HostMemory] = {}
    entries = sorted(_index(directory), key=lambda e: e["file"], reverse=True)
    cache: dict[str, Snapshot | None] = {}
    for host in dict.fromkeys(dead):
        for entry in entries:
            if host not in entry["answered"]:
                continue
            if entry["file"] not in cache:
                cache[entry["file"]] = _load(os.path.join(directory, entry["file"]), environment)
            snap = cache[entry["file"]]
            h = snap.host(host) if snap is not None else None
            if snap is None or h is None or not h.reachable:
                continue
            taken = _parse_time(snap.taken_at)
            age = int((now - taken).total_seconds()) if taken else 0
            hosts[host] = HostMemory(
                host=host,
                source=os.path.join(directory, entry["file"]),
                taken_at=snap.taken_at,
                age_s=max(age, 0),
                running=tuple(sorted({d.name for d in h.domains if d.name != "Domain-0"})),
                linked=tuple(h.autostart) if h.autostart is not None else None,
            )
            break
    return Recall(hosts, auto_dir=auto_dir, where=directory)


# The audit log's tail read for start times: enough for many runs, bounded for a long history.
AUDIT_TAIL_BYTES = 32 * 1024 * 1024


def start_samples(audit_log: str, environment: str) -> dict[str, list[float]]:
    """Per guest, the seconds its past starts took from command sent to ready, oldest first.

    From the audit log's lines of ``environment``, per run and guest: a ``ready`` line's
    ``ready_s`` when the run wrote one (the readiness probe answered); else, when the run saw it
    started (a ``result`` line, outcome ``started``: today's meaning of ready), the seconds from
    its last ``intent`` to that line; else the ``seconds`` of its accepted ``start`` line (the
    start command's duration). Raises nothing: an unreadable log or line gives fewer samples.
    """
    return start_history(audit_log, environment)[0]


def start_history(audit_log: str, environment: str) -> tuple[dict[str, list[float]], float]:
    """``start_samples``, and the median seconds between two consecutive start commands
    (intent lines) of one run: how fast the engine sent starts (0.0 when never seen)."""
    # (run, guest) -> [start seconds, seen started after its intent, ready_s]: a run's last.
    runs: dict[tuple[str, str], list[float | None]] = {}
    intents: dict[str, list[float]] = {}
    sent: dict[tuple[str, str], float] = {}
    for rec in audit_records(audit_log, environment):
        guest, action = rec.get("guest"), rec.get("action")
        if not isinstance(guest, str):
            continue
        key = (str(rec.get("run")), guest)
        if action == "intent":
            at = _parse_iso(rec.get("time"))
            if at is not None:
                intents.setdefault(key[0], []).append(at)
                sent[key] = at
        elif action == "start":
            value = rec.get("seconds")
            if rec.get("outcome") == "accepted" and _seconds(value):
                runs.setdefault(key, [None, None, None])[0] = float(value)
        elif action == "result" and rec.get("outcome") == "started" and key in sent:
            at = _parse_iso(rec.get("time"))
            if at is not None and _seconds(at - sent[key]):
                runs.setdefault(key, [None, None, None])[1] = at - sent[key]
        elif action == "ready" and _seconds(rec.get("ready_s")):
            runs.setdefault(key, [None, None, None])[2] = float(rec["ready_s"])
    out: dict[str, list[float]] = {}
    for (_, guest), (started, seen, ready) in runs.items():
        value = next((v for v in (ready, seen, started) if v is not None), None)
        if value is not None:
            out.setdefault(guest, []).append(round(value, 3))
    gaps = [
        b - a
        for times in intents.values()
        for a, b in zip(sorted(times), sorted(times)[1:], strict=False)
    ]
    gap = statistics.median(gaps) if gaps else 0.0
    return {g: v[-KEEP_SAMPLES:] for g, v in out.items()}, round(gap, 3)


def audit_records(audit_log: str, environment: str) -> Iterator[dict[str, Any]]:
    """The audit log's records of ``environment`` (its last AUDIT_TAIL_BYTES), unreadable
    lines skipped; nothing when the log cannot be read."""
    try:
        with open(os.path.expanduser(audit_log), "rb") as fh:
            # Only a regular file has a tail: /dev/full or a FIFO would be read for ever.
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - AUDIT_TAIL_BYTES))
            raw = fh.read(AUDIT_TAIL_BYTES)
    except OSError:
        return
    lines = raw.split(b"\n")
    if size > AUDIT_TAIL_BYTES:
        lines = lines[1:]  # the first may be cut
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("environment") == environment:
            yield rec


def _parse_iso(text: Any) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _seconds(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value >= 0
        and value < 1e7
    )


def _prune(
    entries: list[dict[str, Any]], now: _dt.datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, dropped): the KEEP newest, plus each host's newest answer; none past MAX_AGE_S."""
    newest_first = sorted(entries, key=lambda e: e["file"], reverse=True)
    keep: list[dict[str, Any]] = []
    seen_hosts: set[str] = set()
    drop: list[dict[str, Any]] = []
    for i, entry in enumerate(newest_first):
        taken = _parse_time(entry.get("taken_at", ""))
        young = taken is not None and (now - taken).total_seconds() <= MAX_AGE_S
        fresh_host = bool(set(entry["answered"]) - seen_hosts)
        if young and (i < KEEP or fresh_host):
            keep.append(entry)
        else:
            drop.append(entry)
        seen_hosts.update(entry["answered"])
    return sorted(keep, key=lambda e: e["file"]), drop


def _index(directory: str) -> list[dict[str, Any]]:
    """The index's entries whose files exist; rebuilt from the files when it is unreadable."""
    try:
        with open(os.path.join(directory, INDEX), encoding="utf-8") as fh:
            data = json.load(fh)
        entries = [
            e
            for e in data["gathers"]
            if isinstance(e.get("file"), str)
            and _is_gather(e["file"])
            and isinstance(e.get("answered"), list)
            and os.path.exists(os.path.join(directory, e["file"]))
        ]
        return entries
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return _rebuild(directory)


def _rebuild(directory: str) -> list[dict[str, Any]]:
    """The entries read back from the gathers themselves (the index lost or damaged)."""
    try:
        names = sorted(n for n in os.listdir(directory) if _is_gather(n))
    except OSError:
        return []
    out = []
    for name in names:
        snap = _load(os.path.join(directory, name), None)
        if snap is not None:
            answered = [h.name for h in snap.hosts if h.reachable]
            out.append({"file": name, "taken_at": snap.taken_at, "answered": answered})
    return out


def _load(path: str, environment: str | None) -> Snapshot | None:
    """The snapshot kept at ``path``, or None when it cannot be read (or is another env's)."""
    try:
        with gzip.open(path, "rb") as fh:
            data = json.loads(fh.read(64 * 1024 * 1024 + 1))
        snap = Snapshot.from_dict(data, source=path)
    except (OSError, EOFError, ValueError, SnapshotError, RecursionError):
        return None
    if environment is not None and snap.environment != environment:
        return None
    return snap


def _is_gather(name: str) -> bool:
    return name.endswith(".json.gz") and "/" not in name and not name.startswith(".")


def _parse_time(text: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
    except (TypeError, ValueError):
        return None


def _write(directory: str, name: str, data: bytes | str) -> None:
    """Write ``name`` in ``directory`` atomically: a temporary file, fsync, rename."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    """Hold the history's lock file: two runs recording at once update the index in turn."""
    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
