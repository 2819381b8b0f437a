"""rgmanager (RHEL 5/6): ``clustat`` to read, ``clusvcadm -e vm:NAME -m HOST`` to start."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from ..parse import (
    FenceVerdict,
    ParseError,
    fencing_verdicts,
    parse_clustat,
    parse_clusvcadm,
    parse_cman_nodes,
    parse_fence_tool_ls,
    parse_group_tool_ls,
)
from . import register
from .base import (
    ClusterBackend,
    ClusterState,
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

VM_PREFIX = "vm:"
# What the guard in front of a `clusvcadm -d` prints when it refuses (and so sends nothing).
GUARD_REFUSED = "XENFAB-GUARD-REFUSED"
# A running state a service may be moved from once its owner is proven dead.
DEAD_OWNER_STATES = frozenset({"started", "starting", "recovering", "stopping"})
# The fence-state probes' names in the master's batch.
FENCE_LS, CMAN_NODES, GROUP_LS = "fence-ls", "cman-nodes", "group-ls"


def _guarded_disable(guest: str, state: str, owner: str | None, enable: str) -> str:
    """``clusvcadm -d`` then ``enable``, only if the service still reads ``state`` (on ``owner``).

    The check and the ``-d`` are one remote command, milliseconds apart: a guest started behind
    the run's back since its last clustat read is seen here and left running. The master's own
    ``xl list``/``xm list`` must not show the guest either (a hand start there). Anything but an
    exact match (clustat failing, another state, another owner) refuses: the guard can only
    ever keep a ``-d`` from being sent.
    """
    service = VM_PREFIX + guest
    q = shlex.quote(service)
    want = f'state_str="{state}"'
    owner_check = ""
    if owner is not None:
        owner_check = f' && printf %s "$s" | grep -qF {shlex.quote(f" owner={_xq(owner)}")}'
    tool = (
        "if command -v xl >/dev/null 2>&1; then x=xl; elif command -v xm >/dev/null 2>&1; "
        "then x=xm; else x=; fi"
    )
    refuse = f"echo {GUARD_REFUSED}"
    named = shlex.quote(f"name={_xq(service)}")
    return (
        f"s=$(clustat -x -s {q} 2>&1); {tool}; "
        f'if printf %s "$s" | grep -qF {named} '
        f'&& printf %s "$s" | grep -qF {shlex.quote(want)}{owner_check}; then '
        f'if [ -n "$x" ] && $x list {shlex.quote(guest)} >/dev/null 2>&1; then '
        f'{refuse} running-here "$(hostname)"; exit 3; fi; '
        f"clusvcadm -d {q} && {enable}; "
        f"else {refuse} state; printf '%s\\n' \"$s\" | grep -F {named}; "
        "exit 3; fi"
    )


def _xq(value: str) -> str:
    """``value`` as a double-quoted XML attribute value (names are validated: no escapes)."""
    return f'"{value}"'


# rgmanager's service states (rg_state.h). Down: the service runs nowhere and rgmanager will not
# start it by itself (`stopped` is also what a failed enable leaves). Transitions: rgmanager is
# acting on it; starting it over would race rgmanager. `checking` is a status check of a started
# service. `uninitialized` and anything new are unknown: left alone.
# The state a service is in when it runs, and the one it is left in when disabled by hand.
STARTED, DISABLED = "started", "disabled"
DOWN_STATES = frozenset({DISABLED, "failed", "stopped", "recoverable"})
RUNNING_STATES = frozenset({STARTED})
TRANSITION_STATES = frozenset({"starting", "stopping", "recovering", "migrating", "checking"})
# A failed enable leaves the service `failed` (or `stopped`, already down): retried, not waited on.
STATES = StateVocabulary(
    DOWN_STATES,
    RUNNING_STATES,
    TRANSITION_STATES,
    frozenset({"failed"}),
    movable=DEAD_OWNER_STATES,
)


class RgmanagerBackend(ClusterBackend):
    """Red Hat Cluster Suite's resource group manager."""

    name = "rgmanager"
    service_format = VM_PREFIX + "{guest}"
    state_tool = "clustat"
    start_tool = "clusvcadm"
    quorum_hint = "restore quorum first (clustat, cman_tool status)"

    @property
    def states(self) -> StateVocabulary:
        """disabled/failed/stopped/recoverable down; started running; the rest transitions."""
        return STATES

    def replan_state(self, state: str) -> str:
        """A failed enable leaves the service ``stopped``: re-planned as ``disabled`` (ours)."""
        return "disabled" if state == "stopped" else state

    def state_probes(self) -> list[Probe]:
        """``clustat -x`` (the text layout only when XML fails), and the fence state.

        The fence state is RHEL 6 fenced's ``fence_tool ls -n``; where that fails (RHEL 5 has no
        ``fence_tool ls``), cman's ``cman_tool nodes -f`` and groupd's ``group_tool ls``. All in
        the master's one batch.
        """
        return [
            Probe("clustat-x", "clustat -x"),
            Probe("clustat", "clustat", fallback_for="clustat-x"),
            Probe(FENCE_LS, "fence_tool ls -n"),
            Probe(CMAN_NODES, "cman_tool nodes -f", fallback_for=FENCE_LS),
            Probe(GROUP_LS, "group_tool ls", fallback_for=FENCE_LS),
        ]

    def parse_state(self, outputs: dict[str, Output], source: str) -> ClusterState:
        """Parse clustat XML, or its text layout when XML was not available."""
        errors = []
        for probe in ("clustat-x", "clustat"):
            out = outputs.get(probe)
            if out is None:
                continue
            if out.exit_code != 0:
                first = out.text.strip().splitlines()[:1]
                errors.append(f"{probe} exited {out.exit_code}: {first[0] if first else ''}")
                continue
            try:
                parsed = parse_clustat(out.text, source=f"{source}: {probe.replace('-', ' -')}")
            except ParseError as exc:
                errors.append(str(exc))
                continue
            services = {}
            for svc_name, svc in parsed.services.items():
                if not svc_name.startswith(VM_PREFIX):
                    continue
                guest = svc_name[len(VM_PREFIX) :]
                services[guest] = ServiceState(guest, svc.state, svc.owner, svc.last_owner)
            members = {m.name: m.online for m in parsed.members}
            error = None
            if not parsed.rgmanager_running:
                error = f"{source}: rgmanager is not running; no service information"
            gone = {m.name: m.node_id for m in parsed.members if not m.online}
            verdicts = fence_verdicts(outputs, gone, source)
            state = ClusterState(parsed.quorate, members, services, probe, error)
            state.fenced = {name: v.fenced for name, v in verdicts.items()}
            state.extra["fencing"] = {name: v.why for name, v in verdicts.items()}
            return state
        return ClusterState(None, source="", error="; ".join(errors) or "no clustat output")

    def start_command(
        self,
        guest: str,
        host: str,
        state: str | None = None,
        *,
        config: str | None = None,
        dead_owner: str | None = None,
    ) -> str:
        """``clusvcadm -e vm:NAME -m HOST``; a failed service is disabled first, as rgmanager asks.

        Always the vm: prefix: clusvcadm would otherwise add ``service:``. ``-d`` stops a running
        service, so it is only ever sent behind a guard in the same remote command that re-reads
        the service (``clustat -x -s``) right before it and refuses unless the service is still
        failed (or, for ``dead_owner``, still in that state on that dead member), and the master's
        own domain list does not show the guest.
        """
        safe_guest(guest)
        service = shlex.quote(VM_PREFIX + guest)
        enable = f"clusvcadm -e {service} -m {safe_host(host)}"
        if dead_owner is not None:
            if state not in DEAD_OWNER_STATES:
                raise ValueError(f"no start command for {guest} in state {state!r} on a dead owner")
            return _guarded_disable(guest, state, safe_host(dead_owner), enable)
        if state == "failed":
            # rgmanager refuses to enable a failed service; -d clears it.
            return _guarded_disable(guest, "failed", None, enable)
        return enable

    def parse_start(self, guest: str, host: str, output: Output) -> StartOutcome:
        """Success only when clusvcadm says so and acted on the member we asked for."""
        text = output.text
        if GUARD_REFUSED in text:
            return _refused(guest, host, text, output.exit_code)
        lines = text.splitlines(keepends=True)
        enable_at = [i for i, line in enumerate(lines) if "trying to enable" in line]
        if enable_at:
            # After a chained `clusvcadm -d`, only the enable's report says what happened.
            start = enable_at[-1]
            while start > 0 and (
                "not in membership list" in lines[start - 1] or "Closest match" in lines[start - 1]
            ):
                start -= 1
            text = "".join(lines[start:])
        try:
            res = parse_clusvcadm(text, output.exit_code, source=f"clusvcadm on {host}")
        except ParseError as exc:
            return StartOutcome(guest, host, False, str(exc), output.exit_code)
        acted = res.member
        ok = bool(res.ok)
        message = res.message
        if ok and acted and acted != host and not res.already_running:
            # rgmanager's fuzzy -m matching picked another member: it runs, but not where planned.
            message = f"{message} (clusvcadm chose member {acted}, not {host})"
        return StartOutcome(
            guest,
            host,
            ok,
            message,
            output.exit_code,
            acted_on=acted,
            running_on=res.running_on or (acted if ok and not res.already_running else None),
            already_running=bool(res.already_running),
        )

    def plain_words(self, guest: str, host: str, state: str | None, dead_owner: str | None) -> str:
        """``enable db02 on xen02``, with the guard said when a ``clusvcadm -d`` comes first."""
        if dead_owner is not None:
            return (
                f"move {guest} from dead {dead_owner} to {host} "
                f"(guarded: still {state} on {dead_owner}, not running on the master)"
            )
        if state == "failed":
            return f"enable {guest} on {host} (guarded: still failed, not running on the master)"
        return f"enable {guest} on {host}"

    def script_lines(self, steps: Sequence[ScriptStep], runner: str) -> list[str]:
        """A guard function ``up``, then ``up GUEST HOST STATE [DEAD_OWNER]`` per guest.

        ``up`` keeps every guard of the start path: it re-reads the service (``clustat -x -s``)
        and acts only if it still reads the planned state (on the dead owner, for a move), and
        only if this host's own domain list does not show the guest; ``clusvcadm -d`` comes
        first only for a failed service or a move, as ``start_command`` sends it.
        """
        for step in steps:  # the same validation (names, states) as the start path
            self.start_command(step.guest, step.host, step.state, dead_owner=step.dead_owner)
        head = f"""# Run on {runner} (the master): sh FILE, or: ssh {runner} sh -s < FILE
X=
if command -v xl >/dev/null 2>&1; then X=xl; elif command -v xm >/dev/null 2>&1; then X=xm; fi
fails=0
# up GUEST HOST STATE [DEAD]: clusvcadm -e vm:GUEST -m HOST, only if clustat still reads
# STATE (on DEAD, the dead owner) and this host's own domain list does not show GUEST.
up() {{
  s=$(clustat -x -s "vm:$1" 2>&1)
  if ! printf '%s\\n' "$s" | grep -qF "name=\\"vm:$1\\"" ||
    ! printf '%s\\n' "$s" | grep -qF "state_str=\\"$3\\"" ||
    {{ [ -n "${{4-}}" ] && ! printf '%s\\n' "$s" | grep -qF " owner=\\"$4\\""; }}; then
    echo "SKIP $1: not $3${{4:+ on $4}} any more: $(printf '%s\\n' "$s" | grep -F "vm:$1")"
    fails=$((fails + 1)); return
  fi
  if [ -n "$X" ] && "$X" list "$1" >/dev/null 2>&1; then
    echo "SKIP $1: running on this host ($(hostname))"; fails=$((fails + 1)); return
  fi
  if [ "$3" = failed ] || [ -n "${{4-}}" ]; then
    clusvcadm -d "vm:$1" || {{ fails=$((fails + 1)); return; }}
  fi
  clusvcadm -e "vm:$1" -m "$2" || fails=$((fails + 1))
}}""".split("\n")

        def line(step: ScriptStep) -> str:
            words = [step.guest, step.host, step.state or ""]
            if step.dead_owner is not None:
                words.append(step.dead_owner)
            return "up " + " ".join(shlex.quote(w) for w in words)

        return [*head, *tier_comments(steps, line)]


