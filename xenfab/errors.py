"""Errors a user can act on, and the exit codes every task returns.

Each error prints as one line saying what failed and where. The exit codes are a contract that
scripts gate on (README: Exit codes); every task uses the same ones.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a task's exit status means, the same for every task."""

    OK = 0
    # Bad config, option, snapshot or name given by the user: fix the input and run again.
    USER_ERROR = 1
    # The run did what it could, but some guests that are down stay down (or would, in a preview;
    # for facts: some facts could not be gathered).
    INCOMPLETE = 2
    # A safety rule stopped the run before it changed anything: inquorate, lock held, a host's
    # liveness unknown.
    REFUSED = 3
    INTERRUPTED = 130


class XenfabError(Exception):
    """Base of every error xenfab reports as a one-line message instead of a traceback."""

    exit_code: ExitCode = ExitCode.USER_ERROR


class ConfigError(XenfabError):
    """The configuration file or a command-line option is wrong; names the key."""


class RemoteError(XenfabError):
    """A host did not answer or a remote command failed; names the host and command.

    ``kind`` says what failed in one stable word for code to branch on (xenfab.remote.errors
    lists them); the message is for people and may change.
    """

    exit_code = ExitCode.INCOMPLETE
    kind: str = "other"

    def __init__(
        self, message: str, *, host: str | None = None, address: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.address = address


class LabError(XenfabError):
    """The rehearsal lab could not be started, stopped or changed."""


class StartRefused(XenfabError):
    """Starting was refused for safety (quorum, lock, liveness unknown), before any change."""

    exit_code = ExitCode.REFUSED
