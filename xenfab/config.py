"""Load and validate ``fabfile_config.yaml``: environments (hosts, master, SSH), policies, audit.

The file's shape is the dataclasses below: each key's type, default and meaning is declared once,
on its field (the README's configuration reference is generated from them). ``xenfab.schema``
validates the file into them at the edge; a problem is one ConfigError line naming the file and
the key path, so a typo costs one line to fix.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

import yaml

from .errors import ConfigError
from .paths import expand_path
from .policy import MOVED, Policy
from .schema import (
    HOST_NAME,
    Check,
    Core,
    HostName,
    HostPattern,
    Name,
    NonNegFloat,
    Port,
    PosFloat,
    PosInt,
    Str,
    doc,
    path_chars,
    read_text,
    unique_by,
    validate,
)

CONFIG_FILENAME = "fabfile_config.yaml"


def known_backends() -> tuple[str, ...]:
    """Every cluster-manager backend found (xenfab.cluster's registry and entry points)."""
    from .cluster import names

    return names()


def _known_backend(value: str) -> str:
    if value not in known_backends():
        raise ValueError(f"{value!r} is not one of {', '.join(known_backends())}")
    return value


__all__ = ["HOST_NAME", "Environment", "HostEntry", "SSHSettings", "StartPolicy", "XenfabConfig"]


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    return value


def _host_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


def _nonblank(value: str) -> str:
    if not value or value != value.strip():
        raise ValueError(f"{value!r}: empty or surrounded by whitespace")
    return value


# Checked before and after expansion: a $VAR may bring the control character in.
Path = Annotated[Str, Check(_nonblank), Check(path_chars), Check(expand_path), Check(path_chars)]
AbsPath = Annotated[Path, Check(_absolute)]


@dataclass
class HostEntry:
    """One physical host of an environment, with its optional placement tags."""

    __pydantic_config__ = {"extra": "forbid"}

    name: HostPattern
    location: Name | None = None
    domain: Name | None = None


Hosts = Annotated[
    list[Annotated[HostEntry, Check(_host_entry, before=True)]],
    Core(min_length=1),
    unique_by("name"),
]


@dataclass
class SSHSettings:
    """How to reach an environment's hosts; None means "what Fabric and ssh_config say"."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    config: Path | None = doc(
        None,
        "ssh_config file: HostName, User, Port, IdentityFile, ProxyJump, ...",
        shown="Fabric's (`~/.ssh/config`; `fab -S` wins)",
    )
    user: Name | None = doc(None, "login user", shown="from ssh_config")
    port: Port | None = doc(None, "login port", shown="from ssh_config")
    key_filename: Path | None = doc(
        None, "private key", shown="from ssh_config / agent (`fab -i` adds)"
    )
    known_hosts: Path | None = doc(
        None,
        "trusted host keys",
        shown="ssh_config `UserKnownHostsFile`, then `~/.ssh/known_hosts`",
    )
    host_key_check: Literal["strict", "off"] = doc(
        "strict",
        "`strict` refuses unknown and changed keys; `off` is the explicit opt-out "
        "(Fabric's own accept-anything behaviour)",
    )
    connect_timeout: PosFloat = doc(10.0, "seconds to connect (`fab -t` wins)")
    command_timeout: PosFloat = doc(120.0, "seconds a remote command may run")
    parallel: PosInt = doc(64, "most hosts contacted at once while gathering")


# A guest name or a glob over guest names (``db*``, ``web0[1-3]``): the characters of a guest
# name (cluster.base.GUEST_NAME) and the glob's own; checked again per guest when expanded.
_GUEST_GLOB = re.compile(r"^[A-Za-z0-9*?\[][A-Za-z0-9._+@*?\[\]!-]{0,127}$")
# ``command:PATH``: an absolute path of plain characters, run with the guest's name as its one
# (quoted) argument; no words, no shell: nothing from the config is parsed by a remote shell.
_PROBE_COMMAND = re.compile(r"^/[A-Za-z0-9._/+-]{1,255}$")
PROBE_KINDS = ("started", "ping", "tcp:PORT", "command:/ABSOLUTE/PATH")


def _guest_glob(value: str) -> str:
    if not _GUEST_GLOB.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a guest name or glob (letters, digits, ._+@-, *?[])")
    return value


def check_probe(value: str) -> str:
    """A readiness probe: ``started``, ``ping``, ``tcp:PORT`` or ``command:/ABSOLUTE/PATH``."""
    if value in ("started", "ping"):
        return value
    kind, sep, arg = value.partition(":")
    if sep and kind == "tcp" and arg.isdigit() and arg == str(int(arg)) and 1 <= int(arg) <= 65535:
        return value
    if sep and kind == "command" and _PROBE_COMMAND.match(arg) and "/../" not in arg + "/":
        return value
    raise ValueError(f"{value!r} is not a probe: one of {', '.join(PROBE_KINDS)}")


GuestGlob = Annotated[Str, Check(_guest_glob)]
Probe = Annotated[Str, Check(check_probe)]


@dataclass
class StartPolicy:
    """The start engine's caps (the ``start`` key): how many starts at once, how long a tier."""

    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    max_starts_per_host: PosInt = doc(2, "starts booting on one host at a time")
    max_starts_in_flight: PosInt = doc(
        8, "starts booting in the whole cluster at a time; `--parallel N` overrides it for one run"
    )
    tier_timeout_s: PosFloat = doc(
        600.0, "seconds a priority tier may take before the next tier starts (then a warning)"
    )
    tries_per_host: PosInt = doc(
        2, "starts of a failed guest on one host before it is re-planned onto another"
    )
    max_hosts_per_guest: PosInt = doc(3, "hosts a failing guest is tried on in all (never a loop)")
    retry_delay_s: NonNegFloat = doc(
        1.0, "seconds before a failed start is retried (the same failure a second later is common)"
    )
    confirm_timeout_s: PosFloat = doc(
        600.0, "seconds an accepted start may stay in transition before it is reported failed"
    )
    confirm_grace_s: NonNegFloat = doc(
        3.0, "seconds a state read right after an accepted start may still show the old state"
    )
    liveness_wait_s: PosFloat = doc(
        60.0,
        "seconds a host that does not list its domains is waited for before the guests still "
        "queued are not started (`--dead HOST` for a host known down)",
    )
    state_give_up_s: PosFloat = doc(
        60.0, "seconds without a readable cluster state before the run starts nothing more"
    )
    lock_command_s: PosFloat = doc(
        10.0, "seconds a run-lock command (take, heartbeat, release) may take on the lock host"
    )
    poll_s: PosFloat = doc(0.2, "seconds between cluster state reads while starts are in flight")
    stagger_s: NonNegFloat = doc(
        0.03, "seconds at least between two start commands (busiest host first)"
    )
    boot_estimate_s: PosFloat = doc(
        60.0,
        "seconds from start command to ready expected of a guest when the audit log has no "
        "start of it nor of its size class (the plan's time to all-up; docs/policy.md)",
    )
    ready: dict[GuestGlob, Probe] = doc(
        {},
        "when a guest counts as up, per guest or glob (`db*: tcp:5432`): `started` (the "
        "cluster or the domain list says so), `ping`, `tcp:PORT` or `command:/PATH` (run on a "
        "cluster host with the guest's name as its argument; exit 0 = ready); the first "
        "matching key wins, a guest none matches: `started`; probes run on a cluster host over "
        "xenfab's SSH connection",
        shown="`{}`",
    )
    ready_timeout_s: PosFloat = doc(
        300.0,
        "seconds a started guest may take to answer its probe; then it is reported not-ready "
        "(left running, never retried or stopped) and the run goes on (exit 2)",
    )
    depends_on: dict[GuestGlob, list[GuestGlob]] = doc(
        {},
        "guests or globs each guest (or glob) waits for: it starts only once they are ready "
        "(`app*: [db*]`); a cycle or a name matching no guest is a config error",
        shown="`{}`",
    )
    dependency_timeout_s: PosFloat = doc(
        600.0,
        "seconds a guest waits (from when its tier opened) for dependencies that are not ready",
    )
    dependency_failure: Literal["start", "hold"] = doc(
        "start",
        "after `dependency_timeout_s`, or once a dependency failed: `start` the dependents "
        "with a warning, or `hold` them down (reported, with the reason)",
    )

    def probe(self, guest: str) -> str:
        """The readiness probe of ``guest``: the first matching key of ``ready``, else started."""
        for pattern, probe in self.ready.items():
            if fnmatch.fnmatchcase(guest, pattern):
                return probe
        return "started"

    def dependencies(self, guests: list[str]) -> dict[str, list[str]]:
        """Each guest's dependencies among ``guests`` (every guest the cluster knows).

        ConfigError (one line) for a key or dependency matching no guest, or a cycle.
        """
        deps: dict[str, set[str]] = {}
        for key, wanted in self.depends_on.items():
            dependents = [g for g in guests if fnmatch.fnmatchcase(g, key)]
            if not dependents:
                raise ConfigError(f"start.depends_on: {key!r} matches no guest")
            for pattern in wanted:
                found = [g for g in guests if fnmatch.fnmatchcase(g, pattern)]
                if not found:
                    raise ConfigError(f"start.depends_on.{key}: {pattern!r} matches no guest")
                for d in dependents:
                    # A glob matching its own dependent (``db*: [db0*]``) does not mean itself.
                    deps.setdefault(d, set()).update(f for f in found if f != d)
        cycle = _cycle(deps)
        if cycle:
            raise ConfigError(f"start.depends_on: a cycle: {' -> '.join(cycle)}")
        return {g: sorted(d) for g, d in deps.items() if d}


@dataclass
class Environment:
    """A cluster xenfab can act on."""

    __pydantic_config__ = {"extra": "forbid"}

    name: Name
    hosts: Hosts = doc(
        help="host names, glob patterns over the ssh_config's `Host` aliases (`xen*`), or "
        "`{name, location, domain}` mappings (`location` for `--loc`, `domain` = failure domain "
        "for anti-affinity); each host once",
        shown="required",
    )
    # Required by the backends whose inventory is config files (rgmanager, xl), checked in
    # __post_init__; the help text stays as README's generated table shows it.
    guest_config_dir: Path | None = doc(
        None,
        "directory of guest configs (`/xenconfig`), read once on the master",
        shown="required",
    )
    master: HostName | None = doc(
        None,
        "where cluster commands run; must be one of the hosts; if it is down another host "
        "reads the cluster",
        shown="first host",
    )
    backend: Annotated[Str, Check(_known_backend)] = doc(
        "rgmanager",
        "cluster manager: `rgmanager`, `xl` (no manager), or any backend installed "
        "(see docs/backends.md)",
    )
    backend_options: dict[Str, Any] = doc(
        {},
        "the backend's own settings, checked by it (xl: `auto_dir`, `guests`, `lock_host`)",
        shown="`{}`",
    )
    ssh: SSHSettings = field(default_factory=SSHSettings)
    policy: Policy = doc(
        Policy(), "overrides of any `policy` key for this environment", shown="`{}`"
    )
    start: StartPolicy = doc(
        StartPolicy(), "overrides of any `start` key for this environment", shown="`{}`"
    )
    lock_path: AbsPath | None = doc(
        None, "lock directory on this environment's master", shown="the top-level `lock_path`"
    )
    audit_log: Path | None = doc(
        None,
        "this environment's audit log (the lab's is in the lab's directory, so rehearsals never "
        "write to the real one)",
        shown="the top-level `audit_log`",
    )
    description: Str | None = doc(None, "free text", shown="-")

    def __post_init__(self) -> None:
        """The master is one of the hosts (a pattern may name it); the backend's options hold."""
        if self.master is not None and not any(
            fnmatch.fnmatchcase(self.master, h.name) for h in self.hosts
        ):
            raise ValueError(f"master: {self.master!r} is not one of the hosts")
        from .cluster import backend as get_backend
        from .cluster import check_options

        try:
            self.backend_options = check_options(self.backend, self.backend_options, "")
        except ConfigError as exc:
            raise ValueError(str(exc).lstrip(".")) from None
        if (
            self.guest_config_dir is None
            and get_backend(self.backend, self.backend_options).reads_guest_configs
        ):
            raise ValueError(
                f"guest_config_dir: required (backend {self.backend} reads the guests' config "
                "files there)"
            )

    def host(self, name: str) -> HostEntry | None:
        """The host entry called ``name``, or None."""
        return next((h for h in self.hosts if h.name == name), None)

    def at_location(self, location: str) -> Environment:
        """A copy of this environment narrowed to the hosts tagged with ``location``."""
        hosts = [h for h in self.hosts if h.location == location]
        if not hosts:
            known = sorted({h.location for h in self.hosts if h.location})
            raise ConfigError(
                f"environment {self.name}: no host has location {location!r} "
                f"(locations: {', '.join(known) or 'none tagged'})"
            )
        # Any rgmanager member can read and drive the cluster: outside the location, the
        # master is replaced by the location's first host rather than contacted.
        keep = any(h.name == self.master for h in hosts)
        return replace(self, hosts=hosts, master=self.master if keep else None)


@dataclass
class XenfabConfig:
    """The whole configuration file, validated."""

    __pydantic_config__ = {"extra": "forbid"}

    path: Str
    # The top-level sections come first: an error there is reported as theirs, not as the
    # first environment's (each environment validates the merged copy too).
    policy: Policy = doc(
        Policy(), "placement policy: see [docs/policy.md](docs/policy.md)", shown="see docs"
    )
    start: StartPolicy = doc(
        StartPolicy(), "start policy: the start engine's caps (below)", shown="see below"
    )
    audit_log: Path = doc(
        "~/.local/state/xenfab/audit.jsonl",
        "one JSON line per start action (time, user, guest, host, command, outcome)",
    )
    lock_path: AbsPath = doc(
        "/var/lock/xenfab.lock", "lock directory on the master: one starting run at a time"
    )
    default_env: Name = doc("", "environment used without `--env`", shown="the first environment")
    environments: Annotated[dict[Name, Environment], Core(min_length=1)] = doc(
        {}, "the clusters, by name (keys below)", shown="required"
    )

    def __post_init__(self) -> None:
        """``default_env`` names an environment."""
        if self.default_env not in self.environments:
            raise ValueError(f"default_env: {self.default_env!r} is not an environment")

    def audit_log_of(self, env: Environment) -> str:
        """``env``'s audit log: its own, else the top level's."""
        return env_over_top(env.audit_log, self.audit_log)

    def lock_path_of(self, env: Environment) -> str:
        """``env``'s run-lock directory: its own, else the top level's."""
        return env_over_top(env.lock_path, self.lock_path)

    def select(self, spec: str | None) -> list[str]:
        """The environment names ``--env`` picks: one name, a comma list, or globs over them.

        One plain name (or none) is the single-environment run, as before; a name or pattern
        that picks nothing is a one-line error naming the known environments.
        """
        words = [w.strip() for w in (spec or "").split(",") if w.strip()]
        if not words and (spec or "").strip():
            # `--env ,` names nothing: not the default environment, which it did not name.
            raise ConfigError(f"{self.path}: --env {spec!r}: names no environment")
        if not words:
            return [self.environment(None).name]
        known = list(self.environments)
        picked: list[str] = []
        for word in words:
            if any(ch in word for ch in "*?["):
                found = [n for n in known if fnmatch.fnmatchcase(n, word)]
            else:
                found = [word] if word in self.environments else []
            if not found:
                listed = ", ".join(sorted(known)) or "none"
                raise ConfigError(f"{self.path}: --env {word!r}: no such environment ({listed})")
            picked += [n for n in found if n not in picked]
        return picked

    def environment(self, name: str | None = None) -> Environment:
        """The environment called ``name`` (or the default one)."""
        key = name or self.default_env
        if key not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(f"{self.path}: no environment {key!r} (known: {known})")
        return self.environments[key]


def find_config(explicit: str | None = None, search_dirs: tuple[str, ...] = ()) -> str:
    """Locate the config file: explicit path, $XENFAB_CONFIG, then fabfile_config.yaml in dirs."""
    if explicit:
        return explicit
    if os.environ.get("XENFAB_CONFIG"):
        return os.environ["XENFAB_CONFIG"]
    tried = []
    for d in (*search_dirs, os.getcwd()):
        candidate = os.path.join(d, CONFIG_FILENAME)
        tried.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError(
        "no configuration found: give --config PATH, set XENFAB_CONFIG, add a 'xenfab' section "
        f"to your Fabric config, or create {CONFIG_FILENAME} (looked in: {', '.join(tried)})"
    )


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML without aliases (a 2 KB alias bomb expands to gigabytes) or duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse aliases before they are expanded."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"alias *{event.anchor}: aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Refuse a key given twice: YAML keeps the last one silently."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


def load_config(path: str) -> XenfabConfig:
    """Read and validate a configuration file."""
    text = read_text(path, "configuration")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    return config_from_dict(data if data is not None else {}, path)


def config_from_dict(data: Any, path: str = "<config>") -> XenfabConfig:
    """Validate an already-parsed configuration mapping (the schema does every check)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level: expected a mapping, got {type(data).__name__}")
    for key in ("path",):
        if key in data:
            raise ConfigError(f"{path}: {key}: unknown key")
    raw: dict[str, Any] = {**data, "path": path}
    top = {k: _section(data, k) for k in ("policy", "start")}
    for key in top["policy"] if isinstance(top["policy"], Mapping) else ():
        if key in MOVED:
            raise ConfigError(f"{path}: policy.{key}: moved to {MOVED[key]} (the start policy)")
    raw.update({k: v for k, v in top.items() if k in data})
    envs = data.get("environments")
    if isinstance(envs, Mapping):
        envs = expand_templates(envs, path)
        raw["environments"] = {
            name: _merged_env(name, env, top, path) for name, env in envs.items()
        }
        first = next(iter(envs), None)
        if "default_env" not in data and isinstance(first, str):
            raw["default_env"] = first
    return validate(XenfabConfig, raw, path)


# `lab-c{1..32}`: one entry standing for lab-c1 ... lab-c32, `{n}` replaced in its strings.
_TEMPLATE = re.compile(r"^(?P<head>[^{}]*)\{(?P<lo>\d+)\.\.(?P<hi>\d+)\}(?P<tail>[^{}]*)$")
MAX_TEMPLATE = 256


def expand_templates(envs: Mapping, path: str) -> dict:
    """Environments with a ``{LO..HI}`` name expanded into one environment per number.

    Many like clusters (the lab's ``lab-c1`` ... ``lab-cN``) are one entry, not N copies: each
    copy has ``{n}`` replaced by its number in every string (host patterns, paths).
    """
    out: dict = {}
    for name, env in envs.items():
        match = _TEMPLATE.match(name) if isinstance(name, str) else None
        if match is None:
            out[name] = env
            continue
        lo, hi = int(match["lo"]), int(match["hi"])
        if not 0 <= hi - lo < MAX_TEMPLATE:
            raise ConfigError(
                f"{path}: environments.{name}: a range of 1 to {MAX_TEMPLATE} numbers, low first"
            )
        for n in range(lo, hi + 1):
            key = f"{match['head']}{n}{match['tail']}"
            if key in envs or key in out:
                raise ConfigError(f"{path}: environments.{name}: {key} is also given by name")
            out[key] = _with_number(env, str(n))
    return out


def _with_number(value: Any, n: str) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", n)
    if isinstance(value, Mapping):
        return {k: _with_number(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_number(v, n) for v in value]
    return value


def _section(data: Mapping, key: str) -> Any:
    # `policy:` with every key commented out is YAML null: an empty section, not an error.
    value = data.get(key)
    return {} if value is None else value


def env_over_top(own: Any, top: Any) -> Any:
    """The one rule for every setting an environment may override: the environment's over the
    top level's (a mapping key by key, anything else whole; None = not set).
    """
    if isinstance(own, Mapping) and isinstance(top, Mapping):
        return {**top, **own}
    return top if own is None else own


def _merged_env(name: Any, env: Any, top: dict[str, Any], path: str) -> Any:
    # Each environment's policies are the file's, then the environment's own keys.
    if not isinstance(env, Mapping):
        return env
    if "name" in env:
        raise ConfigError(f"{path}: environments.{name}.name: unknown key")
    out = {**env, "name": name}
    for key in ("policy", "start"):
        own = _section(env, key)
        if key == "policy" and isinstance(own, Mapping):
            for k in own:
                if k in MOVED:
                    raise ConfigError(
                        f"{path}: environments.{name}.policy.{k}: moved to "
                        f"environments.{name}.{MOVED[k]} (the start policy)"
                    )
        out[key] = env_over_top(own if key in env else None, top[key])
    if env.get("ssh") is None and "ssh" in env:
        out["ssh"] = {}
    return out


def resolve_hosts(env: Environment, ssh_config_hosts: list[str]) -> list[HostEntry]:
    """Expand glob patterns in ``env.hosts`` against the Host aliases of its ssh_config."""
    out: list[HostEntry] = []
    for entry in env.hosts:
        if any(ch in entry.name for ch in "*?["):
            matches = sorted(h for h in ssh_config_hosts if fnmatch.fnmatchcase(h, entry.name))
            out.extend(HostEntry(m, entry.location, entry.domain) for m in matches)
        else:
            out.append(entry)
    seen: set[str] = set()
    unique = [h for h in out if not (h.name in seen or seen.add(h.name))]
    return unique


def ssh_config_hosts(path: str | None) -> list[str]:
    """The literal Host aliases (no patterns) an ssh_config file names."""
    if not path or not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ssh_config: {exc}") from None
    # Read here rather than through paramiko: its get_hostnames() fails on `Match` blocks
    # (paramiko issues #1729, #2014), and the config layer needs no SSH library for a list of
    # names. A Host line's patterns are split as paramiko and ssh split them (shell words).
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        match = _HOST_LINE.match(line)
        if not match:
            continue
        try:
            names.update(shlex.split(match.group(1)))
        except ValueError as exc:
            raise ConfigError(f"{path}: {number}: cannot read ssh_config: {exc}") from None
    return sorted(n for n in names if not any(ch in n for ch in "*?!"))


# `Host a b`, `host=a`, as ssh_config's keyword/argument syntax allows.
_HOST_LINE = re.compile(r"^\s*host(?:\s*=\s*|\s+)(.+?)\s*$", re.IGNORECASE)


def _cycle(deps: Mapping[str, set[str]]) -> list[str]:
    """One cycle of ``deps`` (guest -> what it waits for), closed (``a -> b -> a``), or []."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for root in sorted(deps):
        if state.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, list[str]]] = [(root, sorted(deps.get(root, ())))]
        state[root] = 1
        path.append(root)
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop(0)
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(deps.get(nxt, ()))))
    return []
