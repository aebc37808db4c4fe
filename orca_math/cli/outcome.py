"""The one exit-status rule of every `orca-math` command, and the line that explains a status of 1."""

from __future__ import annotations

import sys
from pathlib import Path

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130

#: Shown by `orca-math --help` and, through scripts/gen_docs.py, in the CLI reference.
EXIT_STATUS_TEXT = (
    "Exit status: 0 when every item succeeded; 1 when the command finished but some items failed (it "
    "prints how many and where their reasons are; the outputs hold everything else, and running the same "
    "command again retries the failed items), or when a --target-rows run used up its seeds short of the target "
    "(it prints how many rows it reached); 2 when the command could not run or stopped early: a bad "
    "option or file, a missing or rejected API key, a spent budget, or a step whose first items all failed "
    "the same way (a 400 for every request, say), each told in one sentence; 3 when a --batch --no-wait "
    "run submitted its batches and stopped to be rerun later; 130 when interrupted with Ctrl-C (finished "
    "work is kept)."
)


def counted(count: int, what: str) -> str:
    """``"1 problem"``, ``"2 problems"``: `what` is the plural ("samples or labels" works too)."""
    if count != 1:
        return f"{count} {what}"
    words = [word[:-1] if word.endswith("s") and not word.endswith("ss") and word != "or" else word for word in what.split()]
    return f"{count} {' '.join(words)}"


def exit_status(failed: int, what: str, where: str | Path, *, retried: bool = True) -> int:
    """0 when nothing failed; else one line on stderr with the count and where the reasons are, and 1.

    Args:
        failed: how many items failed.
        what: the items, plural ("problems", "samples").
        where: the file (or files) holding the failure reasons.
        retried: whether running the same command again retries them (the message says so).
    """
    if failed <= 0:
        return EXIT_OK
    again = "; run the same command again to retry them" if retried else ""
    print(f"{counted(failed, what)} failed (reasons in {where}){again}.", file=sys.stderr)
    return EXIT_ITEMS_FAILED


__all__ = ["counted", "EXIT_INTERRUPTED", "EXIT_ITEMS_FAILED", "EXIT_OK", "EXIT_STATUS_TEXT", "EXIT_USER_ERROR", "exit_status"]
