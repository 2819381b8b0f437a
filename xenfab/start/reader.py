"""The run's view of the cluster: the state read each turn, quorum, and the proof of liveness.

One state read per turn (the backend's probes on the master, or, with no manager, every host's
domain list) confirms the starts in flight and re-checks the guests about to start; a start
waits for a round of domain lists begun after the decision to start, from every live host.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cluster import ClusterBackend, ClusterState
from ..errors import StartRefused
from ..gather import batch
from ..textsafe import printable
from .watch import probes_body

if TYPE_CHECKING:
    from ..config import Environment
    from ..remote import SessionPool
    from .watch import DomainWatch, Round

# With no answer from the master this long, nothing more is started.
STATE_GIVE_UP_S = 60.0
# With no fresh domain list from some live host this long, the guests still queued are not
# started (their liveness cannot be proven). A round of reads is waited on (beyond the reads' own
# timeout) this long, and a round with a failed read is retried this often.
LIVENESS_WAIT_S = 60.0
ROUND_WAIT_S = 1.0
ROUND_RETRY_S = 1.0


def quorum_refusal(quorate: bool | None, where: str, backend: ClusterBackend) -> str | None:
    """Why starts are refused on this quorum (read ``where``), or None when it is quorate."""
    if quorate is True:
        return None
    if quorate is False:
        return (
            f"the cluster is not quorate ({where}): starting guests now could run them twice "
            f"once the partitions rejoin; {backend.quorum_hint}"
        )
    return f"the cluster's quorum is unknown ({where}): cannot confirm it is safe to start guests"


def answered(host: str, when: str | float, domains: Iterable[str]) -> str:
    """``xen02 answered at 12:01:03 UTC and lists 2 domains (lb01, mq01): it is not dead``.

    ``when``: an ISO time (a snapshot's ``taken_at``) or epoch seconds; ``domains``: the
    names the host listed (Domain-0 is not counted).
    """
    if isinstance(when, (int, float)):
        at = _dt.datetime.fromtimestamp(when, _dt.timezone.utc).strftime("%H:%M:%S UTC")
    else:
        at = f"{when[11:19]} UTC" if len(when) >= 19 and when[10] == "T" else when
    names = sorted(d for d in domains if d != "Domain-0")
    if not names:
        listed = "lists no domains"
    else:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        listed = f"lists {len(names)} domain{'s' if len(names) != 1 else ''} ({shown})"
    return printable(f"{host} answered at {at} and {listed}: it is not dead")


@dataclass
class Proof:
    """A round's answer: every live host's domain list, or why nothing more may start."""

    domains: dict[str, set[str]] | None = None
    # Liveness unknown for too long: the reason the run starts nothing more.
    stop: str | None = None
    # When the round that proved ``domains`` began (monotonic).
    began: float | None = None


class ClusterReader:
    """Reads the cluster state and the hosts' domain lists for one run.

    ``note`` and ``audit`` say what the reader waits for; ``interrupted`` cuts its waits short.
    ``attach`` gives it the run's session pool and domain watch once they exist.
    """

    def __init__(
        self,
        backend: ClusterBackend,
        env: Environment,
        master: str,
        *,
        dead_hosts: Collection[str] = (),
        liveness_wait_s: float = LIVENESS_WAIT_S,
        state_give_up_s: float = STATE_GIVE_UP_S,
        note: Callable[[str], None],
        audit: Callable[..., None],
        interrupted: Callable[[], bool] = lambda: False,
    ) -> None:
        """Read ``backend``'s state on ``master`` with ``env``'s timeouts."""
        self.backend = backend
        self.env = env
        self.master = master
        self.dead_hosts = frozenset(dead_hosts)
        self.liveness_wait_s = liveness_wait_s
        self.state_give_up_s = state_give_up_s
        self.note = note
        self.audit = audit
        self.interrupted = interrupted
        self.pool: SessionPool | None = None
        self.watch: DomainWatch | None = None
        # The round that vouches for this turn's starts (None: none begun this turn).
        self.round: Round | None = None
        self.next_round_at = 0.0
        self.waiting_since: float | None = None
        self.waiting_key: tuple[str, ...] | None = None
        self.last_state: ClusterState | None = None
        self.last_state_error: str | None = None
        self.state_ok_at = time.monotonic()
        self.read_at = 0.0
        # The run's guests: a backend whose state is only domain lists is asked about them.
        self.guests: list[str] = []

    def attach(self, pool: SessionPool, watch: DomainWatch) -> None:
        """Read through ``pool``; domain lists come from ``watch``."""
        self.pool = pool
        self.watch = watch

    # -- quorum --------------------------------------------------------------------------------

    def refuse_unless_quorate(self, quorate: bool | None, where: str) -> None:
        """StartRefused unless ``quorate`` is True (read ``where``)."""
        why = quorum_refusal(quorate, where, self.backend)
        if why is not None:
            raise StartRefused(why)

    def may_start(self, state: ClusterState) -> bool:
        """True when the state read allows starts: quorate, or a backend with no quorum."""
        return bool(state.quorate) or not self.backend.quorum

    # -- liveness ------------------------------------------------------------------------------

    def dead_now(self, state: ClusterState | None = None) -> set[str]:
        """Hosts proven dead: declared for the run, or fenced after they left (manager's record).

        Offline alone is not: a partitioned member runs on, guests and all.
        """
        state = state or self.last_state
        dead = set(self.dead_hosts)
        if state is not None:
            dead |= {
                name
                for name, online in state.members.items()
                if online is False and state.fenced.get(name) is True
            }
        return dead

    def begin_round(self, state: ClusterState | None = None) -> Round:
        """Ask every host not proven dead for its domain list; the round vouches from now on."""
        assert self.watch is not None
        self.round = self.watch.begin(skip=self.dead_now(state))
        return self.round

    def proven_domains(self, state: ClusterState, queued: int) -> Proof:
        """The domain lists of a round begun after the decision to start, from every live host.

        No domains while some live host has not answered such a round: nothing starts
        meanwhile, the run says what it waits for (``queued`` guests), and after
        ``liveness_wait_s`` the Proof says why nothing more starts.
        """
        assert self.watch is not None
        rnd = self.round
        if rnd is None:
            return Proof()
        # Each read is bounded (its command timeout); a signal cuts the wait short.
        limit = time.monotonic() + self.env.ssh.connect_timeout + ROUND_WAIT_S
        while not self.watch.wait(rnd, 0.1):
            if self.interrupted() or time.monotonic() > limit:
                self.round = None
                return Proof()
        self.round = None
        needed = [h for h in self.watch.hosts if h not in self.dead_now(state)]
        missing = rnd.unproven(needed)
        if not missing:
            if self.waiting_since is not None:
                self.note("every live host listed its domains: starting again")
                self.audit("wait", outcome="resolved")
            self.waiting_since = self.waiting_key = None
            return Proof(rnd.lists(), began=rnd.began)
        now = time.monotonic()
        self.next_round_at = now + ROUND_RETRY_S
        if self.waiting_since is None:
            self.waiting_since = now
        key = tuple(sorted(missing))
        why = "; ".join(f"{h}: {missing[h]}" for h in key)
        if key != self.waiting_key:
            self.waiting_key = key
            msg = (
                f"waiting: no domain list from {', '.join(key)} ({why}); {queued} guest(s) wait "
                f"because any of them could run there (giving up after "
                f"{self.liveness_wait_s:g} s; declare a dead host with --dead HOST)"
            )
            self.note(msg)
            self.audit("wait", outcome="liveness-unknown", message=msg)
        if now - self.waiting_since >= self.liveness_wait_s:
            return Proof(
                stop=(
                    f"liveness unknown: no domain list from {', '.join(key)} for "
                    f"{self.liveness_wait_s:g} s ({why}); fence or power off the host, or "
                    "declare it dead for this run (--dead HOST)"
                )
            )
        return Proof()

    # -- reading the cluster -------------------------------------------------------------------

    def read_state(self, timeout: float | None = None) -> ClusterState | None:
        """The cluster state now, or None (the problem is noted once, in ``last_state_error``)."""
        assert self.pool is not None
        self.read_at = time.monotonic()
        if self.watch is not None and not self.backend.state_probes():
            return self._read_lists(timeout)
        limit = timeout or self.env.ssh.command_timeout
        if self.watch is not None:
            # The master's long-lived reader (a per-read command when it is busy or broken).
            body = probes_body(self.backend.state_probes())
            res, nonce = self.watch.read(self.master, "state", body, limit)
        else:
            nonce = batch.new_nonce()
            script = batch.build_script(nonce, self.backend.state_probes())
            res = self.pool.run(self.master, script, timeout=limit)
        if res.error is not None or res.output is None:
            self.state_problem(res.error or "no output")
            return None
        split = batch.split_output(res.output.text, nonce)
        state = self.backend.parse_state(split.outputs, source=self.master)
        if state.quorate is None:
            self.state_problem(state.error or f"{self.master}: cluster state unreadable")
            return None
        return self._read_ok(state)

    def _read_lists(self, timeout: float | None = None) -> ClusterState | None:
        """No manager: the hosts' domain lists are the state (this turn's round, or a new one).

        A host that does not answer shows nothing here; starts still wait for every live
        host's list in the round that vouches for them (``proven_domains``).
        """
        assert self.watch is not None
        rnd = self.round if self.round is not None else self.watch.begin(skip=self.dead_now())
        limit = time.monotonic() + (timeout or self.env.ssh.command_timeout)
        while not self.watch.wait(rnd, 0.1):
            if self.interrupted() or time.monotonic() > limit:
                break
        lists = rnd.lists()
        if not lists:
            self.state_problem("no host listed its domains")
            return None
        return self._read_ok(self.backend.live_state(lists, self.guests))

    def _read_ok(self, state: ClusterState | None) -> ClusterState | None:
        self.state_ok_at = time.monotonic()
        self.last_state_error = None
        self.last_state = state
        return state

    def state_problem(self, error: str) -> None:
        """Note a failed state read, once per distinct error."""
        error = printable(error)
        if error != self.last_state_error:
            self.note(f"warning: cannot read the cluster state: {error}")
        self.last_state_error = error

    def stale(self, now: float) -> bool:
        """True when no state was read for ``state_give_up_s``: nothing more may start."""
        return now - self.state_ok_at > self.state_give_up_s

    def give_up_reason(self) -> str:
        """Why the run stops when the state is stale."""
        return f"no cluster state from {self.master} for {self.state_give_up_s:g} s"
