"""Errors a user can act on: each prints as one line saying what failed and where."""

from __future__ import annotations


class XenfabError(Exception):
    """Base of every error xenfab reports as a one-line message instead of a traceback."""


class ConfigError(XenfabError):
    """The configuration file or a command-line option is wrong; names the key."""


class RemoteError(XenfabError):
    """A host did not answer or a remote command failed; names the host and command."""


class LabError(XenfabError):
    """The rehearsal lab could not be started, stopped or changed."""


class StartRefused(XenfabError):
    """Starting was refused for safety (quorum, lock, no terminal to confirm)."""
