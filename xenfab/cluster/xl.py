"""Xen hosts with no cluster manager (``backend: xl``): every host's ``xl list`` is the state.

A guest runs when some reachable host lists its domain, and is down otherwise. No manager says
which down guests are to run, so that is explicit: a config linked from a host's xendomains
autostart directory (``/etc/xen/auto`` unless ``backend_options.auto_dir`` says otherwise), or a
name matching ``backend_options.guests``. Any other guest with a config is down and not ours:
listed, never started. Starting is ``xl create CONFIG`` on the target host, behind a check of
that host's own list in the same command; confirmed when the target's ``xl list`` shows it.
There is no quorum and no one else serialises starts: the run lock and the round of every
host's domain list before each start are the whole safety, and a host that does not answer
makes every down guest's liveness unknown until it is declared dead.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from . import register
from .base import (
    TARGET,
    TOOLSTACK_PROBES,
    ClusterBackend,
    ClusterState,
    Gathered,
    Output,
    Probe,
    ScriptStep,
    ServiceState,
    StartOutcome,
    StateVocabulary,
    UnsafeName,
    safe_guest,
    safe_host,
    tier_comments,
)

DEFAULT_AUTO_DIR = "/etc/xen/auto"
DOWN = "down"
RUNNING = "running"
NOT_OURS = "not-ours"
# A domain in a host's list occupies that host whatever its xl state letters say (paused,
# dying, crashed): only "listed nowhere" is down.
STATES = StateVocabulary(
    frozenset({DOWN}),
    frozenset({RUNNING}),
    frozenset(),
    frozenset(),
    owners_tracked=False,
    unclaimed=frozenset({NOT_OURS}),
)
# What the guard in front of `xl create` prints when the target already lists the domain.
GUARD_REFUSED = "XENFAB-GUARD-REFUSED"
AUTO_PROBE = "autostart"
# One line per autostart entry: the entry, a tab, where it points (readlink -f; itself if not
# a link). Names with a tab or a newline are not ours to parse; they are skipped.
_AUTO_LINE = re.compile(r"^(/[^\t\n]*)\t(/[^\t\n]*)$")
_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]{1,4095}$")
OPTION_KEYS = {"auto_dir", "guests", "lock_host"}


class XlBackend(ClusterBackend):
    """Plain xl toolstack hosts on shared storage, no cluster manager."""

    name = "xl"
    quorum = False
    start_on = TARGET
    state_tool = "xl list"
    start_tool = "xl create"

    @classmethod
    def check_options(cls, options: Mapping[str, Any], where: str) -> dict[str, Any]:
        """``auto_dir`` (absolute, or null: none), ``guests`` (name patterns), ``lock_host``."""
        unknown = sorted(set(options) - OPTION_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}.backend_options: unknown key(s) {', '.join(unknown)} "
                f"(xl knows {', '.join(sorted(OPTION_KEYS))})"
            )
        out: dict[str, Any] = {}
        auto = options.get("auto_dir", DEFAULT_AUTO_DIR)
        if isinstance(auto, str):
            from ..paths import expand_path  # ~ and $VARS, as lock_path ($XENFAB_LAB_DIR)

            auto = expand_path(auto)
        if auto is not None and (not isinstance(auto, str) or not _PATH.match(auto)):
            raise ConfigError(
                f"{where}.backend_options.auto_dir: {auto!r} is not an absolute path (or null)"
            )
        out["auto_dir"] = auto.rstrip("/") or "/" if isinstance(auto, str) else None
        guests = options.get("guests", [])
        if isinstance(guests, str):
            guests = [guests]
        if not isinstance(guests, list) or not all(isinstance(g, str) and g for g in guests):
            raise ConfigError(f"{where}.backend_options.guests: a list of guest name patterns")
        out["guests"] = list(guests)
        lock = options.get("lock_host")
        if lock is not None:
            try:
                safe_host(str(lock))
            except UnsafeName:
                raise ConfigError(
                    f"{where}.backend_options.lock_host: {lock!r} is not a valid host name"
                ) from None
            out["lock_host"] = str(lock)
        return out

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        """An xl backend; ``options`` as ``check_options`` returns them (defaults otherwise)."""
        super().__init__(self.check_options(options or {}, "backend_options"))

    @property
    def states(self) -> StateVocabulary:
        """``down`` (listed nowhere, ours), ``running`` (listed somewhere); ``not-ours`` unknown."""
        return STATES

    @property
    def auto_dir(self) -> str | None:
        """The autostart directory every host is asked for, or None."""
        return self.options.get("auto_dir", DEFAULT_AUTO_DIR)

    def host_probes(self) -> list[Probe]:
        """The toolstack probes, and the host's autostart entries."""
        probes = list(TOOLSTACK_PROBES)
        if self.auto_dir is not None:
            d = shlex.quote(self.auto_dir)
            probes.append(
                Probe(
                    AUTO_PROBE,
                    f'if [ -d {d} ]; then for f in {d}/*; do [ -e "$f" ] || continue; '
                    'r=$(readlink -f -- "$f" 2>/dev/null) || r=$f; '
                    'printf \'%s\\t%s\\n\' "$f" "$r"; done; fi',
                )
            )
        return probes

    def state_probes(self) -> list[Probe]:
        """Nothing: there is no manager to ask; the state is every host's list."""
        return []

    def parse_state(self, outputs: dict[str, Output], source: str) -> ClusterState:
        """No manager: no quorum, no members; services come from ``complete``."""
        return ClusterState(None, source="xl")

    def complete(self, cluster: ClusterState, gathered: Gathered) -> ClusterState:
        """One service per guest config: running where listed, else down when marked ours.

        An unreadable config linked from an autostart directory is ours, and its guest is down
        as far as anyone can tell: it gets a service named after the file, so that it ends the
        run under STILL DOWN with the reason instead of as a warning only. A guest no host that
        answered claims is ``not-ours``; when some host of ``gathered.hosts`` did not answer, its
        note names them (their autostart directory is unread): the planner keeps it down with
        its liveness unknown until they are declared dead.
        """
        outputs = gathered.host_outputs
        marked = parse_autostart(outputs) if self.auto_dir is not None else {}
        silent = unread_autostart(outputs, gathered.hosts) if self.auto_dir is not None else []
        patterns = list(self.options.get("guests", []))
        services: dict[str, ServiceState] = {}
        for name, path in sorted(gathered.configs.items()):
            listed = sorted(gathered.running.get(name, []))
            if listed:
                services[name] = ServiceState(name, RUNNING, listed[0])
                continue
            linked = sorted(h for h, paths in marked.items() if _linked(path, paths))
            pattern = next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)
            if linked:
                services[name] = self._linked_down(name, linked)
            elif pattern is not None:
                note = f"matches backend_options.guests {pattern!r}"
                services[name] = ServiceState(name, DOWN, None, None, note)
            else:
                auto = self.auto_dir or "an autostart directory"
                note = f"not linked from {auto} on any host that answered, nor in "
                if silent:
                    # The silent host's own link may claim it: only its death settles that.
                    note += (
                        f"backend_options.guests; {', '.join(silent)} did not answer (its {auto} "
                        "unread): not ours as far as anyone can tell"
                    )
                else:
                    note += "backend_options.guests: not ours to start"
                services[name] = ServiceState(name, NOT_OURS, note=note)
        for path in sorted(gathered.unreadable):
            linked = sorted(h for h, paths in marked.items() if _linked(path, paths))
            name = _file_stem(path)
            if linked and name not in services:
                services[name] = self._linked_down(name, linked)
        return ClusterState(
            None,
            {},
            services,
            source="xl list",
            extra={"autostart": autostart_guests(outputs, gathered) if self.auto_dir else {}},
        )

    def _linked_down(self, name: str, linked: list[str]) -> ServiceState:
        """``name`` down and ours: its config is linked from the autostart dir of ``linked``."""
        # The one host whose xendomains would have started it is where it ran: prefer it.
        # Linked from several (an autostart directory on shared storage): no preference.
        last = linked[0] if len(linked) == 1 else None
        where = f"{self.auto_dir} on {', '.join(linked)}"
        return ServiceState(name, DOWN, None, last, f"linked from {where}")

    def live_state(
        self, domains: Mapping[str, Iterable[str]], guests: Iterable[str]
    ) -> ClusterState | None:
        """``guests`` running where some list shows them, down elsewhere (the lists are all)."""
        where: dict[str, list[str]] = {}
        for host, names in domains.items():
            for name in names:
                where.setdefault(name, []).append(host)
        services = {}
        for g in guests:
            hosts = sorted(where.get(g, []))
            services[g] = ServiceState(g, RUNNING, hosts[0]) if hosts else ServiceState(g, DOWN)
        return ClusterState(None, {}, services, source="xl list")

    def lock_host(self, reader: str, configured: str) -> str:
        """``backend_options.lock_host``, else the environment's master (or first host).

        Never the reader: two runs that read on different hosts must meet at one lock.
        """
        return self.options.get("lock_host") or configured

    def start_command(
        self,
        guest: str,
        host: str,
        state: str | None = None,
        *,
        config: str | None = None,
        dead_owner: str | None = None,
    ) -> str:
        """``xl create CONFIG`` on ``host`` (xm where only it is), unless ``host`` lists it.

        ``dead_owner`` changes nothing: no manager holds a service to move, and the domain lists
        of every live host were just read.
        """
        name = safe_guest(guest)
        safe_host(host)
        if config is None or not _PATH.match(config) or ".." in config.split("/"):
            raise UnsafeName(
                f"guest {guest}: config path {config!r} is not one xenfab will send to a shell"
            )
        # xl where it is installed, xm on the old (Xen 3.x) hosts that only have xm.
        return (
            "if command -v xl >/dev/null 2>&1; then t=xl; "
            "elif command -v xm >/dev/null 2>&1; then t=xm; else t=xl; fi; "
            f'if "$t" list {name} >/dev/null 2>&1; then echo {GUARD_REFUSED} running-here; '
            f'exit 3; fi; "$t" create {shlex.quote(config)}'
        )

    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Exit 0 means the domain was built; the target's list confirms it runs."""
        text = output.text
        if GUARD_REFUSED in text:
            return StartOutcome(
                guest,
                host,
                False,
                f"not created: {host}'s own xl list shows {guest} already",
                output.exit_code,
                running_on=host,
                already_running=True,
            )
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if output.exit_code == 0:
            return StartOutcome(guest, host, True, "xl create done", 0, acted_on=host)
        last = next((ln for ln in reversed(lines) if not ln.startswith("Parsing config")), "")
        if "already exists" in text:
            return StartOutcome(
                guest,
                host,
                False,
                last or "domain already exists",
                output.exit_code,
                already_running=True,
            )
        return StartOutcome(
            guest, host, False, last or f"xl create exited {output.exit_code}", output.exit_code
        )

    def plain_words(self, guest: str, host: str, state: str | None, dead_owner: str | None) -> str:
        """``create web01 on xen02 (guarded: not in its own list)``; the config is in --verbose."""
        return f"create {guest} on {host} (guarded: not in its own list)"

    def script_lines(self, steps: Sequence[ScriptStep], runner: str) -> list[str]:
        """A guard function ``up``, then one section per target host: ``up GUEST CONFIG``.

        No host is a master: each section runs on its host (``sh -s HOST`` picks it). ``up``
        keeps the start path's guard on that host (its own ``xl list`` must not show the guest);
        the other hosts' lists are the admin's to check, as the header says.
        """
        for step in steps:  # the same validation (names, config paths) as the start path
            self.start_command(step.guest, step.host, step.state, config=step.config)
        dirs = {posixpath.dirname(s.config or "") for s in steps}
        base = dirs.pop() if len(dirs) == 1 else None
        head = f"""# Each section runs on its own host, every tier 0 line before tier 1:
#   ssh HOST sh -s HOST < FILE     (or paste the section into a shell on HOST)
# Before you run it, check that no other host's xl list shows these guests: each section
# sees only its own host's list.
T=xl
if command -v xl >/dev/null 2>&1; then T=xl; elif command -v xm >/dev/null 2>&1; then T=xm; fi
fails=0
# up GUEST CONFIG: create GUEST from CONFIG unless this host's own domain list shows it.
up() {{
  if "$T" list "$1" >/dev/null 2>&1; then
    echo "SKIP $1: running on this host ($(hostname))"; fails=$((fails + 1)); return
  fi
  "$T" create "$2" || fails=$((fails + 1))
}}
here=${{1-}}
ran=
{f"D={shlex.quote(base)}" if base else "D="}""".split("\n")

        def line(step: ScriptStep) -> str:
            config = step.config or ""
            if base and posixpath.dirname(config) == base:
                path = '"$D"/' + shlex.quote(posixpath.basename(config))
            else:
                path = shlex.quote(config)
            return f"  up {shlex.quote(step.guest)} {path}"

        body: list[str] = []
        for host in dict.fromkeys(s.host for s in steps):
            mine = [s for s in steps if s.host == host]
            q = shlex.quote(host)
            body += ["", f"# ===== on {host} " + "=" * max(3, 60 - len(host))]
            body += [f'if [ "$here" = {q} ]; then', "  ran=1"]
            body += ["  " + ln if ln.startswith("#") else ln for ln in tier_comments(mine, line)]
            body.append("fi")
        tail = ["", '[ -n "$ran" ] || { echo "no section here for host \'$here\'" >&2; exit 1; }']
        return [*head, *body, *tail]


