"""`orca-math solve` and `orca-math generate`: the teacher alone, or the whole generation pipeline."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from orca_math.cli.arguments import positive_int
from orca_math.cli.batch_options import add_batch_options, batch_options_from_args, mode_from_args
from orca_math.cli.common import (
    add_cost_options,
    add_model_options,
    add_seed_options,
    completion_tokens_from_args,
    engine_from_args,
    model_from_args,
    prices_from_args,
    seed_options_from_args,
)
from orca_math.cli.curation_options import (
    add_curation_options,
    check_curation,
    check_pilot,
    difficulty_line,
    run_pilot_from_args,
)
from orca_math.cli.outcome import EXIT_ITEMS_FAILED, counted, exit_status
from orca_math.cli.paths import (
    LAYOUTS,
    add_overwrite_option,
    check_not_input,
    check_output_file,
    check_output_folder,
)
from orca_math.cli.scale_options import add_executor_options, executor_from_args

#: Above this many hardening rounds the command warns: every round adds two calls per problem.
MANY_ROUNDS = 5

LOCAL_MODEL_NOTE = (
    "note: the embedded local model (SmolLM2-135M) only shows the pipeline working offline; its answers are often wrong. "
    "For real data use a capable teacher, e.g. --model openai:gpt-4o or --model http://HOST:8000/v1 (vLLM)."
)


def add_parser(subparsers) -> None:
    solve = subparsers.add_parser(
        "solve",
        help="have the Teacher solve seed problems",
        description="Solve seed problems with the Teacher agent, with bounded concurrency and a progress bar. "
        "Rerunning the same command resumes: finished problems are skipped. solve does NOT verify answers unless "
        "--verify program|majority is given (problems without a known answer have no target to check); seeds with "
        "answers are then checked against them.",
    )
    solve.add_argument("--seeds", required=True, help="seed problems: .jsonl, .csv, .parquet, a saved dataset folder, or an HF dataset name")
    solve.add_argument("--out", required=True, help="output file: .jsonl or .parquet (the run folder goes next to it, as <out>.run/)")
    add_seed_options(solve)
    add_model_options(solve)
    add_cost_options(solve)
    solve.add_argument("--solutions", type=positive_int, default=1, metavar="K", help="solutions per problem (self-consistency); default 1")
    add_verify_options(solve)
    solve.add_argument("--fresh", action="store_true",
                       help="discard an earlier run of the same command instead of resuming it (and replace an existing --out file)")
    add_overwrite_option(solve, "an existing --out file")
    add_executor_options(solve)
    add_batch_options(solve)
    solve.set_defaults(handler=run_solve)

    generate = subparsers.add_parser(
        "generate",
        help="run the whole pipeline: expand, harden, solve, verify, filter",
        description="Turn seed problems into an Orca-Math-style dataset: Ask-Me-Anything expansion, Suggester/Editor "
        "hardening, Teacher solutions, verification and filtering. The run lives in OUT/runs/<key>; rerunning "
        "the same command resumes it.",
    )
    # The flags come from the recipe models, whose import (every recipe section, the benchmark list)
    # is a fifth of a second: added when `generate` parses or shows its help, so `solve` never pays it.
    generate.defer_arguments(_generate_flags)
    generate.set_defaults(handler=run_generate)


def _generate_flags() -> argparse.ArgumentParser:
    """generate's flags, in their --help order."""
    flags = argparse.ArgumentParser(add_help=False)
    # generate's settings are written once, as recipe fields (orca_math.recipes.generate): flag, default,
    # bounds and help come from there, so a flag and its recipe key cannot drift apart.
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import SeedSection
    from orca_math.recipes.generate import CurationSection, GenerateStages, OutputSection, VerificationSection

    add_recipe_flags(flags, SeedSection, only=("path",))
    flags.add_argument("--out", required=True, help="output folder: dataset/, drops.jsonl, failures.jsonl, summary.json")
    add_seed_options(flags)
    add_model_options(flags)
    add_cost_options(flags)

    add_recipe_flags(flags, GenerateStages, only=("rounds", "keep_rounds", "solutions"))
    add_recipe_flags(flags, VerificationSection)
    add_recipe_flags(flags, GenerateStages, only=("max_answer_chars", "expand", "dedup", "decontaminate",
                                                      "benchmarks_dir"))
    add_recipe_flags(flags, CurationSection, only=("target_rows",))
    add_curation_options(flags)
    add_recipe_flags(flags, OutputSection)
    group = flags.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="fresh", action="store_false", help="resume an earlier run of the same command (default)")
    group.add_argument("--fresh", dest="fresh", action="store_true", help="discard an earlier run of the same command and start again")
    add_overwrite_option(flags, "existing files in --out")
    add_executor_options(flags)
    add_batch_options(flags)
    flags.set_defaults(fresh=False)  # on the actions themselves: the first of a dest's actions gives its default
    return flags


