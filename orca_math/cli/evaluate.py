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
    from orca_math.cli.arguments import non_negative_float, positive_int, share
    from orca_math.cli.paths import add_overwrite_option
    from orca_math.data.benchmarks import BENCHMARKS
    from orca_math.grading import GRADE_MODES

    parser = subparsers.add_parser(
        "eval",
        help="evaluate a student model's pass@1 on math benchmarks",
        description="Ask a student model every question of the chosen benchmarks (with the Teacher's prompt), grade "
        "each reply against the gold answer, and print pass@1 per benchmark with counts and how many verdicts the "
        "deterministic checker and the LLM grader decided. The run lives in OUT/runs/<key>; rerunning the same "
        "command resumes it. See docs/evaluation.md.",
    )
    parser.add_argument(
        "--model", required=True,
        help="the student model: an OpenAI-compatible server URL (e.g. a vLLM server, http://127.0.0.1:8000/v1), "
        "'hf:<path>' for a local transformers model, 'openai:<model>', 'azure:<deployment>' or 'local'",
    )
    parser.add_argument("--model-name", default=None, help="model name to request from a server URL (default: the first one it serves)")
    parser.add_argument("--base-url", default=None, help="base URL for an 'openai:<model>' spec")
    parser.add_argument(
        "--benchmarks", default=None,
        help=f"comma-separated benchmark names (default: gsm8k, or none when --benchmark-file is given); known: "
        f"{', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--benchmark-file", action="append", default=[], metavar="FILE",
        help="a benchmark of your own: a .jsonl, .json, .csv or .parquet file with a question and a gold answer per "
        "row (repeatable; evaluated after --benchmarks, in the same tables)",
    )
    parser.add_argument("--question-column", default="question", metavar="COLUMN",
                        help="the question column of each --benchmark-file (default: question)")
    parser.add_argument("--answer-column", default="answer", metavar="COLUMN",
                        help="the gold answer column of each --benchmark-file: a number, or text ending in '#### N' or "
                        "'Final answer: N' (default: answer)")
    parser.add_argument("--name", action="append", default=[], metavar="NAME",
                        help="the name of a --benchmark-file's set in the tables (repeatable, in the order of the files; "
                        "default: the file's name without its extension)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help="evaluate only the first N items of each benchmark (default: all)")
    parser.add_argument(
        "--grading", choices=GRADE_MODES, default=None,
        help="exact: deterministic answer checking only (undecidable replies count as incorrect); llm: the LLM "
        "grader always (the paper's GPT-4-based exact match); hybrid: deterministic where the checker is sure, "
        "the LLM grader for the rest (default)",
    )
    # The old name of --grading, kept hidden for one release.
    parser.add_argument("--grader", choices=GRADE_MODES, default=None, dest="old_grader", help=argparse.SUPPRESS)
    parser.add_argument("--grader-model", default=None, metavar="SPEC",
                        help="model spec of the LLM grader (default: the student model; pass a strong model for real evaluations)")
    parser.add_argument("--audit-rate", type=share, default=0.0, metavar="RATE",
                        help="share (0-1) of deterministic verdicts also sent to the LLM grader; the summary reports agreement (default: 0, no audit)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder: items.jsonl (one row per item), summary.json, table.md and runs/")
    parser.add_argument("--benchmarks-dir", default=None, metavar="DIR",
                        help="folder of local benchmark copies (gsm8k/test.jsonl, svamp/test.jsonl, ...); default: "
                        "$ORCA_MATH_BENCHMARKS_DIR, else the Hugging Face Hub")
    parser.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="items in flight at once (default: 8); does not change the run key")
    parser.add_argument("--temperature", type=non_negative_float, default=None, help="the student's sampling temperature (default: the Teacher card's, 0)")
    parser.add_argument("--max-tokens", type=positive_int, default=None, help="the student's reply token limit (default: the Teacher card's, 1024)")
    parser.add_argument("--fresh", action="store_true", help="discard an earlier run of the same command instead of resuming it")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    from orca_math.cli.batch_options import add_batch_options
    from orca_math.cli.common import add_timeout_option
    from orca_math.cli.scale_options import add_executor_options

    add_timeout_option(parser)
    add_executor_options(parser)
    add_batch_options(parser)
    add_overwrite_option(parser, "existing files in --out")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from orca_math.cli import UserError, cli_message
    from orca_math.cli.batch_options import batch_calls_from_args
    from orca_math.cli.common import client_from_args
    from orca_math.cli.learn_options import grading_mode_from_args
    from orca_math.cli.outcome import exit_status
    from orca_math.cli.paths import LAYOUTS, check_output_folder
    from orca_math.cli.scale_options import executor_from_args
    from orca_math.data.benchmarks import BenchmarkError
    from orca_math.errors import OrcaMathError
    from orca_math.evaluate.harness import evaluate_sync

    check_output_folder(args.out, LAYOUTS["eval"], overwrite=args.overwrite)
    runs_before = _run_dirs(args.out)
    existed = Path(args.out).exists()
    sampling = {k: v for k, v in {"temperature": args.temperature, "max_tokens": args.max_tokens}.items() if v is not None}
    grading = grading_mode_from_args(args, "hybrid")
    try:
        benchmarks = _benchmarks(args)  # before loading any model: a typo or a bad file fails at once
        if (grading != "exact" or args.audit_rate > 0) and args.grader_model is None:
            print(GRADER_NOTE, file=sys.stderr)
        # A plain spec is loaded (and closed) by the harness; options need the shared client builder.
        model = client_from_args(args) if args.model_name or args.base_url else args.model
        result = evaluate_sync(
            model, benchmarks, limit=args.limit, grading=grading, grader_model=args.grader_model,
            out=args.out, path=args.benchmarks_dir, concurrency=args.concurrency, sampling=sampling or None,
            fresh=args.fresh, progress=not args.no_progress, audit_rate=args.audit_rate, timeout=args.timeout,
            executor=executor_from_args(args), calls=batch_calls_from_args(args, args.out),
        )
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

    from orca_math.engine.folder import LOCK_FILE

    for run_dir in _run_dirs(out) - before:
        if not any(path.stat().st_size for path in run_dir.rglob("*.jsonl")):
            shutil.rmtree(run_dir, ignore_errors=True)
    root = Path(out)
    if not existed and root.is_dir() and not any(path.is_file() and path.name != LOCK_FILE for path in root.rglob("*")):
        shutil.rmtree(root, ignore_errors=True)


def _benchmarks(args: argparse.Namespace) -> list:
    """The built-in names and the --benchmark-file sets, read (and checked) before any model is loaded."""
    from orca_math.data.benchmarks import BenchmarkError
    from orca_math.evaluate.sets import benchmark_file, parse_benchmarks

    if len(args.name) > len(args.benchmark_file):
        raise BenchmarkError(f"{len(args.name)} --name given for {len(args.benchmark_file)} --benchmark-file; "
                             "give one name per file, in the same order.")
    if args.benchmarks is not None:
        names = parse_benchmarks(args.benchmarks)
    else:  # the default: gsm8k, unless only files were given
        names = [] if args.benchmark_file else parse_benchmarks("gsm8k")
    files = [benchmark_file(file, question=args.question_column, answer=args.answer_column,
                            name=args.name[i] if i < len(args.name) else None)
             for i, file in enumerate(args.benchmark_file)]
    return [*names, *files]
