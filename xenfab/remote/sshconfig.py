"""The Fabric config for an environment, and an ssh_config index that keeps host lookups cheap.

Each host's ssh_config lookup reads only the stanzas that can apply to it (IndexedSSHConfig), not
every stanza of a config with one per host. Only public Fabric and paramiko API is used: the
files are parsed here and handed to ``fabric.Config(ssh_config=...)``, Fabric's documented way
to give it an ssh_config object, and a host is looked up by paramiko's own ``lookup`` on the
stanzas that can match it.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shlex
from typing import Any

import paramiko
from fabric import Config

from ..config import Environment

# Fabric's own defaults for the files it reads when no ssh_config is named (fabric.Config's
# ``user_ssh_path`` and ``system_ssh_path``), in the order it parses them.
USER_SSH_PATH = "~/.ssh/config"
SYSTEM_SSH_PATH = "/etc/ssh/ssh_config"


def runtime_ssh_path(config: object) -> str | None:
    """The ssh_config file given to ``fab -S`` (None when none was).

    The one adapter onto a Fabric internal: ``fab -S`` calls ``Config.set_runtime_ssh_path``,
    and Fabric 3.2 offers no public getter for what it set.
    """
    path = getattr(config, "_runtime_ssh_path", None)
    return path if isinstance(path, str) and path else None


def load_ssh_config(path: str | None, defaults: bool = True) -> IndexedSSHConfig:
    """The ssh_config Fabric would load: ``path``, or (``defaults``) the user's, the system's."""
    result = IndexedSSHConfig()
    if path is not None:
        path = os.path.expanduser(path)
        if not os.path.exists(path):
            # As Fabric does for a runtime path that is missing.
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        paths = [path]
    else:
        paths = (
            [os.path.expanduser(p) for p in (USER_SSH_PATH, SYSTEM_SSH_PATH)] if defaults else []
        )
    for p in paths:
        if os.path.isfile(p):
            with open(p) as fh:
                result.parse(fh)
    return result


def fabric_config(env: Environment, base: object | None = None) -> Config:
    """A Fabric config for ``env``: its ssh_config, with -i/-t/passphrase taken from ``base``."""
    ssh_path = env.ssh.config or runtime_ssh_path(base)
    defaults = bool(getattr(base, "load_ssh_configs", True)) if isinstance(base, Config) else True
    # An explicit ssh_config object: Fabric reads no file itself, and its clone() for each
    # ProxyJump hop copies these rules instead of parsing the files again into a shared object.
    cfg = Config(ssh_config=load_ssh_config(ssh_path, defaults))
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
    return cfg


_WILDCARDS = frozenset("*?[")
_CONTEXT_KEYS = ("host", "match")


class IndexedSSHConfig(paramiko.SSHConfig):
    """A paramiko SSHConfig whose lookup reads only the stanzas that can match the host.

    paramiko's lookup walks every stanza twice per host (and calls getpass.getuser() for each
    one that does not match): with one stanza per host, a gather's lookups were quadratic, a
    third of xenfab's CPU on 100 hosts. A Host stanza whose positive patterns are all literal
    can only apply to a host equal to one of them, so it is indexed under those names; every
    other stanza (wildcards, Match, the options before the first Host) is kept for every host.
    The host's stanzas, in file order, are parsed into a plain SSHConfig whose ``lookup`` answers:
    values, precedence, negation, Match, tokens are paramiko's, and a stanza left out is one
    paramiko would skip. A config that canonicalizes host names is looked up whole, since the
    canonical name may match stanzas the given one does not.
    """

    def __init__(self) -> None:
        """An empty config; ``parse`` (or ``from_text``/``from_path``) fills it."""
        super().__init__()
        self.xf_texts: list[str] = []
        self.xf_index: _Index | None = None

    def parse(self, file_obj: Any) -> None:
        """Parse one ssh_config file, as paramiko does, and keep its text for the index."""
        text = "".join(file_obj)
        self.xf_texts.append(text)
        self.xf_index = None
        super().parse(io.StringIO(text))

    def lookup(self, hostname: str) -> paramiko.SSHConfigDict:
        """paramiko's answer for ``hostname``, computed over its candidate stanzas only."""
        index = self.xf_index
        if index is None:
            index = self.xf_index = _Index(self.xf_texts)
        if index.whole:
            return super().lookup(hostname)
        return paramiko.SSHConfig.from_text(index.text_for(hostname)).lookup(hostname)


class _Index:
    """The stanzas of some ssh_config files: each literal Host name's, and those for every host."""

    def __init__(self, texts: list[str]) -> None:
        self.blocks: list[str] = []
        self.literal: dict[str, list[int]] = {}
        self.always: list[int] = []
        self.whole = False
        for text in texts:
            self._add_file(text)

    def _add_file(self, text: str) -> None:
        # Each file starts in an implicit `Host *` context: written out, it stays one when the
        # files' stanzas are joined.
        lines = ["Host *"]
        settings = 0
        for line in text.splitlines():
            match = re.match(paramiko.SSHConfig.SETTINGS_REGEX, line.strip())
            key = match.group(1).lower() if match else ""
            if key == "canonicalizehostname":
                self.whole = True
            if key in _CONTEXT_KEYS:
                self._close(lines, settings)
                lines, settings = [], 0
            elif match:
                settings += 1
            lines.append(line)
        self._close(lines, settings)

    def _close(self, lines: list[str], settings: int) -> None:
        head = lines[0].strip() if lines else ""
        if not settings and head == "Host *":
            return  # an empty implicit context changes nothing
        i = len(self.blocks)
        self.blocks.append("\n".join(lines) + "\n")
        names = _literal_names(head)
        if names is None:
            self.always.append(i)
            return
        for name in dict.fromkeys(os.path.normcase(n) for n in names):
            self.literal.setdefault(name, []).append(i)

    def text_for(self, hostname: str) -> str:
        named = self.literal.get(os.path.normcase(hostname), [])
        return "".join(self.blocks[i] for i in sorted(set(named) | set(self.always)))


def _literal_names(head: str) -> list[str] | None:
    """The positive names of a `Host` line whose positive patterns are all literal, else None."""
    match = re.match(paramiko.SSHConfig.SETTINGS_REGEX, head)
    if not match or match.group(1).lower() != "host":
        return None
    try:
        patterns = shlex.split(match.group(2))
    except ValueError:
        return None
    positive = [p for p in patterns if not p.startswith("!")]
    if not positive or any(ch in _WILDCARDS for p in positive for ch in p):
        return None
    return positive
