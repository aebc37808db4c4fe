"""`orca-math run RECIPE` and `orca-math diff A B`; `--save-recipe` and the recipe every run records.

`run` reads a recipe file, writes the command line it means (`orca_math.recipes.recipe_argv`),
parses it with the command's own parser and calls the command's own handler, so a recipe field
and its flag give the same run. After a generate, learn or eval run, `record_run` writes the
resolved recipe into the output folder; `--save-recipe FILE` writes it instead of running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Commands with a recipe kind (their name is the kind).
RECIPE_COMMANDS = ("generate", "learn", "eval")

#: Flags of `run` that are handed to the command, not part of the recipe: (dest, flag). They say how to
#: run (resume or not, estimate only, wait for batches, show progress), not what the run computes.
_PASSED = (("fresh", "--fresh"), ("overwrite", "--overwrite"), ("dry_run", "--dry-run"), ("no_wait", "--no-wait"),
           ("no_progress", "--no-progress"))
#: `run`'s shorthands for fields of a dry run's estimate: (dest, flag, recipe path) of a generate recipe.
_ESTIMATE_FIELDS = (("pilot", "--pilot", "pilot"), ("hourly_usd", "--hourly-usd", "hourly_usd"))

#: Every flag of a recipe command that is not a recipe field: how to run it (resume or start again, replace
#: files, estimate only, wait for batches, show progress), where (--out is the recipe's `out`), or a
#: deprecated name (--grader). Everything a run computes with is a recipe field.
RUN_CONTROL_FLAGS = frozenset({"-h", "--out", "--save-recipe", "--fresh", "--resume", "--overwrite", "--dry-run",
                               "--no-wait", "--no-progress", "--grader"})


def add_parser(subparsers) -> None:
    from orca_math.cli.arguments import positive_float, positive_int

    run = subparsers.add_parser(
        "run", help="run a recipe file (generate, learn or eval, chosen by its kind)",
        description="Run a recipe: a YAML file whose kind (generate, learn, eval) chooses the command and whose "
        "fields are that command's settings (see docs/recipes.md). A run folder's recipe.yaml runs the same way and "
        "reproduces the run, reusing its response cache. A file with several recipes (YAML documents) runs them "
        "in order.",
    )
    run.add_argument("recipe", metavar="RECIPE", help="a recipe file, or a run folder holding recipe.yaml")
    run.add_argument("--set", dest="assignments", action="append", default=[], metavar="PATH=VALUE",
                     help="override one field, e.g. --set seeds.limit=10 --set stages.rounds=1 (repeatable; with "
                     "several recipes in the file, name the kind first: --set learn.sampling.k=8)")
    run.add_argument("--out", default=None, metavar="DIR", help="the output folder (default: the recipe's out)")
    run.add_argument("--only", choices=RECIPE_COMMANDS, default=None,
                     help="of a file with several recipes, run only the one of this kind")
    run.add_argument("--fresh", action="store_true", help="discard an earlier run of the same recipe and start again")
    run.add_argument("--overwrite", action="store_true", help="write into an --out folder orca-math did not make")
    run.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost, call nothing (generate)")
    run.add_argument("--no-wait", action="store_true", help="with batch mode: submit what can be submitted and exit")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--pilot", type=positive_int, default=None, metavar="N",
                     help="with --dry-run (generate, with curation.target_rows): run the recipe for real on the first N "
                     "seeds and project the cost of the target from them (docs/curation.md); sets cost.pilot")
    run.add_argument("--hourly-usd", type=positive_float, default=None, metavar="X",
                     help="with --pilot: what the self-hosted endpoint costs per hour; sets cost.hourly_usd")
    run.set_defaults(handler=run_recipe)

    diff = subparsers.add_parser(
        "diff", help="show the recipe fields and template hashes that differ between two runs",
        description="Compare the recipes two runs recorded (OUT/recipe.yaml), or two recipe files: prints each "
        "field and prompt template hash that differs, one per line; where the runs live (out) is left out. "
        "Exit status 0 when they are the same, 1 when they differ.",
    )
    diff.add_argument("a", metavar="RUN_A", help="a run folder or a recipe file")
    diff.add_argument("b", metavar="RUN_B", help="a run folder or a recipe file")
    diff.set_defaults(handler=run_diff)


def add_save_recipe_option(parser: argparse.ArgumentParser) -> None:
    """``--save-recipe FILE`` on a recipe command: write the recipe the other flags mean, and run nothing."""
    parser.add_argument("--save-recipe", default=None, metavar="FILE",
                        help="write the recipe these flags mean to FILE (YAML) and exit without running; run it "
                        "with `orca-math run FILE`")


def save_recipe_from_args(args: argparse.Namespace) -> int:
    """`--save-recipe`: the recipe of the parsed command line, written to its file."""
    from orca_math.recipes import recipe_from_args, save_recipe

    if getattr(args, "old_grader", None) is not None:  # the deprecated --grader means grading.mode too
        from orca_math.cli.learn_options import grading_mode_from_args

        args.grading = grading_mode_from_args(args, None)
    recipe = recipe_from_args(args.command, args)
    path = save_recipe(recipe, args.save_recipe)
    print(f"recipe: {path} (run it with `orca-math run {path}`)")
    return 0


def record_run(args: argparse.Namespace) -> None:
    """After a generate, learn or eval run: its resolved recipe in OUT/recipe.yaml (not for a dry run)."""
    if args.command not in RECIPE_COMMANDS or getattr(args, "dry_run", False) or not Path(args.out).is_dir():
        return
    from orca_math.recipes import RecipeError, recipe_from_args, write_run_recipe

    try:
        recipe = recipe_from_args(args.command, args).model_copy(update={"out": None})
        write_run_recipe(recipe, args.out)
    except RecipeError as exc:  # the run itself is done: say why its recipe is missing, keep its exit status
        print(f"note: {Path(args.out) / 'recipe.yaml'} was not written: {exc}", file=sys.stderr)


def run_recipe(args: argparse.Namespace) -> int:
    from orca_math.cli.messages import UserError
    from orca_math.recipes import load_recipes
    from orca_math.recipes.record import recipe_file

    source = recipe_file(args.recipe)
    recipes = load_recipes(source, args.assignments)
    if args.only:
        recipes = [recipe for recipe in recipes if recipe.kind == args.only]  # type: ignore[attr-defined]
        if not recipes:
            raise UserError(f"--only {args.only}: {source} holds no {args.only} recipe.")
    if args.out and len(recipes) > 1:
        raise UserError(f"{source} holds {len(recipes)} recipes, each with its own out; set them with --set "
                        f"KIND.out=DIR, or run one with --only KIND --out DIR.")
    status = 0
    for recipe in recipes:
        status = max(status, _run_one(recipe, source, args))
        if status >= 2:
            break
    return status


def _run_one(recipe, source: Path, args: argparse.Namespace) -> int:
    from orca_math.cli.arguments import ArgumentsError
    from orca_math.cli.messages import UserError
    from orca_math.recipes.flags import default_recipe_error, recipe_argv
    from orca_math.recipes.record import changed_templates, reuse_recorded_cache

    out = args.out or recipe.out
    if not out:
        raise UserError(f"{source}: the {recipe.kind} recipe has no out; pass --out DIR (or --set out=DIR).")
    if recipe.recorded is not None:
        changed = changed_templates(recipe)
        if changed:
            print(f"note: {source} was recorded with other versions of {', '.join(changed)}; those calls are made "
                  "again, not taken from the cache.", file=sys.stderr)
        # Reproducing a recorded run: its replies are reused where the model and prompts are unchanged.
        recipe = reuse_recorded_cache(recipe, source.parent, out)
    recipe = _estimate_fields(recipe, source, args)
    argv = recipe_argv(recipe) + ["--out", str(out)]
    argv += [flag for dest, flag in _PASSED if getattr(args, dest)]
    build_parser, run_parsed = args.reenter
    parser = build_parser(lazy=True)
    try:
        parsed = parser.parse_args(argv)
    except ArgumentsError as exc:
        raise default_recipe_error(recipe.kind, str(exc)) from None
    parsed.verbose = args.verbose
    return run_parsed(parsed)


def _estimate_fields(recipe, source: Path, args: argparse.Namespace):
    """The recipe with `run --pilot/--hourly-usd` set in its cost section; without --dry-run a recipe's pilot
    is left out, as the run is a real one (the pilot is what a dry run of the recipe does)."""
    from orca_math.cli.messages import UserError

    given = {field: getattr(args, dest) for dest, _, field in _ESTIMATE_FIELDS if getattr(args, dest) is not None}
    if given and recipe.kind != "generate":
        flag = next(flag for dest, flag, _ in _ESTIMATE_FIELDS if getattr(args, dest) is not None)
        raise UserError(f"{flag} estimates a generate recipe; {source} holds a {recipe.kind} recipe.")
    if recipe.kind != "generate":
        return recipe
    cost = recipe.cost
    if not args.dry_run:  # the flags themselves are still passed on, and refused without --dry-run
        cost = cost.model_copy(update={field: None for _, _, field in _ESTIMATE_FIELDS})
    return recipe.model_copy(update={"cost": cost.model_copy(update=given)})


def run_diff(args: argparse.Namespace) -> int:
    from orca_math.recipes import diff_recipes, load_recipes
    from orca_math.recipes.record import recipe_file

    file_a, file_b = recipe_file(args.a), recipe_file(args.b)
    recipes_a, recipes_b = load_recipes(file_a), load_recipes(file_b)
    rows = []
    for index in range(max(len(recipes_a), len(recipes_b))):
        if index >= len(recipes_a) or index >= len(recipes_b):
            rows.append((f"recipe {index + 1}", recipes_a[index].kind if index < len(recipes_a) else None,
                         recipes_b[index].kind if index < len(recipes_b) else None))
            continue
        prefix = f"{recipes_a[index].kind}." if max(len(recipes_a), len(recipes_b)) > 1 else ""
        rows += [(prefix + key, left, right) for key, left, right in diff_recipes(recipes_a[index], recipes_b[index])]
    if not rows:
        print(f"no differences between {file_a} and {file_b}")
        return 0
    print(f"--- {file_a}\n+++ {file_b}")
    for key, left, right in rows:
        print(f"{key}: {_shown(left)} -> {_shown(right)}")
    return 1


def _shown(value) -> str:
    import json

    return json.dumps(value)


__all__ = ["RECIPE_COMMANDS", "add_parser", "add_save_recipe_option", "record_run", "run_recipe",
           "save_recipe_from_args"]
