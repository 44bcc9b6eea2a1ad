"""Errors the CLI turns into one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class Chat500Error(Exception):
    """A failure the user can act on. ``str(err)`` is the whole message, one line per problem."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class CheckFailed(Chat500Error):
    """A check ran and said no (an invalid license, a render that would change files)."""

    exit_code = EXIT_CHECK_FAILED
