"""`generate`'s options for difficulty and curation: --student, --student-samples (see docs/curation.md)."""

from __future__ import annotations

import argparse
from typing import Any

from orca_math.cli.arguments import positive_int


def add_curation_options(parser: argparse.ArgumentParser) -> None:
    """Add --student, --student-samples, --curate and --band-shares to `generate`."""
    parser.add_argument("--student", default=None, metavar="SPEC",
                        help="measure each kept problem's difficulty against this student: a spec such as vllm:ckpt/m1, "
                        "hf:ckpt/m1 or a server URL; writes pass_rate and a difficulty band (easy, medium, hard, unsolved)")
    parser.add_argument("--student-samples", type=positive_int, default=4, metavar="K",
                        help="with --student: samples per problem (default 4, at temperature 0.7 and top_p 0.95)")
    parser.add_argument("--curate", action="append", default=[], metavar="POLICY",
                        help="with --student (repeatable): keep:BAND,... keeps only those bands (easy, medium, hard, unsolved); "
                        "harden-easy[:R] sends problems the student finds easy back to the Suggester and Editor, at most R "
                        "extra rounds (default 1)")
    parser.add_argument("--band-shares", default=None, metavar="BAND=SHARE,...",
                        help="with --target-rows and --student: fill each difficulty band to its share of the target, "
                        "e.g. hard=0.5,medium=0.3,easy=0.2 (shares add up to 1; rows beyond a band's share are cut)")


def curation_stages(args: argparse.Namespace, stages: list[Any]) -> list[Any]:
    """The stages the options add after the generation `stages` (none without --student or --curate)."""
    from orca_math.pipeline.curation import Curation
    from orca_math.pipeline.curation import curation_stages as policy_stages

    curation = Curation.parse(args.curate)  # checked first: a typo must not wait for a model to load
    if args.student is None:
        if curation.active:
            from orca_math.errors import ConfigError

            raise ConfigError("--curate needs difficulty bands: add --student SPEC to measure them.")
        return []
    from orca_math.pipeline.difficulty import Difficulty

    measured = [*stages, Difficulty(args.student, k=args.student_samples)]
    return [measured[-1], *policy_stages(curation, measured)]


def band_shares_from_args(args: argparse.Namespace) -> dict[str, float] | None:
    """--band-shares as a dict (checked by `Pipeline`), or None."""
    if args.band_shares is None:
        return None
    from orca_math.pipeline.targets import parse_band_shares

    return parse_band_shares(args.band_shares)


__all__ = ["add_curation_options", "band_shares_from_args", "curation_stages"]
