"""Every host's domain list, kept fresh in the background while guests wait to be started.

The cluster state is re-read on the master right before each batch of starts; that is where a
guest started through the cluster shows up. A domain started outside the cluster (``xl create``
by hand) only shows in the hosts' own lists, and reading 20 hosts costs 20 commands: so the lists
are refreshed by a background thread, each host on its own schedule, shortly before its list
grows older than ``max_age``, and only while guests wait. The engine starts guests only while
every reachable host's list is fresh; it never waits on a host itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..parse import ParseError, parse_xl_list
from ..snapshot import Host
from .remote import SessionPool

# A start waits for lists younger than this (the snapshot's lists, which the spec accepts, are
# as old as the confirmation prompt took); a re-read costs one command per host.
DOMAINS_MAX_AGE_S = 10.0
READERS = 16


class DomainWatch:
    """Latest domain names per host, and how recent each host's list is."""

    def __init__(
        self,
        pool: SessionPool,
        hosts: list[Host],
        timeout: float,
        warn: Callable[[str], None],
        max_age: float = DOMAINS_MAX_AGE_S,
    ):
        """Watch ``hosts`` (the reachable ones) through ``pool``; ``warn`` gets one-line notes."""
        self.pool = pool
        self.hosts = [h for h in hosts if h.reachable]
        self.timeout = timeout
        self.warn = warn
        self.max_age = max_age
        # Until a host answers, what the snapshot saw on it is the best knowledge there is.
        self.names: dict[str, set[str]] = {h.name: {d.name for d in h.domains} for h in self.hosts}
        # When each host's list was last vouched for: a read's start, or a failed read's end
        # (a host that does not answer is reported once and its last list used).
        self.valid_at: dict[str, float] = {}
        self.took: dict[str, float] = {}
        self.done_at: dict[str, float] = {}
        self.failing: set[str] = set()
        self._reading: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=min(READERS, max(1, len(self.hosts))))

    def start(self) -> None:
        """Start the background refresher (it reads only while ``want(True)``)."""
        if self.hosts and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="xl-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the refresher; reads under way finish in the background."""
        self._stop.set()
        self._wanted.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def want(self, wanted: bool) -> None:
        """Refresh in the background only while guests are waiting to be started."""
        if wanted:
            self._wanted.set()
        else:
            self._wanted.clear()

    def fresh(self, now: float | None = None) -> bool:
        """True when every watched host's list is at most ``max_age`` seconds old."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return all(
                now - self.valid_at.get(h.name, float("-inf")) <= self.max_age for h in self.hosts
            )

    def current(self) -> dict[str, set[str]]:
        """A copy of the latest domain names per host."""
        with self._lock:
            return {host: set(names) for host, names in self.names.items()}

    def update(self, host: str, names: set[str]) -> None:
        """Record a list read elsewhere (a re-plan's gather)."""
        with self._lock:
            if host in self.names:
                self.names[host] = set(names)
                self.valid_at[host] = time.monotonic()

    def refresh(self) -> None:
        """Read every watched host now, in parallel, and wait for the answers."""
        hosts = [h for h in self.hosts if self._claim(h.name)]
        if hosts:
            with ThreadPoolExecutor(max_workers=min(READERS, len(hosts))) as ex:
                list(ex.map(self._read, hosts))
        # Hosts another reader had claimed: wait until their reads land.
        while any(h.name in self._reading for h in self.hosts) and not self._stop.is_set():
            time.sleep(0.02)

    def _claim(self, host: str) -> bool:
        with self._lock:
            if host in self._reading:
                return False
            self._reading.add(host)
            return True

    def _read(self, host: Host) -> None:
        began = time.monotonic()
        try:
            names, error = self._list(host)
        except Exception as exc:  # noqa: BLE001 - a bug here must not stop the starts
            names, error = None, repr(exc)
        with self._lock:
            self._reading.discard(host.name)
            self.took[host.name] = time.monotonic() - began
            self.done_at[host.name] = time.monotonic()
            if names is not None:
                self.names[host.name] = names
                self.valid_at[host.name] = began
                self.failing.discard(host.name)
                return
            self.valid_at[host.name] = time.monotonic()
            first = host.name not in self.failing
            self.failing.add(host.name)
        if first and not self._stop.is_set():
            self.warn(
                f"warning: cannot list domains on {host.name} ({error}); "
                "using the last list it gave"
            )

    def _list(self, host: Host) -> tuple[set[str] | None, str | None]:
        tool = host.toolstack if host.toolstack in ("xl", "xm") else "xl"
        res = self.pool.run(host.name, f"{tool} list", timeout=self.timeout)
        if res.error is not None or res.output is None:
            return None, res.error or "no output"
        if res.output.exit_code != 0:
            first = (res.output.text.strip().splitlines() or [""])[0]
            return None, f"{tool} list exited {res.output.exit_code}: {first}"
        try:
            doms = parse_xl_list(res.output.text, source=f"{host.name}: {tool} list")
        except ParseError as exc:
            return None, str(exc)
        return {d.name for d in doms}, None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            now = time.monotonic()
            for host in self.hosts:
                # Read again before the list expires, with room for a read as slow as the last;
                # but never more often than every max_age/2 per host: on an overloaded host,
                # reading faster would only load it more.
                margin = min(self.max_age / 2, max(1.0, 2 * self.took.get(host.name, 1.0)))
                due = max(
                    self.valid_at.get(host.name, float("-inf")) + self.max_age - margin,
                    self.done_at.get(host.name, float("-inf")) + self.max_age / 2,
                )
                if now >= due and self._claim(host.name):
                    try:
                        self._pool.submit(self._read, host)
                    except RuntimeError:  # shut down meanwhile
                        return
            self._stop.wait(0.2)
