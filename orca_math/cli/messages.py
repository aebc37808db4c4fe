"""How the command line words an error: `UserError`, and an error's text for the terminal.

Apart from the package face (`orca_math.cli`, which composes every command) so that a command's
module can raise and word errors without importing all the other commands.
"""

from __future__ import annotations

from orca_math.errors import OrcaMathError


class UserError(OrcaMathError):
    """An error the user can fix, raised by the command line itself; printed without a traceback."""


def cli_message(exc: BaseException) -> str:
    """An error's text for the command line: its `cli_message` (options, not keyword arguments) if it has one."""
    return getattr(exc, "cli_message", None) or str(exc)


__all__ = ["UserError", "cli_message"]
