"""`orca-math push` and `orca-math report`: publish a generated dataset, or draw a run's report."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    push = subparsers.add_parser(
        "push",
        help="upload a generated dataset and its dataset card to the Hugging Face Hub",
        description="Upload OUT/dataset as parquet shards and the dataset card as README.md to a Hub dataset "
        "repository. The token comes from HF_TOKEN or `huggingface-cli login`; it is never printed.",
    )
    push.add_argument("run_dir", metavar="RUN_DIR", help="the output folder of `orca-math generate`")
    push.add_argument("--repo", required=True, metavar="NAME", help="the dataset repository, owner/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--license", default=None, metavar="L", help="Hub license id for the card, e.g. cc-by-4.0 (default: other)")
    push.add_argument("--dry-run", action="store_true", help="show what would be uploaded, and the card, without any network")
    push.set_defaults(handler=run_push)

    report = subparsers.add_parser(
        "report",
        help="write an HTML report with charts for a generation or evaluation folder",
        description="Write report.html with PNG charts beside it: the stage funnel, difficulty per hardening round, "
        "answer types, tokens and cost, grader methods, and accuracy for evaluation folders. Prints its path.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="an output folder (or OUT/runs/<key>)")
    report.add_argument("--out", default=None, metavar="DIR", help="folder for the report (default: RUN_DIR/report)")
    report.set_defaults(handler=run_report)


def run_push(args: argparse.Namespace) -> int:
    from orca_math.cli.messages import UserError
    from orca_math.hub import PushError, push_to_hub

    try:
        plan = push_to_hub(args.run_dir, args.repo, private=args.private, license=args.license, dry_run=args.dry_run)
    except PushError as exc:
        raise UserError(str(exc)) from None
    print(plan.describe())
    if plan.dry_run:
        print("\n--- README.md ---\n" + plan.card)
    else:
        print(f"done: {plan.url}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from orca_math.cli.messages import UserError
    from orca_math.cli.paths import LAYOUTS, check_output_folder
    from orca_math.report import ReportError, write_run_report

    if args.out is not None:
        check_output_folder(args.out, LAYOUTS["report"], overwrite=True)  # a report folder is rewritten by design
    try:
        path = write_run_report(args.run_dir, out=args.out)
    except ReportError as exc:
        raise UserError(str(exc)) from None
    print(path)
    return 0
