"""`generate`'s options for difficulty and curation: --student, --student-samples (see docs/curation.md)."""

from __future__ import annotations

import argparse
from typing import Any

from orca_math.cli.arguments import positive_int


def add_curation_options(parser: argparse.ArgumentParser) -> None:
    """Add --student and --student-samples to `generate`."""
    parser.add_argument("--student", default=None, metavar="SPEC",
                        help="measure each kept problem's difficulty against this student: a spec such as vllm:ckpt/m1, "
                        "hf:ckpt/m1 or a server URL; writes pass_rate and a difficulty band (easy, medium, hard, unsolved)")
    parser.add_argument("--student-samples", type=positive_int, default=4, metavar="K",
                        help="with --student: samples per problem (default 4, at temperature 0.7 and top_p 0.95)")


def curation_stages(args: argparse.Namespace) -> list[Any]:
    """The stages the options ask for, to run after the generation stages (none without --student)."""
    if args.student is None:
        return []
    from orca_math.pipeline.difficulty import Difficulty

    return [Difficulty(args.student, k=args.student_samples)]


__all__ = ["add_curation_options", "curation_stages"]
