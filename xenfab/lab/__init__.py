"""The rehearsal lab: simulated Xen/rgmanager hosts behind a real OpenSSH sshd on loopback.

``up()`` starts sshd on one loopback address per host (xen01 = 127.0.0.11, xen02 = 127.0.0.12,
... up to 100 hosts) and writes ``<lab_dir>/ssh_config`` so that ``ssh -F <lab_dir>/ssh_config
xen01 'xl info'`` -- and Fabric -- reach them over real SSH. Each command runs through a real
``/bin/sh`` whose PATH starts with that host's emulated tools (``xl`` or ``xm``, ``xentop``,
``clustat``, ``clusvcadm``), which print the real output formats and share one SQLite state.

A fresh lab (deterministic from ``seed``) looks like a cluster after a crash: some hosts still run
guests, most guests are ``disabled`` or ``failed``; their configs are in ``<lab_dir>/xenconfig``.
Differences from a naive model that the lab reproduces on purpose:

- like rgmanager, ``clusvcadm -e`` refuses a service in state ``failed`` (``Failure``, exit 255):
  disable it first (``clusvcadm -d``);
- a failed start (not enough RAM, ``start-fails``) leaves the service ``stopped`` with the target
  as last owner;
- ``vm:legacy07`` is ``failed`` and its config ``legacy-vm.cfg`` is an xm-style Python file with a
  computed name (``name = "legacy%02d" % vmid``): no key=value parser can read it, so a recovery
  tool must report it as not plannable;
- ``-m`` with a name that is not a member follows rgmanager's closest-match rule (longest common
  prefix; ``No matches for 'x' found`` and exit 1 when nothing matches).

Faults (``inject``): host-down/host-up HOST, slow HOST MS, command-fails/command-ok HOST,
inquorate, quorate, start-behind GUEST HOST, start-fails/start-ok GUEST.
"""

from .control import INJECT_KINDS, down, inject, reseed, status, up
from .control import default_lab_dir as lab_dir

__all__ = ["INJECT_KINDS", "down", "inject", "lab_dir", "reseed", "status", "up"]
