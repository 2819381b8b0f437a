"""The one remote layer: config, connect with host-key checks, one channel reader, the pool.

Gather (one script per host, many hosts at once) and start (many short commands on kept-open
transports) reach hosts only through this package. Failures are typed values
(xenfab.remote.errors): code branches on ``kind``, people read the one-line message.

- sshconfig: the Fabric config of an environment and the indexed ssh_config lookup;
- connect, hostkeys: a Connection that refuses unknown, changed and @revoked host keys;
- channel: run one command on an open transport within its time and byte limits;
- group: one command on one host (``run``) or many (``run_all`` -> HostResults);
- pool: SessionPool, kept-open transports for the start engine;
- stream: StreamReader, a long-lived reader (one channel running a loop, a read per nonce line)
  for the start engine's per-start domain lists and state reads;
- errors: RemoteError's kinds and ``classify``, the one place an exception becomes one.
"""

from __future__ import annotations

from ..errors import RemoteError
from .channel import MAX_OUTPUT_BYTES, CommandLost, CommandTimeout, OutputTooLarge, bounded, execute
from .connect import connect, transport
from .errors import HOST_KEY_KINDS, KINDS, classify
from .group import HostResults, RunResult, run, run_all
from .hostkeys import known_hosts_files
from .pool import CHANNELS_PER_TRANSPORT, SessionPool
from .sshconfig import IndexedSSHConfig, fabric_config, load_ssh_config, runtime_ssh_path

__all__ = [
    "CHANNELS_PER_TRANSPORT",
    "HOST_KEY_KINDS",
    "KINDS",
    "MAX_OUTPUT_BYTES",
    "CommandLost",
    "CommandTimeout",
    "HostResults",
    "IndexedSSHConfig",
    "OutputTooLarge",
    "RemoteError",
    "RunResult",
    "SessionPool",
    "bounded",
    "classify",
    "connect",
    "execute",
    "fabric_config",
    "load_ssh_config",
    "runtime_ssh_path",
    "known_hosts_files",
    "run",
    "run_all",
    "transport",
]
