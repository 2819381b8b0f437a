"""Every host's domain list, read afresh for each turn of starts.

The cluster state is re-read on the master right before each batch of starts; that is where a
guest started through the cluster shows up. A domain started outside the cluster (``xl create``
by hand) only shows in the hosts' own lists. So before a turn of starts the engine begins a
*round*: one ``xl list`` per host, all in parallel, begun after the engine decided to start. A
guest is started only when every host that could run it answered in that round; a host that did
not answer keeps every start waiting (the engine says so and gives up after a bounded time),
unless it is dead: declared so for the run, or fenced after it left, in the cluster manager's
own record (offline alone is no proof: a partitioned host runs on, and can run anything).

A host declared dead (``--dead``) is not waited for, but it is still asked, in the background
and one question at a time: a declared-dead host that lists its domains is not dead, and the
engine stops (``risen``).

Each read goes through a long-lived reader per host (xenfab.remote.stream): one SSH channel
running a small loop, so a round is one line written to each host's channel and one framed
answer read back, not a new SSH session per host. The read still begins when its line is
written, after the round began. A reader busy with an earlier read (a round given up on, a
probe) or broken is not waited for: that read goes as a per-read command instead, as before.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

from ..cluster import ClusterBackend
from ..gather import batch
from ..parse import ParseError, parse_xl_list
from ..remote import RunResult, SessionPool
from ..remote.stream import StreamReader, one_shot
from ..snapshot import Host
from ..textsafe import printable

# Reads at once: every host of a 20-host cluster in one pass, with room for the dead's probes.
READERS = 32
# Read through long-lived readers (xenfab.remote.stream); False: a new command per read, as
# before them (the benchmarks compare both in one session).
STREAMS = True
# The first line of a batch script (gather.batch) sets its marker; a streamed read sets it from
# the request's nonce instead (``$n``, hex digits only).
_PLACEHOLDER = "0" * 16


def probes_body(probes: list) -> str:
    """A batch script of ``probes`` whose markers carry the nonce in ``$n`` (a stream's body)."""
    script = batch.build_script(_PLACEHOLDER, probes)
    first, _, rest = script.partition("\n")
    if first != f"m={shlex.quote('@@xenfab:' + _PLACEHOLDER)}":
        raise ValueError(f"unexpected first line of a batch script: {first[:80]!r}")
    return 'm="@@xenfab:$n"\n' + rest


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
        backend: ClusterBackend | None = None,
        master: str | None = None,
        declared_dead: Collection[str] = (),
        streams: bool | None = None,
    ):
        """Watch ``hosts`` (every host of the cluster: an unreachable one could run a guest).

        A ``master_only`` backend's ``master`` answers for every host in one read per round.
        ``declared_dead``: hosts declared dead for the run, probed in the background.
        ``streams``: read through long-lived readers (False: a new command per read; None:
        ``STREAMS``).
        """
        self.backend = backend if backend is not None and backend.master_only else None
        self.master = master
        self.pool = pool
        self.hosts = {h.name: h for h in hosts}
        self.timeout = timeout
        self.warn = warn
        self.declared_dead = frozenset(declared_dead)
        self._pool = ThreadPoolExecutor(max_workers=min(READERS, max(1, len(self.hosts))))
        self._stopped = threading.Event()
        self._probes: dict[str, Future] = {}
        # Declared-dead hosts that listed their domains: name -> (when, epoch seconds; names).
        self.risen: dict[str, tuple[float, set[str]]] = {}
        self._risen_lock = threading.Lock()
        # One long-lived reader per (host, purpose, body); None where streams are not used.
        # (A pool that cannot hold a channel open, such as a test's fake, gets per-read commands.)
        wanted = STREAMS if streams is None else streams
        usable = wanted and callable(getattr(pool, "open_channel", None))
        self.streams: dict[tuple[str, str, str], StreamReader] | None = {} if usable else None
        self._streams_lock = threading.Lock()

    def stop(self) -> None:
        """Stop reading; reads under way finish in the background, the streams are closed."""
        self._stopped.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._streams_lock:
            readers = list((self.streams or {}).values())
        for reader in readers:
            reader.close()

    def read(self, host: str, purpose: str, body: str, timeout: float) -> tuple[RunResult, str]:
        """Run ``body`` (which reads its nonce as ``$n``) on ``host`` once; result and nonce.

        Through ``host``'s long-lived reader for ``purpose`` when it is free, else as a
        per-read command; either way the read begins now.
        """
        nonce = batch.new_nonce()
        res = None
        if self.streams is not None and not self._stopped.is_set():
            key = (host, purpose, body)
            with self._streams_lock:
                reader = self.streams.get(key)
                if reader is None:
                    reader = self.streams[key] = StreamReader(self.pool, host, body, timeout)
            res = reader.ask(nonce, timeout)
        if res is None:
            res = self.pool.run(host, one_shot(body, nonce), timeout=timeout)
        return res, nonce

    def begin(self, skip: Collection[str] = ()) -> Round:
        """Begin a round: read every host not in ``skip`` (the dead ones), in parallel."""
        rnd = Round(time.monotonic())
        if self.backend is not None:
            return self._begin_on_master(rnd, skip)
        for name, host in self.hosts.items():
            if name in skip:
                if name in self.declared_dead:
                    self._probe(host)
                continue
            try:
                rnd.futures[name] = self._pool.submit(self._list, host)
            except RuntimeError:  # shut down meanwhile
                break
        return rnd

    def _probe(self, host: Host) -> None:
        """Ask a declared-dead host for its list, unless a question to it is still out."""
        pending = self._probes.get(host.name)
        if pending is not None and not pending.done():
            return
        try:
            fut = self._pool.submit(self._list, host)
        except RuntimeError:  # shut down meanwhile
            return
        self._probes[host.name] = fut
        fut.add_done_callback(lambda f, name=host.name: self._probed(name, f))

    def _probed(self, name: str, fut: Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        names, _error = fut.result()
        if names is not None:
            with self._risen_lock:
                self.risen.setdefault(name, (time.time(), names))

    def probes_done(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the questions to declared-dead hosts; True: all back."""
        pending = [f for f in self._probes.values() if not f.done()]
        if pending:
            wait_futures(pending, timeout=timeout)
        return all(f.done() for f in self._probes.values())

    def wait(self, rnd: Round, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the round; True when every read answered."""
        if rnd.futures:
            wait_futures(list(rnd.futures.values()), timeout=timeout)
        return rnd.done()

    def _begin_on_master(self, rnd: Round, skip: Collection[str]) -> Round:
        """One state read on the master, its answer spread over one future per host."""
        futures: dict[str, Future] = {n: Future() for n in self.hosts if n not in skip}
        rnd.futures.update(futures)

        def spread(done: Future) -> None:
            try:
                lists, error = done.result()
            except Exception as exc:  # noqa: BLE001 - a failed read is this round's answer
                lists, error = None, printable(repr(exc))
            for name, fut in futures.items():
                got = (lists or {}).get(name)
                if isinstance(got, set):
                    fut.set_result((got, None))
                else:
                    why = got or error or f"{self.master} did not list {name}"
                    fut.set_result((None, printable(why)))

        try:
            self._pool.submit(self._master_lists).add_done_callback(spread)
        except RuntimeError:  # shut down meanwhile
            for fut in futures.values():
                fut.set_result((None, "stopped"))
        return rnd

    def _master_lists(self) -> tuple[dict[str, set[str] | str] | None, str | None]:
        assert self.backend is not None and self.master is not None
        body = probes_body(self.backend.state_probes())
        res, nonce = self.read(self.master, "lists", body, self.timeout)
        if res.error is not None or res.output is None:
            return None, printable(res.error or "no output")
        split = batch.split_output(res.output.text, nonce)
        state = self.backend.parse_state(split.outputs, source=self.master)
        if state.error is not None:
            return None, printable(state.error)
        return self.backend.domain_lists(state), None

    def _list(self, host: Host) -> tuple[set[str] | None, str | None]:
        tool = host.toolstack if host.toolstack in ("xl", "xm") else "xl"
        res, _nonce = self.read(host.name, "lists", f"{tool} list", self.timeout)
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
