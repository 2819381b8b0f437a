"""The rehearsal lab: simulated Xen hosts behind a real OpenSSH sshd on loopback.

``up()`` starts sshd on one loopback address per host (xen01 = 127.0.0.11, xen02 = 127.0.0.12,
... up to 100 hosts) and writes ``<lab_dir>/ssh_config`` so that ``ssh -F <lab_dir>/ssh_config
xen01 'xl info'`` -- and Fabric -- reach them over real SSH. Each command runs through a real
``/bin/sh`` whose PATH starts with that host's emulated tools: the Xen toolstack's (``xl`` or
``xm``, ``xentop``) on every host, and the cluster manager's of the lab's backend (rgmanager,
the default: ``clustat``, ``clusvcadm``; ``xl``: none, the toolstack alone, with a per-host
autostart directory). They print the real output formats and share one SQLite state, in which
guests are recorded in neutral words and each manager's family keeps its own state.

A fresh lab (deterministic from ``seed``) looks like a cluster after a crash: some hosts still run
guests, most are down (rgmanager: ``disabled`` or ``failed``); their configs are in
``<lab_dir>/xenconfig``. Differences from a naive model that the lab reproduces on purpose:

- like rgmanager, ``clusvcadm -e`` refuses a service in state ``failed`` (``Failure``, exit 255):
  disable it first (``clusvcadm -d``);
- a failed start (not enough RAM, ``start-fails``) leaves the service ``stopped`` with the target
  as last owner;
- guest legacy07 (rgmanager: ``vm:legacy07``, ``failed``) has the config ``legacy-vm.cfg``, an
  xm-style Python file with a computed name (``name = "legacy%02d" % vmid``): no key=value parser
  can read it, so a recovery tool must report it as not plannable;
- ``-m`` with a name that is not a member follows rgmanager's closest-match rule (longest common
  prefix; ``No matches for 'x' found`` and exit 1 when nothing matches).

``up(clusters=N)`` brings up N clusters instead, each a lab of its own in ``<lab_dir>/c<n>``
(hosts ``cn-xen01``... on 127.0.n.11 and up), environments ``lab-c1`` ... ``lab-cN``.

Faults (``inject``): host-down/host-up HOST, slow HOST MS, command-fails/command-ok HOST,
inquorate, quorate, start-behind GUEST HOST, start-fails/start-ok GUEST, hand-start GUEST HOST, and
the armed start-behind-on-start and hand-start-on-start (fired at the next start of another guest).
"""

from .control import INJECT_KINDS, down, has_clusters, inject, reseed, status, up
from .control import default_lab_dir as lab_dir

__all__ = ["INJECT_KINDS", "down", "has_clusters", "inject", "lab_dir", "reseed", "status", "up"]
