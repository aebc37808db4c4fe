"""The base of every error a user can fix, and whether it stops a run.

The CLI catches `OrcaMathError` and prints its message as one sentence (exit status 2); anything
else is a bug and shows its traceback. While a run processes items, `stops_run` decides what an
error does: True stops the whole run (every item would fail alike: a rejected key, an open
breaker, a spent budget), False records that one item as a failure with its reason.
"""

from __future__ import annotations

from typing import ClassVar


class OrcaMathError(Exception):
    """An error the user can fix; its message is one sentence that says what to do.

    Attributes:
        stops_run: whether this error, raised while processing one item, stops the whole run.
    """

    stops_run: ClassVar[bool] = False


class ConfigError(OrcaMathError, ValueError):
    """A bad argument or option: the message names it and the values it accepts."""


class InputError(OrcaMathError, ValueError):
    """Input data that cannot be used (a seed file, a benchmark file, attempts): names the file and line."""


class RunFolderError(OrcaMathError):
    """A run folder that cannot be used: locked by another process, written by another layout, unwritable."""

    stops_run = True


class MissingFileError(InputError, FileNotFoundError):
    """A file the user named does not exist (a `FileNotFoundError` too, for callers that catch that)."""


def check_positive_int(name: str, value: object, *, optional: bool = False) -> None:
    """Raise `ConfigError` unless `value` is a positive int (not a bool); None passes when `optional`."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer{' or None' if optional else ''}, not {value!r}.")