def add_verify_options(parser) -> None:
    """solve's --verify, --keep-unverified and --program-model (generate takes its own from the recipe fields)."""
    parser.add_argument("--verify", choices=["program", "majority"], default=None,
                        help="verify answers: 'program' (a written program must compute the same answer, one extra call "
                        "per problem) or 'majority' (--solutions K >= 2 must mostly agree); default: no verification")
    parser.add_argument("--keep-unverified", action="store_true",
                        help="keep problems whose answer could not be confirmed, marked verified=false, instead of dropping them")
    parser.add_argument("--program-model", metavar="SPEC", default=None,
                        help="with --verify program: a second model that writes the programs, a spec such as "
                        "openai:gpt-4o-mini or http://HOST:8000/v1 (default: the teacher)")


def _verify_stage_options(args: argparse.Namespace) -> tuple[str | None, bool]:
    """The verifier name (None for none) and keep_unverified; majority needs 2 or more solutions."""
    from orca_math.cli.messages import UserError

    verify = None if args.verify in (None, "none") else args.verify
    if verify == "majority" and args.solutions < 2:
        raise UserError("--verify majority needs at least 2 solutions per problem: add --solutions 4 (or another K >= 2).")
    if args.program_model is not None and verify != "program":
        raise UserError("--program-model needs --verify program: only the program check calls a model.")
    return verify, args.keep_unverified


def run_solve(args: argparse.Namespace) -> int:
    from orca_math.data.writers import write_dataset
    from orca_math.files import copy_file
    from orca_math.pipeline import Pipeline, Solve, Verify

    out = Path(args.out)
    if out.suffix not in (".jsonl", ".parquet"):
        from orca_math.cli.messages import UserError

        raise UserError(f"--out must end in .jsonl or .parquet, not {out.name!r}")
    _check_solve_out(out, args)
    model = _model(args)
    verify, keep_unverified = _verify_stage_options(args)
    stages = [Solve(k=args.solutions)] + ([Verify(verify, keep_unverified=keep_unverified, model=args.program_model)]
                                          if verify else [])
    pipeline = Pipeline(stages, model=model, engine=engine_from_args(args),
                        executor=executor_from_args(args), mode=mode_from_args(args), batch=batch_options_from_args(args))
    if args.dry_run:
        return _dry_run(pipeline, args)
    # A .jsonl output is the run's JSON Lines rows as they are: no dataset folder is built for it, so
    # `datasets` is never imported (half a second of CPU, and the same again to write and read back).
    as_jsonl = out.suffix == ".jsonl"
    result = pipeline.run_sync(args.seeds, out=out.with_name(out.name + ".run"), limit=args.limit, fresh=args.fresh,
                               seed_options=seed_options_from_args(args), wait=not args.no_wait,
                               formats=("jsonl",) if as_jsonl else ("hf",), dataset_folder=not as_jsonl)
    if as_jsonl:
        copy_file(result.outputs["jsonl"], out)
    else:
        write_dataset(result.load_dataset(), out, formats=(out.suffix.lstrip("."),))
    stage = result.funnel.stages[0]
    print(result.funnel.render())
    failed = f" ({stage.failed} failed, reasons in {result.outputs['failures']})" if stage.failed else ""
    print(f"\nsolved {stage.outputs} of {counted(stage.inputs, 'problems')}{failed}")
    if verify:
        checked = result.funnel.stages[-1]
        print(f"verified ({verify}, known answers against their targets): {checked.outputs} of {checked.inputs} kept, "
              f"{checked.dropped} dropped as unconfirmed (evidence in {result.outputs['drops']})")
    else:
        print("answers were NOT verified: pass --verify program or --verify majority --solutions K to check them")
    print(f"output: {out}")
    _maybe_note(args)
    return exit_status(stage.failed, "problems", result.outputs["failures"])


def _check_solve_out(out: Path, args: argparse.Namespace) -> None:
    """The output file and its run folder `<out>.run/`, before any model is loaded."""
    from orca_math.cli.messages import UserError

    run_dir = out.with_name(out.name + ".run")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {out} keeps its run folder in {run_dir}, which is a file; move it away or choose another --out.")
    check_not_input(out, [args.seeds])
    check_output_folder(run_dir, LAYOUTS["generate"], overwrite=args.overwrite)
    owned = (run_dir / "runs").is_dir()  # an earlier solve wrote this file from that run folder
    check_output_file(out, owned=owned, overwrite=args.overwrite or args.fresh, replace_hint="--overwrite (or --fresh)")


