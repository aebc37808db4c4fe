"""`orca-math decontaminate`: check a dataset against benchmark test sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orca_math.errors import ConfigError


def add_parser(subparsers) -> None:
    from orca_math.cli.arguments import positive_int
    from orca_math.cli.paths import add_overwrite_option

    parser = subparsers.add_parser(
        "decontaminate",
        help="flag or drop rows that share n-grams with benchmark test sets",
        description="Check every row of a dataset against benchmark test sets by n-gram overlap (13-grams by default, "
        "as lm-evaluation-harness does) and report the counts per benchmark; with --out, write the cleaned dataset.",
    )
    parser.add_argument("dataset", help="a save_to_disk folder, a generate output folder, or a .parquet/.jsonl/.json/.csv file")
    parser.add_argument("--benchmarks", default=None, help="comma-separated sets (default: gsm8k,svamp,asdiv,addsub,multiarith,singleop,singleeq)")
    parser.add_argument("--benchmarks-dir", default=None, help="local copies of the benchmarks (default: the Hub, or $ORCA_MATH_BENCHMARKS_DIR)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=FILE",
                        help="an extra reference set of your own: a .jsonl/.csv/.parquet file of problems (repeatable)")
    parser.add_argument("--n", type=positive_int, default=13, help="n-gram size in words (default 13)")
    parser.add_argument("--min-overlap", type=positive_int, default=1, help="shared n-grams that make a row contaminated (default 1)")
    parser.add_argument("--action", choices=["drop", "flag"], default="drop", help="drop contaminated rows, or keep them flagged (default drop)")
    parser.add_argument("--field", default="question", help="the column holding the problem text (default question)")
    parser.add_argument("--out", default=None, help="write the cleaned (or flagged) dataset here (save_to_disk folder)")
    parser.add_argument("--drops-out", default=None, help="write the dropped rows with their reasons here (.jsonl)")
    add_overwrite_option(parser, "an existing --out folder or --drops-out file")
    parser.set_defaults(handler=run_decontaminate)


def _extra_sets(values: list[str]) -> dict[str, list[str]]:
    from pathlib import Path

    from orca_math.data.seeds import read_seeds

    extra = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            raise ConfigError(f"--extra takes NAME=FILE, not {value!r}")
        if not Path(path).exists():
            raise ConfigError(f"--extra {name}: {path} does not exist")
        extra[name] = [problem.question for problem in read_seeds(path)]
    return extra


def _check_outputs(args: argparse.Namespace) -> None:
    from orca_math.cli.paths import (
        LAYOUTS,
        check_not_input,
        check_output_file,
        check_output_folder,
        first_row_has,
    )

    if args.out:
        check_not_input(args.out, [args.dataset, Path(args.dataset) / "dataset"])
        check_output_folder(args.out, LAYOUTS["dataset"], overwrite=args.overwrite)
    if args.drops_out:
        check_not_input(args.drops_out, [args.dataset], flag="--drops-out")
        owned = first_row_has(args.drops_out, ("stage", "reason"))  # a drops file from an earlier run
        check_output_file(args.drops_out, flag="--drops-out", owned=owned, overwrite=args.overwrite)


def run_decontaminate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orca_math.quality import DEFAULT_SETS, DecontaminationOptions, decontaminate_dataset

    _check_outputs(args)
    dataset = Path(args.dataset)
    if (dataset / "dataset").is_dir() and (dataset / "summary.json").exists():
        dataset = dataset / "dataset"  # a `generate` output folder
    benchmarks = [b.strip() for b in args.benchmarks.split(",")] if args.benchmarks else list(DEFAULT_SETS)
    options = DecontaminationOptions(n=args.n, min_overlap=args.min_overlap, action=args.action, field=args.field)
    report = decontaminate_dataset(
        str(dataset), benchmarks=benchmarks, path=args.benchmarks_dir, extra=_extra_sets(args.extra), options=options,
        out=args.out, drops_out=args.drops_out,
    )
    data = report.to_dict()
    print(f"checked {data['checked']} rows: {data['contaminated']} contaminated ({data['method']}, action {data['action']})")
    for name, count in data["per_benchmark"].items():
        print(f"  {name:<12} {count}")
    if args.out:
        print(f"output: {args.out}")
    print(json.dumps(data))
    return 0