def parse_autostart(host_outputs: Mapping[str, Mapping[str, Output]]) -> dict[str, set[str]]:
    """Host -> the autostart entries it printed (each entry and where it points)."""
    marked: dict[str, set[str]] = {}
    for host, outputs in host_outputs.items():
        out = outputs.get(AUTO_PROBE)
        if out is None or out.exit_code != 0:
            continue
        paths: set[str] = set()
        for line in out.text.splitlines():
            m = _AUTO_LINE.match(line)
            if m:
                paths.update((m.group(1), m.group(2)))
        if paths:
            marked[host] = paths
    return marked


def autostart_guests(
    host_outputs: Mapping[str, Mapping[str, Output]], gathered: Gathered
) -> dict[str, list[str]]:
    """Host -> the guests its autostart directory links, for every host whose entries were read.

    A config is known by its guest's name, an unreadable one by its file's stem; an entry that
    points at no config of the directory is named by its stem too (xendomains starts it all
    the same).
    """
    read = [h for h, o in host_outputs.items() if (p := o.get(AUTO_PROBE)) and not p.exit_code]
    by_path = {path: name for name, path in gathered.configs.items()}
    by_base = {posixpath.basename(path): name for path, name in by_path.items()}
    for path in gathered.unreadable:
        by_base.setdefault(posixpath.basename(path), _file_stem(path))
    out: dict[str, list[str]] = {}
    for host in sorted(read):
        names: set[str] = set()
        for line in host_outputs[host][AUTO_PROBE].text.splitlines():
            m = _AUTO_LINE.match(line)
            if not m:
                continue
            entry, target = m.group(1), m.group(2)
            name = by_path.get(target) or by_path.get(entry)
            name = name or by_base.get(posixpath.basename(target))
            name = name or by_base.get(posixpath.basename(entry))
            names.add(name or _file_stem(entry))
        out[host] = sorted(names)
    return out


def unread_autostart(
    host_outputs: Mapping[str, Mapping[str, Output]], hosts: Iterable[str] | None
) -> list[str]:
    """The hosts of ``hosts`` whose autostart entries were not read (no answer, probe failed)."""
    read = {
        h
        for h, outputs in host_outputs.items()
        if (o := outputs.get(AUTO_PROBE)) and not o.exit_code
    }
    return sorted(h for h in dict.fromkeys(hosts or ()) if h not in read)


def _file_stem(path: str) -> str:
    """``/etc/xen/web01.cfg`` -> ``web01``: the name an unreadable config is known by."""
    base = posixpath.basename(path)
    stem, ext = posixpath.splitext(base)
    return stem if ext in CONFIG_EXTENSIONS and stem else base


def _linked(config: str, entries: set[str]) -> bool:
    """True when an autostart entry is ``config`` (or a link to it, or a copy by its name)."""
    if config in entries:
        return True
    base = posixpath.basename(config)
    return any(posixpath.basename(e) == base for e in entries)


# The endings assemble's _broken_for tries after a guest's name, so the two agree on the file.
CONFIG_EXTENSIONS = (".cfg", ".conf", ".xl", ".hvm")

register(XlBackend.name, XlBackend)