def fence_verdicts(
    outputs: dict[str, Output], gone: dict[str, int | None], source: str
) -> dict[str, FenceVerdict]:
    """Per member that left (name -> node id): proven fenced since, or why not (never raises).

    Unreadable fence state proves nothing: those members stay liveness unknown.
    """
    if not gone:
        return {}
    ls = outputs.get(FENCE_LS)
    problems = []
    if ls is not None and ls.exit_code == 0:
        try:
            domain = parse_fence_tool_ls(ls.text, source=f"{source}: fence_tool ls -n")
            return fencing_verdicts(gone, domain=domain)
        except ParseError as exc:
            problems.append(str(exc))
    cman = outputs.get(CMAN_NODES)
    if cman is not None and cman.exit_code == 0:
        try:
            nodes = parse_cman_nodes(cman.text, source=f"{source}: cman_tool nodes -f")
            groups_out = outputs.get(GROUP_LS)
            if groups_out is None or groups_out.exit_code != 0:
                # cman's flag can be set before a multi-device method is done: no group, no proof.
                raise ParseError("group_tool ls failed: fence group state unknown", source)
            groups = parse_group_tool_ls(groups_out.text, source=f"{source}: group_tool ls")
            return fencing_verdicts(gone, cman_nodes=nodes, groups=groups)
        except ParseError as exc:
            problems.append(str(exc))
    why = "; ".join(problems) or "fence state not read (fence_tool ls, cman_tool nodes -f)"
    return {name: FenceVerdict(False, why) for name in gone}


