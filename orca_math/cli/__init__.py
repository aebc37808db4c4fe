"""The `orca-math` command.

Each subcommand lives in its own module and registers itself with `add_parser(subparsers)`;
errors users can fix (`orca_math.errors.OrcaMathError`) are printed as one sentence with exit
status 2 (with `-v`, their traceback comes first as a debug message); any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

from orca_math._version import __version__
from orca_math.cli import doctor, evaluate, generate, learn, publish, quality, sample, status, train, view
from orca_math.cli import run as run  # noqa: PLC0414 (run_parsed below uses it)
from orca_math.cli.messages import UserError as UserError  # noqa: PLC0414 (re-exported: `from orca_math.cli import UserError`)
from orca_math.cli.messages import cli_message
from orca_math.cli.outcome import EXIT_PAUSED
from orca_math.errors import OrcaMathError

COMMANDS = [generate, evaluate, quality, publish, sample, train, learn, run, status, view, doctor]


class _OncePerRecord(logging.Filter):
    """Drops records that a library's own handler prints already (datasets, huggingface_hub attach one
    and still propagate to the root logger, so each of their warnings came out twice)."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            if any(not isinstance(handler, logging.NullHandler) for handler in logger.handlers):
                return False
            if not logger.propagate:
                break
            logger = logger.parent  # type: ignore[assignment]
        return True


def configure_logging(*, verbose: bool = False) -> None:
    """Log to stderr once per message: WARNING and above, or everything with `-v`."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.root.handlers:
        if not any(isinstance(f, _OncePerRecord) for f in handler.filters):
            handler.addFilter(_OncePerRecord())


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The `orca-math` parser with every command's flags.

    Args:
        lazy: leave the flags whose definition needs a heavy import (train's preset fields) to be
            added when their command parses or prints its help, as `main` does; False adds them now.
    """
    from orca_math.cli.arguments import Parser
    from orca_math.cli.outcome import EXIT_STATUS_TEXT

    parser = Parser(
        prog="orca-math",
        description="Build Orca-Math-style math reasoning data with agents, grade it, and train a small model on it.",
        epilog=EXIT_STATUS_TEXT,
    )
    parser.add_argument("--version", action="version", version=f"orca-math {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(subparsers)
    for name in run.RECIPE_COMMANDS:  # deferred too, so that it follows the command's own (deferred) flags
        subparsers.choices[name].defer_arguments(_save_recipe_flag)
    # `orca-math run` runs a recipe as the command line it stands for: it is handed the way back in,
    # so the command's module needs no import of this one (which composes every command).
    subparsers.choices["run"].set_defaults(reenter=(build_parser, run_parsed))
    if not lazy:
        for command in subparsers.choices.values():
            command.add_deferred_arguments()
    return parser


def _save_recipe_flag() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    run.add_save_recipe_option(flags)
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    from orca_math.cli.arguments import ArgumentsError

    parser = build_parser(lazy=True)
    try:
        args = parser.parse_args(argv)
    except ArgumentsError as exc:  # a bad value is refused before anything runs, naming its flag
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(verbose=args.verbose)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    try:
        return run_parsed(args)
    except OrcaMathError as exc:  # the user can fix it; anything else is a bug and shows its traceback
        if getattr(exc, "paused", False):  # --batch --no-wait: batches are running; not an error
            print(cli_message(exc), file=sys.stderr)
            return EXIT_PAUSED
        # A user error keeps its exit status with -v too; its traceback is debug detail (shown with -v).
        logging.getLogger("orca_math.cli").debug("traceback of the error below", exc_info=True)
        print(f"error: {cli_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        from orca_math.cli.common import close_clients

        close_clients()


def run_parsed(args: argparse.Namespace) -> int:
    """Run a parsed command: its handler, or with `--save-recipe` only the recipe it means; a generate,
    learn or eval run then records its resolved recipe in its output folder."""
    if getattr(args, "save_recipe", None):
        return run.save_recipe_from_args(args)
    status = int(args.handler(args) or 0)
    run.record_run(args)
    return status


def console_main() -> None:
    """The `orca-math` console command (and ``python -m orca_math``): `main`, then exit with its status.

    Before the interpreter shuts down, every object left is frozen out of the garbage collector's
    sight: shutdown then skips a last walk over the whole heap (the imported libraries and the run's
    objects), 0.2 s of a command's wall time (benchmarks/cli_throughput.py). Threads are still joined
    and exit handlers still run (they flush caches and logs); only the cycle collection is skipped,
    which a process about to exit does not need.

    The collector is also off while the command starts (`orca_math.gc_pause`): its imports create
    about a million objects that are no garbage, and walking them again and again delayed the first
    request of a `solve` by about 0.1 s. A run turns it back on as it begins; so does a timer.
    """
    from orca_math.gc_pause import pause_during_start

    pause_during_start()
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    console_main()
