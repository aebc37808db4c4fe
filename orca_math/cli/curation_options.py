"""`generate`'s options for difficulty and curation: --student, --student-samples (see docs/curation.md)."""

from __future__ import annotations

import argparse
from typing import Any


def add_curation_options(parser: argparse.ArgumentParser) -> None:
    """Add --student, --student-samples, --curate, --band-shares, --pilot and --hourly-usd to `generate`."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import CostSection
    from orca_math.recipes.generate import CurationSection

    # Written once, as the recipe's curation and cost fields (orca_math.recipes.generate.CurationSection,
    # orca_math.recipes.common.CostSection).
    add_recipe_flags(parser, CurationSection, only=("student", "student_samples", "curate", "band_shares"))
    add_recipe_flags(parser, CostSection, only=("pilot", "hourly_usd"))


def check_curation(args: argparse.Namespace) -> None:
    """--curate is checked before any model loads (a typo fails at once), and needs --student for its bands."""
    from orca_math.pipeline.curation import Curation

    curation = Curation.parse(args.curate)
    if args.student is None and curation.active:
        from orca_math.errors import ConfigError

        raise ConfigError("--curate needs difficulty bands: add --student SPEC to measure them.")


def difficulty_line(summary_path: Any) -> str | None:
    """``difficulty against the student: easy 3, ...`` from summary.json (with a newline), or None without --student."""
    import json
    from pathlib import Path

    counts = (json.loads(Path(summary_path).read_text(encoding="utf-8")).get("difficulty") or {}).get("counts")
    if not counts:
        return None
    return "difficulty against the student: " + ", ".join(f"{band} {n}" for band, n in counts.items()) + "\n"


def check_pilot(args: argparse.Namespace) -> None:
    """--pilot needs --dry-run and --target-rows; refused in one sentence before anything loads."""
    from orca_math.errors import ConfigError

    if args.pilot is None:
        if args.hourly_usd is not None:
            raise ConfigError("--hourly-usd prices a pilot's projection: add --dry-run --pilot N --target-rows N.")
        return
    if not args.dry_run or args.target_rows is None:
        raise ConfigError("--pilot N projects the cost of a row target before the run: use it with --dry-run and --target-rows N.")


def run_pilot_from_args(pipeline: Any, args: argparse.Namespace, seed_options: dict[str, Any]) -> int:
    """Run the pilot, print its table and where estimate.json is; exit status 0."""
    from orca_math._sync import run_sync
    from orca_math.pipeline.pilot import ESTIMATE_FILE, PILOT_DIR, run_pilot

    projection = run_sync(run_pilot(pipeline, args.seeds, out=args.out, pilot=args.pilot, target_rows=args.target_rows,
                                    seed_options=seed_options, limit=args.limit, hourly_usd=args.hourly_usd))
    print(projection.render())
    print(f"\nestimate: {args.out}/{ESTIMATE_FILE}  (the pilot's run: {args.out}/{PILOT_DIR}; its replies are cached for "
          "the real run: the same command without --dry-run --pilot)")
    return 0


__all__ = ["add_curation_options", "check_curation", "check_pilot", "difficulty_line",
           "run_pilot_from_args"]