def run_generate(args: argparse.Namespace) -> int:
    """Resolve the flags into a `GenerateRecipe` and run `Pipeline(recipe=...)`: the one route of a generation,
    from flags, from `orca-math run RECIPE` (which parses the recipe's flags) and from Python alike."""
    from orca_math.pipeline import Pipeline
    from orca_math.recipes import recipe_from_args

    check_not_input(args.out, [args.seeds])
    check_output_folder(args.out, LAYOUTS["generate"], overwrite=args.overwrite)
    # Checked by their flags first, so each refusal names the flag the user typed.
    _verify_stage_options(args)
    check_curation(args)
    if args.rounds > MANY_ROUNDS:
        print(f"warning: --rounds {args.rounds} makes {2 * args.rounds} Suggester and Editor calls per problem "
              "(the paper uses 2 rounds); check the cost with --dry-run first.", file=sys.stderr)
    check_pilot(args)
    mode_from_args(args)  # --no-wait needs --batch
    executor_from_args(args)  # --ray-address and --workers need --executor ray
    recipe = recipe_from_args("generate", args)
    model = _model(args)  # the recipe's own model section, as a `ModelRef` the engine builds where calls are made
    pipeline = Pipeline(recipe=recipe, model=model, progress=not args.no_progress)
    with _decontamination_hint():
        if args.pilot:
            return run_pilot_from_args(pipeline, args, recipe.seed_options())
        if args.dry_run:
            estimate = pipeline.estimate(recipe.seeds.path, limit=recipe.seeds.limit, seed_options=recipe.seed_options(),
                                         completion_tokens=dict(recipe.cost.completion_tokens))
            print(estimate.render())
            print(json.dumps(estimate.to_dict()))
            return 0
        result = pipeline.run_sync(out=args.out, fresh=args.fresh, wait=not args.no_wait)
    print(result.funnel.render())
    print(verification_line(result.funnel))
    print(difficulty_line(result.outputs["summary"]) or "", end="")
    print(f"\n{'resumed' if result.resumed else 'new'} run {result.run_key} in {result.run_dir}")
    print(f"dataset: {result.dataset_path}  (datasets.load_from_disk)")
    for name in ("drops", "failures", "summary"):
        print(f"{name}: {result.outputs[name]}")
    _maybe_note(args)
    status = exit_status(sum(stage.failed for stage in result.funnel.stages), "items", result.outputs["failures"])
    target = result.extra.get("target")
    if target is not None:
        print(target.message(), file=sys.stdout if target.met else sys.stderr)
        if not target.met:
            status = max(status, EXIT_ITEMS_FAILED)  # finished, but short of what was asked
    return status


def verification_line(funnel) -> str:
    """One line on what verification kept and dropped; with no row left, it says so and why."""
    verify = next((s for s in funnel.stages if s.name == "verify"), None)
    if verify is None:
        return "verification: no verify stage in this run"
    dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(verify.drops.items())) or "none"
    line = f"verification: {verify.outputs} of {verify.inputs} solved problems kept; dropped: {dropped}"
    if funnel.final_rows == 0 and verify.inputs == 0:
        line = "no verified row: no problem reached verification (every one failed or was dropped before; see above)"
    elif funnel.final_rows == 0:
        line = (f"no verified row: of {verify.inputs} solved problems none could be verified (dropped: {dropped}); "
                "no row was kept rather than an unverified one")
    return line


@contextlib.contextmanager
def _decontamination_hint():
    """Benchmark test sets that can't be loaded: say how to point at local copies, or to skip the check."""
    from orca_math.cli.messages import UserError
    from orca_math.data.benchmarks import HubUnavailableError

    try:
        yield
    except HubUnavailableError as exc:
        raise UserError(f"{exc.cli_message.rstrip('.')}, or pass --no-decontaminate to skip the check against "
                        "benchmark test sets.") from None


def _model(args: argparse.Namespace):
    """The `ModelRef` of ``--model``, checked before any folder is made: a run (a pilot too) needs its key and
    server now; a dry run calls nothing, so it needs neither. A budget needs the model's price."""
    model = model_from_args(args)
    if not args.dry_run or getattr(args, "pilot", None):
        from orca_math.models.worker_loaded import check_model

        check_model(model)  # built and closed: the engine builds the client its calls go through
    _check_budget(args, model)
    return model


def _check_budget(args: argparse.Namespace, model) -> None:
    """A budget is only as good as the model's price: refuse it before any call when none is known."""
    if args.budget_usd is None:
        return
    from orca_math.cli.messages import UserError
    from orca_math.engine.costs import PriceTable
    from orca_math.models.worker_loaded import model_name

    name = model_name(model)
    if PriceTable(prices_from_args(args)).price(name) is None:
        raise UserError(f"--budget-usd needs the price of model {name!r}: add --price {name}=IN,OUT "
                        "(USD per million input and output tokens).")


def _dry_run(pipeline, args: argparse.Namespace) -> int:
    estimate = pipeline.estimate(args.seeds, limit=args.limit, seed_options=seed_options_from_args(args), completion_tokens=completion_tokens_from_args(args))
    print(estimate.render())
    print(json.dumps(estimate.to_dict()))
    return 0


def _maybe_note(args: argparse.Namespace) -> None:
    if str(args.model).startswith("local"):
        print(LOCAL_MODEL_NOTE)
