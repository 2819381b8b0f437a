"""Every host's domain list, read afresh for each turn of starts.

The cluster state is re-read on the master right before each batch of starts; that is where a
guest started through the cluster shows up. A domain started outside the cluster (``xl create``
by hand) only shows in the hosts' own lists. So before a turn of starts the engine begins a
*round*: one ``xl list`` per host, all in parallel, begun after the engine decided to start. A
guest is started only when every host that could run it answered in that round; a host that did
not answer keeps every start waiting (the engine says so and gives up after a bounded time),
unless it is dead: declared so for the run, or fenced after it left, in the cluster manager's
own record (offline alone is no proof: a partitioned host runs on, and can run anything).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

from ..parse import ParseError, parse_xl_list
from ..remote import SessionPool
from ..snapshot import Host
from ..textsafe import printable

READERS = 16


@dataclass
class Round:
    """One parallel read of the hosts' domain lists, begun at ``began`` (monotonic)."""

    began: float
    futures: dict[str, Future] = field(default_factory=dict)

    def done(self) -> bool:
        """True when every read of the round has answered (or failed)."""
        return all(f.done() for f in self.futures.values())

    def lists(self) -> dict[str, set[str]]:
        """The domain names of every host that answered."""
        out = {}
        for host, fut in self.futures.items():
            if fut.done() and fut.exception() is None:
                names, _error = fut.result()
                if names is not None:
                    out[host] = names
        return out

    def unproven(self, needed: Collection[str]) -> dict[str, str]:
        """Each needed host without a list from this round, and why."""
        missing = {}
        for host in needed:
            fut = self.futures.get(host)
            if fut is None:
                missing[host] = "not read in this round"
            elif not fut.done():
                missing[host] = "no answer yet"
            elif fut.exception() is not None:
                missing[host] = repr(fut.exception())
            else:
                names, error = fut.result()
                if names is None:
                    missing[host] = error or "no list"
        return missing


class DomainWatch:
    """Reads every host's domain list in parallel rounds (one round per turn of starts)."""

    def __init__(
        self,
        pool: SessionPool,
        hosts: list[Host],
        timeout: float,
        warn: Callable[[str], None],
    ):
        """Watch ``hosts`` (every host of the cluster: an unreachable one could run a guest)."""
        self.pool = pool
        self.hosts = {h.name: h for h in hosts}
        self.timeout = timeout
        self.warn = warn
        self._pool = ThreadPoolExecutor(max_workers=min(READERS, max(1, len(self.hosts))))
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Stop reading; reads under way finish in the background."""
        self._stopped.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def begin(self, skip: Collection[str] = ()) -> Round:
        """Begin a round: read every host not in ``skip`` (the dead ones), in parallel."""
        rnd = Round(time.monotonic())
        for name, host in self.hosts.items():
            if name in skip:
                continue
            try:
                rnd.futures[name] = self._pool.submit(self._list, host)
            except RuntimeError:  # shut down meanwhile
                break
        return rnd

    def wait(self, rnd: Round, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the round; True when every read answered."""
        if rnd.futures:
            wait_futures(list(rnd.futures.values()), timeout=timeout)
        return rnd.done()

    def _list(self, host: Host) -> tuple[set[str] | None, str | None]:
        tool = host.toolstack if host.toolstack in ("xl", "xm") else "xl"
        res = self.pool.run(host.name, f"{tool} list", timeout=self.timeout)
        if res.error is not None or res.output is None:
            return None, printable(res.error or "no output")
        if res.output.exit_code != 0:
            first = (res.output.text.strip().splitlines() or [""])[0]
            return None, printable(f"{tool} list exited {res.output.exit_code}: {first[:200]}")
        try:
            doms = parse_xl_list(res.output.text, source=f"{host.name}: {tool} list")
        except ParseError as exc:
            return None, printable(str(exc)[:300])
        return {d.name for d in doms}, None
