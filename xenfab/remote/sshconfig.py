"""The Fabric config for an environment, and an ssh_config index that keeps host lookups cheap.

Each host's ssh_config lookup walks only the stanzas that can apply to it (IndexedSSHConfig), not
every stanza of a config with one per host.
"""

from __future__ import annotations

import heapq
import os

import paramiko
from fabric import Config

from ..config import Environment


def fabric_config(env: Environment, base: object | None = None) -> Config:
    """A Fabric config for ``env``: its ssh_config, with -i/-t/passphrase taken from ``base``."""
    ssh_path = env.ssh.config or getattr(base, "_runtime_ssh_path", None)
    cfg = Config(runtime_ssh_path=ssh_path) if ssh_path else Config()
    if isinstance(base, Config):
        # What the user gave `fab` on its command line (-i, -t, --prompt-for-passphrase) wins.
        kwargs = dict(base.connect_kwargs or {})
        # `fab -t N` arrives as connect_kwargs["timeout"]; Connection refuses it there when it
        # also has a connect timeout, so it becomes the connect timeout instead.
        timeout = kwargs.pop("timeout", None) or base.timeouts.connect
        cfg.connect_kwargs.update(kwargs)
        if timeout:
            cfg.timeouts.connect = int(timeout)
    if env.ssh.key_filename:
        cfg.connect_kwargs["key_filename"] = [env.ssh.key_filename]
    # No second cfg.load_ssh_config(): Config() has loaded the files already, and loading them
    # again doubled every stanza (each Connection's lookup walks them all, twice).
    index_ssh_config(cfg)
    return cfg


def index_ssh_config(cfg: Config) -> Config:
    """Give ``cfg`` an indexed copy of its parsed ssh_config (same rules, same lookups)."""
    base = cfg.base_ssh_config
    if not isinstance(base, IndexedSSHConfig):
        cfg._set(base_ssh_config=IndexedSSHConfig(base._config))
    # Fabric's clone() (each ProxyJump hop clones the config) otherwise parses the ssh_config
    # files again into this shared config: every stanza once more per gatewayed connection,
    # while other threads look hosts up in it. The files are loaded already; the clone still
    # gets a deep copy of the rules.
    cfg._set(_given_explicit_object=True)
    return cfg


_WILDCARDS = frozenset("*?[")


class IndexedSSHConfig(paramiko.SSHConfig):
    """A paramiko SSHConfig whose lookup skips the Host stanzas that cannot match the host.

    paramiko's lookup walks every stanza twice per host (and calls getpass.getuser() for each
    one that does not match): with one stanza per host, a gather's lookups were quadratic, a
    third of xenfab's CPU on 100 hosts. A Host stanza whose positive patterns are all literal
    can only apply to a host equal to one of them, so it is indexed under those names; every
    other stanza (wildcards, Match) is walked for every host. paramiko's own _lookup then runs
    on that sub-list in file order, so values, precedence, negation, Match, tokens and
    canonicalization are paramiko's: a stanza left out is one that paramiko would skip.
    """

    def __init__(self, rules: list[dict] | None = None) -> None:
        super().__init__()
        if rules is not None:
            # Shared, not copied: rules parsed into either object later are seen by both.
            self._config = rules
        self._index: tuple | None = None

    def _lookup(
        self,
        hostname: str,
        options: paramiko.SSHConfigDict | None = None,
        canonical: bool = False,
        final: bool = False,
    ) -> paramiko.SSHConfigDict:
        # Per call, not per object: the rules are shared by every thread of a gather.
        view = paramiko.SSHConfig()
        view._config = self._candidates(hostname)
        return paramiko.SSHConfig._lookup(view, hostname, options, canonical, final)

    def _candidates(self, hostname: str) -> list[dict]:
        rules = self._config
        index = self._index
        # parse() only appends; a new list or a longer one means the index is stale.
        if index is None or index[0] is not rules or index[1] != len(rules):
            index = self._index = _build_index(rules)
        _, _, literal, always = index
        named = literal.get(os.path.normcase(hostname))
        if not named:
            return [rules[i] for i in always]
        return [rules[i] for i in heapq.merge(named, always)]


def _build_index(rules: list[dict]) -> tuple:
    # fnmatch compares normcase'd names, and a pattern without * ? [ matches only itself.
    literal: dict[str, list[int]] = {}
    always: list[int] = []
    for i, rule in enumerate(rules):
        patterns = rule.get("host")
        positive = [p for p in patterns if not p.startswith("!")] if _is_list(patterns) else None
        if "matches" in rule or not positive or any(ch in _WILDCARDS for p in positive for ch in p):
            always.append(i)
            continue
        for name in dict.fromkeys(os.path.normcase(p) for p in positive):
            literal.setdefault(name, []).append(i)
    return rules, len(rules), literal, always


def _is_list(patterns: object) -> bool:
    return isinstance(patterns, (list, tuple)) and all(isinstance(p, str) for p in patterns)
