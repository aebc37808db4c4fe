"""Argument types that check numbers when the command line is parsed, and the parser that words errors.

Each type raises `argparse.ArgumentTypeError` with text that reads after the flag's name
("--limit must be a positive integer, not '-1'"), so a bad value is refused before anything runs and
the message names the flag, never an internal class or keyword argument.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable


def _number(kind: type, raw: str, wanted: str) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {raw!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {raw!r}")
    return value


def _bounded(kind: type, wanted: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    def parse(raw: str):
        value = _number(kind, raw, wanted)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {raw!r}")
        return value

    parse.__name__ = wanted.replace(" ", "_")  # argparse names the type in its own fallback messages
    return parse


positive_int = _bounded(int, "a positive integer", lambda v: v >= 1)
non_negative_int = _bounded(int, "an integer of 0 or more", lambda v: v >= 0)
positive_float = _bounded(float, "a positive number", lambda v: v > 0)
non_negative_float = _bounded(float, "a number of 0 or more", lambda v: v >= 0)
share = _bounded(float, "a share between 0 and 1", lambda v: 0 <= v <= 1)
open_share = _bounded(float, "a share between 0 and 1, both excluded", lambda v: 0 < v < 1)
top_p = _bounded(float, "above 0 and at most 1", lambda v: 0 < v <= 1)


class ArgumentsError(Exception):
    """A command line argparse refused; the message is one sentence naming the flag."""


_ARGUMENT = re.compile(r"^argument (?P<flag>[^:/ ]+)[^:]*: (?P<message>.*)$", re.DOTALL)


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are raised (for `main` to print and return 2), not exited on.

    Arguments whose definition needs a heavy import can be deferred (`defer_arguments`): they are
    added when this parser first parses or prints its help, so other commands never pay for them.
    """

    def defer_arguments(self, build: Callable[[], argparse.ArgumentParser | None]) -> None:
        """Add the arguments of the parser `build()` returns (None: none) when this parser is first used."""
        self.__dict__.setdefault("_deferred", []).append(build)

    def add_deferred_arguments(self) -> None:
        """Add the deferred arguments now (as `parents=` would have)."""
        deferred, self._deferred = self.__dict__.get("_deferred", []), []
        for build in deferred:
            parent = build()
            if parent is not None:
                self._add_container_actions(parent)
                self._defaults.update(parent._defaults)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self.add_deferred_arguments()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.add_deferred_arguments()
        return super().format_help()

    def format_usage(self) -> str:
        self.add_deferred_arguments()
        return super().format_usage()

    def error(self, message: str):  # type: ignore[override]
        match = _ARGUMENT.match(message)
        if match:
            flag, text = match["flag"], match["message"]
            message = f"{flag} {text}" if text.startswith("must ") else f"{flag}: {text}"
        raise ArgumentsError(f"{message} (see `{self.prog} --help`)")


__all__ = ["ArgumentsError", "Parser", "non_negative_float", "non_negative_int", "open_share", "positive_float",
           "positive_int", "share", "top_p"]
