"""Options and helpers shared by `orca-math sample`, `preferences`, `train` and `learn`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_data_options(parser: argparse.ArgumentParser) -> None:
    from orca_math.cli.common import add_seed_options
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.learn_eval import DataSection

    add_recipe_flags(parser, DataSection, only=("path",))
    add_seed_options(parser)


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """--k/--samples, --temperature, --top-p, --max-tokens, --prompt-format: the recipe's sampling fields."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.learn_eval import SamplingSection

    add_recipe_flags(parser, SamplingSection, only=("k", "temperature", "top_p", "max_tokens", "prompt_format"))


def add_grading_options(parser: argparse.ArgumentParser) -> None:
    """`--grading exact|llm|hybrid` (and its old name `--grader`, hidden), `--grader-model`, `--timeout`."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.learn_eval import GradingSection

    add_recipe_flags(parser, GradingSection, only=("mode",))
    # The old name of --grading, kept hidden for one release.
    parser.add_argument("--grader", choices=["exact", "llm", "hybrid"], default=None, dest="old_grader",
                        help=argparse.SUPPRESS)
    add_recipe_flags(parser, GradingSection, only=("grader_model", "timeout"))


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    from orca_math.cli.paths import add_overwrite_option

    add_overwrite_option(parser, "existing files in --out")


def check_out(args: argparse.Namespace, command: str, *, inputs: list[Any]) -> Path:
    """Check `--out` before any model is loaded: one sentence per problem (see orca_math.cli.paths)."""
    from orca_math.cli.paths import LAYOUTS, check_not_input, check_output_folder

    check_not_input(args.out, inputs)
    return check_output_folder(args.out, LAYOUTS[command], overwrite=args.overwrite)


def problems_from_args(args: argparse.Namespace) -> list[dict[str, str]]:
    """The `--data` problems as id/question/answer dicts, with the seed options applied."""
    from orca_math.cli.common import seed_options_from_args
    from orca_math.data.seeds import read_seeds

    return [{"id": p.id, "question": p.question, "answer": p.gold_solution}
            for p in read_seeds(args.data, limit=args.limit, require_answers=True, **seed_options_from_args(args))]


def grading_mode_from_args(args: argparse.Namespace, default: str | None) -> str | None:
    """The grading mode from `--grading`, or from the deprecated `--grader` (with a note), else `default`."""
    import sys

    if args.old_grader is not None:
        print("note: --grader is now --grading; the old name goes in the next release.", file=sys.stderr)
        if args.grading is not None and args.grading != args.old_grader:
            raise user_error(ValueError(f"--grading {args.grading} and --grader {args.old_grader} disagree; pass --grading only."))
    return args.grading or args.old_grader or default


def check_grading_flags(args: argparse.Namespace) -> str | None:
    """The grading mode `--grading` (or the old `--grader`, with a note) asks for, None when neither is given;
    llm and hybrid without `--grader-model` are refused, naming the flags."""
    mode = grading_mode_from_args(args, None)
    if mode not in (None, "exact") and not args.grader_model:
        raise user_error(ValueError(f"--grading {mode} needs --grader-model SPEC (a strong model, e.g. openai:gpt-4o)."))
    return mode


def grading_from_args(args: argparse.Namespace, *, cache: Any = None):
    """The `GradingPolicy` that `--grading` (or the old `--grader`, with a note) and `--grader-model` describe;
    the Grader's replies are kept in the `ResponseCache` `cache` when one is given."""
    from orca_math.grading import GradingPolicy

    mode = grading_mode_from_args(args, "exact")
    if mode != "exact" and not args.grader_model:
        raise user_error(ValueError(f"--grading {mode} needs --grader-model SPEC (a strong model, e.g. openai:gpt-4o)."))
    if mode == "exact":
        return GradingPolicy(mode="exact")
    from orca_math.cli.common import managed_client_from_spec

    # Managed: the Grader's calls get retries and the per-attempt --timeout like every other model call.
    return GradingPolicy(managed_client_from_spec(args.grader_model, args, cache=cache), mode=mode)


def user_error(exc: BaseException):
    """`exc` as the CLI's `UserError`, worded for the command line."""
    from orca_math.cli.messages import UserError, cli_message

    return UserError(cli_message(exc))


__all__ = ["add_data_options", "add_grading_options", "add_overwrite", "add_sampling_options", "check_grading_flags",
           "check_out",
           "grading_from_args", "grading_mode_from_args", "problems_from_args", "user_error"]