_STATE_ATTR = re.compile(r'\bstate_str="([^"]*)"')
_OWNER_ATTR = re.compile(r'\sowner="([^"]*)"')


def _refused(guest: str, host: str, text: str, exit_code: int) -> StartOutcome:
    """The guard before ``clusvcadm -d`` refused: nothing was sent; say what it saw."""
    line = next(ln for ln in text.splitlines() if GUARD_REFUSED in ln)
    words = line.split()
    if len(words) >= 2 and words[1] == "running-here":
        where = words[2] if len(words) > 2 else "the master"
        return StartOutcome(
            guest,
            host,
            False,
            f"not disabled: the master's domain list shows {guest} running (on {where})",
            exit_code,
            already_running=True,
            refused=True,
        )
    state = _STATE_ATTR.search(text)
    owner = _OWNER_ATTR.search(text)
    now = state.group(1) if state else "unreadable"
    on = owner.group(1) if owner and owner.group(1) != "none" else None
    message = f"not disabled: vm:{guest} reads {now}" + (f" on {on}" if on else "")
    message += " just before clusvcadm -d (checked in the same command); nothing was sent"
    running = now in ("started", "starting", "migrating", "recovering", "stopping")
    return StartOutcome(
        guest,
        host,
        False,
        message,
        exit_code,
        running_on=on if running and on and safe_host_or_none(on) else None,
        already_running=running,
        refused=True,
    )


def safe_host_or_none(name: str) -> str | None:
    """``name`` when it is a valid host name, else None (never raises)."""
    try:
        return safe_host(name)
    except UnsafeName:
        return None


register(RgmanagerBackend.name, RgmanagerBackend)
