"""The run lock while the engine runs: take it (then re-read quorum live), beat, release."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..config import StartPolicy
from ..errors import StartRefused
from .audit import local_user
from .lock import HEARTBEAT_S, MasterLock, configured_path
from .reader import ROUND_WAIT_S

if TYPE_CHECKING:
    pass


class LockUnit:
    """The engine's lockhold (a part of Engine: it works on the engine's run state)."""

    # Everything here runs on the Engine; its attributes are set in Engine.__init__.
    start_policy: StartPolicy

    def _take_lock(self) -> None:
        assert self.pool is not None and self.audit is not None
        pool = self.pool
        path = configured_path(self.cfg, self.env)
        timeout = min(self.env.ssh.command_timeout, self.start_policy.lock_command_s)
        self.lock = MasterLock(
            lambda host, cmd: pool.run(host, cmd, timeout=timeout),
            self.lock_host,
            path,
            local_user(),
        )
        try:
            self.lock.acquire(break_lock=self.options.break_lock)
        except StartRefused as exc:
            self._audit("lock", host=self.lock_host, outcome="refused", message=str(exc))
            raise
        if self.lock.broken is not None:
            msg = f"broke the lock held by {self.lock.broken.describe()}"
            self.progress.note(f"warning: {msg}")
            self._audit("lock-broken", host=self.lock_host, outcome="broken", message=msg)
        self._audit("lock", host=self.lock_host, outcome="acquired", path=path)
        self.beat_thread = threading.Thread(target=self._heartbeat, name="lock-beat", daemon=True)
        self.beat_thread.start()
        # A host declared dead that answers the first round is not dead: a live one answers
        # within a round's wait (a powered-off one is not waited for longer than that).
        assert self.watch is not None
        self.watch.probes_done(ROUND_WAIT_S)
        self._check_safety()
        # The lock is ours: re-read quorum live before the first start.
        state = self.reader.read_state()
        if state is None:
            raise StartRefused(
                f"cannot read the cluster state on {self.master}: {self.reader.last_state_error}"
            )
        if self.backend.quorum:
            self.reader.refuse_unless_quorate(
                state.quorate, f"{self.backend.state_tool} on {self.master}"
            )
        self.primed = state

    def _heartbeat(self) -> None:
        """Refresh the lock's heartbeat while the run lives (another run sees it alive)."""
        assert self.lock is not None
        while not self.beat_stop.wait(HEARTBEAT_S):
            self.lock.beat()

    def _stop_heartbeat(self) -> None:
        self.beat_stop.set()
        if self.beat_thread is not None:
            # A beat under way ends within its command's limit; the release must come after.
            self.beat_thread.join(self.start_policy.lock_command_s + 2)

    def _release_lock(self) -> None:
        if self.lock is None or not self.lock.held:
            return
        for _ in range(3):
            try:
                self.lock.release()
                self._audit("unlock", host=self.lock_host, outcome="released")
                return
            except KeyboardInterrupt:
                # Releasing is the one thing Ctrl-C must not skip.
                self.interrupts.add()
                continue
