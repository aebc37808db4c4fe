"""`orca-math eval`: pass@1 of a student model on math benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

GRADER_NOTE = (
    "note: the LLM grader is the student model itself; for real evaluations pass a strong grader, "
    "e.g. --grader-model openai:gpt-4o, or use --grading exact."
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a student model's pass@1 on math benchmarks",
        description="Ask a student model every question of the chosen benchmarks (with the Teacher's prompt), grade "
        "each reply against the gold answer, and print pass@1 per benchmark with counts and how many verdicts the "
        "deterministic checker and the LLM grader decided. The run lives in OUT/runs/<key>; rerunning the same "
        "command resumes it. See docs/evaluation.md.",
    )
    # The flags come from the EvalRecipe's fields, whose import reads the benchmark list: added when
    # `eval` parses or shows its help, so other commands never pay for it.
    parser.defer_arguments(_eval_flags)
    parser.set_defaults(handler=run_eval)


def _eval_flags() -> argparse.ArgumentParser:
    """eval's flags, in their --help order; its settings are written once, as the EvalRecipe's fields
    (orca_math.recipes.learn_eval)."""
    from orca_math.cli.batch_options import add_batch_options
    from orca_math.cli.common import add_timeout_option
    from orca_math.cli.paths import add_overwrite_option
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.cli.scale_options import add_executor_options
    from orca_math.grading import GRADE_MODES
    from orca_math.recipes.learn_eval import (
        BenchmarkSection,
        EvalGradingSection,
        EvalModelSection,
        EvalRecipe,
    )

    flags = argparse.ArgumentParser(add_help=False)
    add_recipe_flags(flags, EvalModelSection, only=("spec", "name", "base_url"))
    add_recipe_flags(flags, BenchmarkSection, only=("names", "files", "question_column", "answer_column", "file_names",
                                                    "limit"))
    add_recipe_flags(flags, EvalGradingSection, only=("mode",))
    # The old name of --grading, kept hidden for one release.
    flags.add_argument("--grader", choices=GRADE_MODES, default=None, dest="old_grader", help=argparse.SUPPRESS)
    add_recipe_flags(flags, EvalGradingSection, only=("grader_model", "audit_rate"))
    flags.add_argument("--out", required=True, metavar="DIR", help="output folder: items.jsonl (one row per item), summary.json, table.md and runs/")
    add_recipe_flags(flags, BenchmarkSection, only=("benchmarks_dir",))
    add_recipe_flags(flags, EvalRecipe, only=("concurrency",))
    add_recipe_flags(flags, EvalModelSection, only=("temperature", "max_tokens"))
    add_recipe_flags(flags, EvalRecipe, only=("cache", "cache_file"))
    flags.add_argument("--fresh", action="store_true", help="discard an earlier run of the same command instead of "
                       "resuming it (replies in the response cache are reused; add --no-cache to ask the model again)")
    flags.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_timeout_option(flags)
    add_executor_options(flags)
    add_batch_options(flags)
    add_overwrite_option(flags, "existing files in --out")
    return flags


def run_eval(args: argparse.Namespace) -> int:
    """Resolve the flags into an `EvalRecipe` and evaluate what `EvalRecipe.evaluate_arguments` maps it to: the
    one route of an evaluation, from flags and from `orca-math run RECIPE` (which parses the recipe's flags)."""
    from orca_math.cli.batch_options import mode_from_args
    from orca_math.cli.learn_options import grading_mode_from_args
    from orca_math.cli.messages import UserError, cli_message
    from orca_math.cli.outcome import exit_status
    from orca_math.cli.paths import LAYOUTS, check_output_folder
    from orca_math.cli.scale_options import executor_from_args
    from orca_math.data.benchmarks import BenchmarkError
    from orca_math.errors import OrcaMathError
    from orca_math.evaluate.harness import evaluate_sync
    from orca_math.recipes import recipe_from_args

    check_output_folder(args.out, LAYOUTS["eval"], overwrite=args.overwrite)
    runs_before = _run_dirs(args.out)
    existed = Path(args.out).exists()
    args.grading = grading_mode_from_args(args, None)  # the old --grader is the recipe's grading.mode too
    grading = args.grading or "hybrid"
    # Checked by their flags first, so each refusal names the flag the user typed.
    mode_from_args(args)  # --no-wait needs --batch
    executor_from_args(args)  # --ray-address and --workers need --executor ray
    try:
        if len(args.name) > len(args.benchmark_file):
            raise BenchmarkError(f"{len(args.name)} --name given for {len(args.benchmark_file)} --benchmark-file; "
                                 "give one name per file, in the same order.")
        recipe = recipe_from_args("eval", args)
        # The benchmarks are read (and checked) first: a typo or a bad file fails before any model is loaded.
        arguments = recipe.evaluate_arguments(fresh=args.fresh, progress=not args.no_progress, wait=not args.no_wait)
        if (grading != "exact" or args.audit_rate > 0) and args.grader_model is None:
            print(GRADER_NOTE, file=sys.stderr)
        result = evaluate_sync(**arguments)
    except (BenchmarkError, ValueError) as exc:
        _remove_empty_runs(args.out, runs_before, existed)
        raise UserError(cli_message(exc)) from None
    except OrcaMathError:  # an unknown or unloadable model, a rejected key: nothing ran
        _remove_empty_runs(args.out, runs_before, existed)
        raise
    print(result.table())
    print(f"\n{'resumed' if result.resumed else 'new'} run {result.run_key} in {result.run_dir}")
    print(f"per-item results: {result.files['items']} ({result.dataset.num_rows} rows)")
    print(f"summary: {result.files['summary']}")
    failed = sum(score.failures for score in result.summary.scores.values())
    return exit_status(failed, "items", f"the error column of {result.files['items']}")


def _run_dirs(out: str) -> set[Path]:
    return {path for path in (Path(out) / "runs").glob("*") if path.is_dir()}


def _remove_empty_runs(out: str, before: set[Path], existed: bool) -> None:
    """Take away the run folders this command made when it failed before any item was recorded.

    A failed start (an unknown model spec, say) must not leave a run folder behind that looks like
    an evaluation; a run with any checkpoint record is kept, so a rerun resumes it.
    """
    import shutil

    from orca_math.engine.folder import CACHE_FILE, LOCK_FILE

    for run_dir in _run_dirs(out) - before:
        if not any(path.stat().st_size for path in run_dir.rglob("*.jsonl")):
            shutil.rmtree(run_dir, ignore_errors=True)
    root = Path(out)
    # The folder is ours when it did not exist: its lock and the response cache the start opened (no call was
    # answered, or a run would hold a record) go with it.
    made = [path for path in root.rglob("*") if path.is_file() and path.name != LOCK_FILE
            and not path.name.startswith(CACHE_FILE)] if root.is_dir() else []
    if not existed and root.is_dir() and not made:
        shutil.rmtree(root, ignore_errors=True)
