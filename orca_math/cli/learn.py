"""`orca-math learn`: the whole Orca-Math training loop (SFT, then sample/label/KTO or DPO iterations).

The loop's steps are also commands of their own: `orca-math sample` and `preferences`
(orca_math.cli.sample) and `orca-math train` (orca_math.cli.train). See docs/learning.md for the
loop and docs/training.md for the 8-GPU Mistral-7B commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orca_math.cli.arguments import open_share, positive_int
from orca_math.cli.learn_options import (
    add_data_options,
    add_grading_options,
    add_overwrite,
    add_sampling_options,
    check_out,
    grading_from_args,
    problems_from_args,
    user_error,
)
from orca_math.cli.outcome import exit_status
from orca_math.cli.scale_options import add_executor_options, executor_from_args
from orca_math.cli.train import add_preset_options, preset_from_args

#: Calls in flight for a vLLM sampler: the engine batches them, so more in flight is more throughput.
BATCHED_CONCURRENCY = 256


def add_parser(subparsers) -> None:
    _add_learn(subparsers)


def _add_learn(subparsers) -> None:
    parser = subparsers.add_parser(
        "learn", help="run the whole Orca-Math loop: SFT, then sample/label/KTO (or DPO) iterations",
        description="Iteration 1 fine-tunes MODEL on DATA (SFT -> M1); each later iteration samples K responses per "
        "problem from the last model, labels them against the teacher's solutions, builds preference data and "
        "trains with KTO or DPO (-> M2, M3). After each iteration the model is evaluated (a held-out share of DATA "
        "by default) and OUT/iterations.md shows accuracy per iteration. Every step is resumable: rerun the same "
        "command to continue. Runs in one process (CPU or one GPU); for 8 GPUs run the steps with `orca-math "
        "train/sample/preferences` (docs/training.md).",
    )
    parser.add_argument("--model", required=True, metavar="PATH", help="the base model folder (or Hub id)")
    add_data_options(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="the loop's folder")
    parser.add_argument("--iterations", type=positive_int, default=3, help="iterations, SFT included (default 3, the paper's)")
    parser.add_argument("--method", choices=["kto", "dpo"], default="kto", help="preference method (default kto, the paper's best)")
    add_preset_options(parser)
    add_sampling_options(parser)
    parser.add_argument("--curate", choices=["uniform", "prop2diff"], default="uniform",
                        help="how the K-per-problem sampling budget is spent: uniform (K each, the paper's) or prop2diff "
                        "(in proportion to each problem's fail rate, its pass_rate column from generate --student)")
    add_grading_options(parser)
    evaluation = parser.add_mutually_exclusive_group()
    evaluation.add_argument("--holdout", type=open_share, default=None, metavar="SHARE",
                            help="hold out this share of DATA (never trained on) and score greedy answers against the "
                            "teacher's final answers (default 0.1)")
    evaluation.add_argument("--eval-benchmarks", default=None, metavar="NAMES",
                            help="evaluate on these benchmarks instead (comma-separated, e.g. gsm8k,svamp)")
    evaluation.add_argument("--no-eval", action="store_true", help="skip evaluation")
    parser.add_argument("--eval-limit", type=positive_int, default=None, metavar="N", help="first N items of each benchmark")
    parser.add_argument("--benchmarks-dir", default=None, metavar="DIR", help="local benchmark copies (default: $ORCA_MATH_BENCHMARKS_DIR, else the Hub)")
    parser.add_argument("--sampler", choices=["auto", "vllm", "serve", "hf"], default="auto",
                        help="what samples and evaluates each checkpoint: vllm (vLLM's batched engine in this process), "
                        "serve (`vllm serve` on a local port for the step, for several GPUs), hf (transformers, one "
                        "generation at a time); auto: vllm when it is installed and a GPU is present, else hf")
    parser.add_argument("--concurrency", type=positive_int, default=None, metavar="N",
                        help="samples and gradings in flight at once (default 8; 256 with a vLLM sampler, which batches them)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_overwrite(parser)
    add_executor_options(parser)
    parser.set_defaults(handler=run_learn)


def run_learn(args: argparse.Namespace) -> int:
    from orca_math.learn.loop import IterativeLearner, iterations_table

    check_out(args, "learn", inputs=[args.data, args.model])
    if args.eval_limit is not None and not args.eval_benchmarks:
        raise user_error(ValueError("--eval-limit needs --eval-benchmarks."))
    evaluation: Any = 0.1 if args.holdout is None else args.holdout
    if args.eval_benchmarks:
        evaluation = (args.eval_benchmarks, args.eval_limit)
    elif args.no_eval:
        evaluation = None
    sampler = CheckpointSampler(args)
    concurrency = args.concurrency or (BATCHED_CONCURRENCY if sampler.batched else 8)
    try:
        learner = IterativeLearner(
            args.model, _data_source(args), out=args.out, preset=preset_from_args(args.preset, args.overrides),
            preference_method=args.method, iterations=args.iterations, samples_per_problem=args.k,
            grading=grading_from_args(args), sampler_model_factory=sampler, eval=evaluation, temperature=args.temperature,
            top_p=args.top_p, max_tokens=args.max_tokens, concurrency=concurrency,
            benchmarks_dir=args.benchmarks_dir, progress=not args.no_progress, executor=executor_from_args(args),
            sampling_policy=args.curate,
        )
        results = learner.run_sync()
    except ValueError as exc:
        raise user_error(exc) from None
    print(iterations_table(results))
    print(f"\n{Path(args.out) / 'iterations.md'}; per-step files in {Path(args.out)}/iteration-*/")
    failed = sum((r.details.get(step) or {}).get("failed", 0) for r in results for step in ("samples", "labels"))
    where = f"{Path(args.out)}/iteration-*/samples/failures.jsonl and labels/label_failures.jsonl"
    return exit_status(failed, "samples or labels", where, retried=False)  # a finished step is not redone


class CheckpointSampler:
    """The loop's `sampler_model_factory`: what `--sampler`, `--prompt-format` and `--max-tokens` make of a checkpoint.

    Called with a checkpoint folder, it returns the sampler: a spec the loop loads in the Orca
    format, or a client built in `--prompt-format chat` (on ``--executor ray``, a stand-in for a
    checkpoint only the workers load). `batched` says whether the sampler is a vLLM one.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.batched = self.spec(Path(args.model)).startswith("vllm")

    def spec(self, checkpoint: Path) -> str:
        from orca_math.learn.loop import default_sampler

        if self.args.sampler == "serve":
            return f"vllm-serve:{checkpoint}"
        return str(default_sampler(checkpoint, engine=self.args.sampler))

    def __call__(self, checkpoint: Path) -> Any:
        from orca_math.cli.scale_options import load_model_for

        args, chosen = self.args, self.spec(checkpoint)
        print(f"sampling and evaluating {checkpoint} with {chosen.split(':', 1)[0]} (--sampler {args.sampler})")
        if args.prompt_format in (None, "orca"):  # None: the flag's default, orca
            return chosen  # the loop loads hf: and vllm: specs in the Orca format they were trained on
        if chosen.startswith(("hf:", "vllm:")):
            return load_model_for(chosen, args, prompt_format=args.prompt_format, max_new_tokens=args.max_tokens)
        return load_model_for(chosen, args)  # served: the server applies the checkpoint's own chat template


def _data_source(args: argparse.Namespace) -> Any:
    plain = args.limit is None and not _seed_options_changed(args)
    return args.data if plain else problems_from_args(args)


def _seed_options_changed(args: argparse.Namespace) -> bool:
    from orca_math.cli.common import seed_options_from_args

    return bool(seed_options_from_args(args))


__all__ = ["CheckpointSampler", "add_parser", "preset_from_args", "run_learn"]
