"""The one error type the CLI shows to people."""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_RUNTIME = 4


class ShopError(Exception):
    """A failure the user can act on: one sentence, an optional hint, an exit code."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


class UsageError(ShopError):
    """The command was given something it cannot take: exit code 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, exit_code=EXIT_USAGE)
