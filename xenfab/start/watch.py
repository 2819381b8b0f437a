"""Every host's domain list, kept fresh in the background while guests wait to be started.

The cluster state is re-read on the master right before each batch of starts; that is where a
guest started through the cluster shows up. A domain started outside the cluster (``xl create``
by hand) only shows in the hosts' own lists, and reading 20 hosts costs 20 commands: so the lists
are refreshed by a background thread, every host in parallel, and a start goes ahead only when
every reachable host was read at most ``max_age`` seconds before it. The thread reads again shortly
before the lists grow too old, so starts do not wait for it, and not at all while nothing waits.
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


class DomainWatch:
    """Latest domain names per host, with the time each host was last asked."""

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
        self.asked_at: dict[str, float] = {}
        self.failing: set[str] = set()
        self._read_lock = threading.Lock()
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_duration = 1.0

    def start(self) -> None:
        """Start the background refresher (it reads only while ``want(True)``)."""
        if self.hosts and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="xl-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the refresher; a read under way finishes in the background."""
        self._stop.set()
        self._wanted.set()

    def want(self, wanted: bool) -> None:
        """Refresh in the background only while guests are waiting to be started."""
        if wanted:
            self._wanted.set()
        else:
            self._wanted.clear()

    def fresh(self, now: float | None = None) -> bool:
        """True when every watched host was asked within ``max_age`` seconds."""
        now = time.monotonic() if now is None else now
        return all(now - self.asked_at.get(h.name, -1e9) <= self.max_age for h in self.hosts)

    def ensure_fresh(self) -> None:
        """Read now unless the lists are fresh (waits for a background read under way)."""
        if not self.fresh():
            self.refresh(only_if_stale=True)

    def current(self) -> dict[str, set[str]]:
        """A copy of the latest domain names per host."""
        return {host: set(names) for host, names in self.names.items()}

    def update(self, host: str, names: set[str]) -> None:
        """Record a list read elsewhere (a re-plan's gather)."""
        if host not in self.names:
            return
        self.names[host] = set(names)
        self.asked_at[host] = time.monotonic()

    def refresh(self, only_if_stale: bool = False) -> None:
        """Ask every watched host for its domain list, in parallel."""
        with self._read_lock:
            if only_if_stale and self.fresh():
                return
            began = time.monotonic()
            workers = min(16, len(self.hosts)) or 1
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xl") as ex:
                results = list(ex.map(self._one, self.hosts))
            self.last_duration = time.monotonic() - began
            for name, names, error in results:
                self.asked_at[name] = began
                if names is not None:
                    self.names[name] = names
                    self.failing.discard(name)
                elif name not in self.failing and not self._stop.is_set():
                    self.failing.add(name)
                    self.warn(
                        f"warning: cannot list domains on {name} ({error}); "
                        "using the last list it gave"
                    )

    def _one(self, host: Host) -> tuple[str, set[str] | None, str | None]:
        tool = host.toolstack if host.toolstack in ("xl", "xm") else "xl"
        res = self.pool.run(host.name, f"{tool} list", timeout=self.timeout)
        if res.error is not None or res.output is None:
            return host.name, None, res.error or "no output"
        if res.output.exit_code != 0:
            first = (res.output.text.strip().splitlines() or [""])[0]
            return host.name, None, f"{tool} list exited {res.output.exit_code}: {first}"
        try:
            doms = parse_xl_list(res.output.text, source=f"{host.name}: {tool} list")
        except ParseError as exc:
            return host.name, None, str(exc)
        return host.name, {d.name for d in doms}, None

    def oldest(self) -> float:
        """When the least recently asked host was asked (monotonic; -inf if never)."""
        return min((self.asked_at.get(h.name, float("-inf")) for h in self.hosts), default=0.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            # Read again when the lists are about to expire, with room for a slow read.
            due = self.oldest() + self.max_age - max(1.0, 2 * self.last_duration)
            if time.monotonic() < due:
                self._stop.wait(min(0.5, due - time.monotonic()))
                continue
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the engine falls back to reading itself
                if not self._stop.is_set():
                    self.warn(f"warning: background domain check failed: {exc!r}")
                self._stop.wait(1.0)
