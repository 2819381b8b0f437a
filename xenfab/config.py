"""Load and validate ``fabfile_config.yaml``: environments (hosts, master, SSH) and policy.

Every problem is a ConfigError naming the file and the key, so a typo costs one line to fix.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

CONFIG_FILENAME = "fabfile_config.yaml"
DEFAULT_LAB_DIR = "~/.cache/xenfab/lab"

# A host name ends up in `clusvcadm -m HOST` on a remote shell: only what DNS and rgmanager allow.
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,253}$")

ENV_KEYS = {
    "hosts",
    "master",
    "guest_config_dir",
    "backend",
    "backend_options",
    "ssh",
    "policy",
    "description",
    "lock_path",
}
SSH_KEYS = {
    "config",
    "user",
    "port",
    "key_filename",
    "known_hosts",
    "host_key_check",
    "connect_timeout",
    "command_timeout",
    "parallel",
}
TOP_KEYS = {"default_env", "environments", "policy", "audit_log", "lock_path"}


def known_backends() -> tuple[str, ...]:
    """Every cluster-manager backend found (xenfab.cluster's registry and entry points)."""
    from .cluster import names

    return names()


@dataclass
class HostEntry:
    """One physical host of an environment, with its optional placement tags."""

    name: str
    location: str | None = None
    domain: str | None = None


@dataclass
class SSHSettings:
    """How to reach an environment's hosts; None means "what Fabric and ssh_config say"."""

    config: str | None = None
    user: str | None = None
    port: int | None = None
    key_filename: str | None = None
    known_hosts: str | None = None
    host_key_check: str = "strict"
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    parallel: int = 64


@dataclass
class Environment:
    """A cluster xenfab can act on."""

    name: str
    hosts: list[HostEntry]
    master: str | None
    guest_config_dir: str
    backend: str = "rgmanager"
    # The backend's own settings, checked by the backend (xl: auto_dir, guests, lock_host).
    backend_options: dict[str, Any] = field(default_factory=dict)
    ssh: SSHSettings = field(default_factory=SSHSettings)
    policy: dict[str, Any] = field(default_factory=dict)
    lock_path: str | None = None

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

    path: str
    default_env: str
    environments: dict[str, Environment]
    policy: dict[str, Any]
    audit_log: str
    lock_path: str

    def environment(self, name: str | None = None) -> Environment:
        """The environment called ``name`` (or the default one)."""
        key = name or self.default_env
        if key not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(f"{self.path}: no environment {key!r} (known: {known})")
        return self.environments[key]

    def policy_dict(self, env: Environment, overrides: Mapping[str, Any] | None = None) -> dict:
        """The policy for ``env``: the file's policy, the environment's keys, then CLI overrides."""
        merged = dict(self.policy)
        merged.update(env.policy)
        merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return merged


def expand_path(value: str) -> str:
    """Expand ``~`` and ``$VARS``; ``$XENFAB_LAB_DIR`` defaults to the lab's default directory."""
    lab = os.environ.get("XENFAB_LAB_DIR") or DEFAULT_LAB_DIR
    text = value.replace("${XENFAB_LAB_DIR}", lab).replace("$XENFAB_LAB_DIR", lab)
    return os.path.expanduser(os.path.expandvars(text))


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


def load_config(path: str) -> XenfabConfig:
    """Read and validate a configuration file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{where}: {problem}") from None
    return config_from_dict(data if data is not None else {}, path)


def config_from_dict(data: Any, path: str = "<config>") -> XenfabConfig:
    """Validate an already-parsed configuration mapping."""
    _mapping(data, path, "top level")
    _unknown(data, TOP_KEYS, path, "")
    envs_raw = data.get("environments")
    _mapping(envs_raw, path, "environments")
    if not envs_raw:
        raise ConfigError(f"{path}: environments: at least one environment is needed")
    envs = {str(n): _environment(str(n), raw, path) for n, raw in envs_raw.items()}
    default_env = data.get("default_env", next(iter(envs)))
    if default_env not in envs:
        raise ConfigError(f"{path}: default_env: {default_env!r} is not an environment")
    policy = data.get("policy") or {}
    _mapping(policy, path, "policy")
    cfg = XenfabConfig(
        path=path,
        default_env=str(default_env),
        environments=envs,
        policy=dict(policy),
        audit_log=expand_path(str(data.get("audit_log", "~/.local/state/xenfab/audit.jsonl"))),
        lock_path=str(data.get("lock_path", "/var/lock/xenfab.lock")),
    )
    # Validate every policy the file can produce now, not at the first recovery.
    from .plan import policy_from_dict

    for env in envs.values():
        where = "policy" if not env.policy else f"environments.{env.name}.policy"
        _with_path(path, lambda e=env, w=where: policy_from_dict(cfg.policy_dict(e), where=w))
    return cfg


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


def _environment(name: str, raw: Any, path: str) -> Environment:
    where = f"environments.{name}"
    _mapping(raw, path, where)
    _unknown(raw, ENV_KEYS, path, where + ".")
    hosts_raw = raw.get("hosts")
    if not isinstance(hosts_raw, list) or not hosts_raw:
        raise ConfigError(f"{path}: {where}.hosts: expected a non-empty list of host names")
    hosts = [_host(h, path, f"{where}.hosts[{i}]") for i, h in enumerate(hosts_raw)]
    master = raw.get("master")
    if master is not None and not HOST_NAME.match(str(master)):
        raise ConfigError(f"{path}: {where}.master: {master!r} is not a valid host name")
    if master is not None and not any(fnmatch.fnmatchcase(str(master), h.name) for h in hosts):
        raise ConfigError(f"{path}: {where}.master: {master!r} is not one of the hosts")
    gdir = raw.get("guest_config_dir")
    if not isinstance(gdir, str) or not gdir:
        raise ConfigError(f"{path}: {where}.guest_config_dir: expected a directory path")
    backend = raw.get("backend", "rgmanager")
    if backend not in known_backends():
        raise ConfigError(
            f"{path}: {where}.backend: {backend!r} is not one of {', '.join(known_backends())}"
        )
    from .cluster import check_options

    opts = raw.get("backend_options") or {}
    _mapping(opts, path, where + ".backend_options")
    backend_options = _with_path(path, lambda: check_options(backend, opts, where))
    policy = raw.get("policy") or {}
    _mapping(policy, path, where + ".policy")
    lock = raw.get("lock_path")
    if lock is not None and not expand_path(str(lock)).startswith("/"):
        raise ConfigError(f"{path}: {where}.lock_path: {lock!r} must be an absolute path")
    return Environment(
        name=name,
        hosts=hosts,
        master=str(master) if master is not None else None,
        guest_config_dir=expand_path(gdir),
        backend=backend,
        backend_options=backend_options,
        ssh=_ssh(raw.get("ssh") or {}, path, where + ".ssh"),
        policy=dict(policy),
        lock_path=expand_path(str(lock)) if lock is not None else None,
    )


def _host(raw: Any, path: str, where: str) -> HostEntry:
    if isinstance(raw, str):
        raw = {"name": raw}
    _mapping(raw, path, where)
    _unknown(raw, {"name", "location", "domain"}, path, where + ".")
    name = str(raw.get("name", ""))
    pattern = name.replace("*", "a").replace("?", "a").replace("[", "a").replace("]", "a")
    if not HOST_NAME.match(pattern):
        raise ConfigError(f"{path}: {where}.name: {name!r} is not a valid host name or pattern")
    loc, dom = raw.get("location"), raw.get("domain")
    return HostEntry(name, None if loc is None else str(loc), None if dom is None else str(dom))


def _ssh(raw: Any, path: str, where: str) -> SSHSettings:
    _mapping(raw, path, where)
    _unknown(raw, SSH_KEYS, path, where + ".")
    s = SSHSettings()
    for key in ("config", "key_filename", "known_hosts"):
        if raw.get(key) is not None:
            setattr(s, key, expand_path(str(raw[key])))
    if raw.get("user") is not None:
        s.user = str(raw["user"])
    s.port = _number(raw, "port", int, path, where, low=1, high=65535)
    check = raw.get("host_key_check", "strict")
    if check not in ("strict", "off"):
        raise ConfigError(f"{path}: {where}.host_key_check: {check!r} is not 'strict' or 'off'")
    s.host_key_check = check
    for key, kind in (("connect_timeout", float), ("command_timeout", float), ("parallel", int)):
        value = _number(raw, key, kind, path, where, low=1)
        if value is not None:
            setattr(s, key, value)
    return s


def _number(raw, key, kind, path, where, low=None, high=None):
    if raw.get(key) is None:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != kind(value):
        raise ConfigError(f"{path}: {where}.{key}: expected {kind.__name__}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{path}: {where}.{key}: {value} is out of range")
    return kind(value)


def _mapping(value: Any, path: str, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")


def _unknown(raw: dict, allowed: set[str], path: str, prefix: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{path}: {prefix}{key}: unknown key (allowed: {sorted(allowed)})")


def _with_path(path: str, fn) -> Any:
    try:
        return fn()
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(path) else f"{path}: {message}") from None


def ssh_config_hosts(path: str | None) -> list[str]:
    """The literal Host aliases (no patterns) an ssh_config file names."""
    if not path or not Path(path).is_file():
        return []
    names: list[str] = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split()
        if len(parts) >= 2 and parts[0].lower() == "host":
            names.extend(p for p in parts[1:] if not any(ch in p for ch in "*?!"))
    return names
