"""`orca-math sample` and `orca-math preferences`: iteration 2's sampling, labelling and preference data.

See docs/learning.md for the loop and docs/training.md for the 8-GPU Mistral-7B commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orca_math.cli.arguments import non_negative_int, positive_int
from orca_math.cli.batch_options import add_batch_options, batch_calls_from_args
from orca_math.cli.common import add_timeout_option
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
from orca_math.cli.outcome import counted, exit_status
from orca_math.cli.scale_options import add_executor_options, executor_from_args
from orca_math.files import read_json, write_json


def add_parser(subparsers) -> None:
    _add_sample(subparsers)
    _add_preferences(subparsers)


def _add_sample(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample", help="sample k responses per problem from a student model",
        description="Sample K responses per problem from a student model (iteration 2 of Orca-Math samples 4 from M1 "
        "at temperature 0.7, top_p 0.95) and write OUT/attempts.jsonl (one Attempt row per sample), "
        "OUT/failures.jsonl and OUT/summary.json. Each sample is checkpointed in OUT/runs/<key>; rerunning the "
        "same command resumes and retries failed samples; the exit status is 1 when some samples failed. "
        "See docs/learning.md.",
    )
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="the student: 'hf:<checkpoint>' (local transformers, Orca prompt format), an "
                        "OpenAI-compatible server URL such as a vLLM server (http://127.0.0.1:8000/v1), or 'openai:<model>'")
    parser.add_argument("--model-name", default=None, help="model name to request from a server URL (default: the first one it serves)")
    add_data_options(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_sampling_options(parser)
    parser.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="samples in flight at once (default 8)")
    parser.add_argument("--fresh", action="store_true", help="discard an earlier run of the same command instead of resuming it")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_timeout_option(parser)
    add_executor_options(parser)
    add_batch_options(parser)
    add_overwrite(parser)
    parser.set_defaults(handler=run_sample)


def _add_preferences(subparsers) -> None:
    parser = subparsers.add_parser(
        "preferences", help="label sampled attempts and build DPO, KTO and SFT datasets",
        description="Label the attempts against the teacher's solutions when they have no labels yet (in OUT/labels, "
        "resumable), then build the Orca-Math preference data: positives are the teacher's solution plus the "
        "correct responses, negatives the wrong ones (borrowed from other problems when a problem has none). "
        "Writes OUT/dpo, OUT/kto and OUT/sft (datasets save_to_disk folders, TRL formats) and OUT/stats.json, and "
        "prints the stats. `orca-math train kto --data OUT` then reads OUT/kto.",
    )
    parser.add_argument("--attempts", required=True, metavar="FILE", help="a JSONL file of Attempt rows (OUT/attempts.jsonl of `orca-math sample`)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_grading_options(parser)
    parser.add_argument("--positives", choices=["teacher+student", "teacher", "student"], default="teacher+student",
                        help="what counts as a positive (default teacher+student, the paper's; 'teacher' is its ablation)")
    parser.add_argument("--negatives", choices=["student", "none"], default="student",
                        help="student: the wrong responses (default); none: no negatives (no DPO rows)")
    parser.add_argument("--borrow", type=non_negative_int, default=4, metavar="N",
                        help="when a problem has no wrong response, borrow one from each of N other problems (default 4, the paper's)")
    parser.add_argument("--max-pairs", type=positive_int, default=None, metavar="N", help="cap DPO pairs per problem (default: no cap)")
    parser.add_argument("--seed", type=int, default=0, help="seed for borrowing and capping (default 0)")
    parser.add_argument("--style", choices=["standard", "conversational"], default="standard",
                        help="standard: the Orca USER:/ASSISTANT: text (default); conversational: chat messages")
    parser.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="gradings in flight at once (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_overwrite(parser)
    parser.set_defaults(handler=run_preferences)


def run_sample(args: argparse.Namespace) -> int:
    from orca_math._sync import run_sync
    from orca_math.learn.sampling import check_sampling, sample_responses

    check_out(args, "sample", inputs=[args.data])
    try:
        check_sampling(k=args.k, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                       concurrency=args.concurrency)
    except ValueError as exc:
        raise user_error(exc) from None
    problems = problems_from_args(args)
    model = _student(args.model, args)
    try:
        path = run_sync(sample_responses(model, problems, k=args.k, temperature=args.temperature, top_p=args.top_p,
                                         max_tokens=args.max_tokens, out=args.out, concurrency=args.concurrency,
                                         fresh=args.fresh, progress=not args.no_progress, timeout=args.timeout,
                                         executor=executor_from_args(args), calls=batch_calls_from_args(args, args.out)))
    except ValueError as exc:
        raise user_error(exc) from None
    counts = read_json(Path(args.out) / "summary.json")["counts"]
    print(f"{counts['ok']} of {counted(counts['samples'], 'samples')} in {path} ({counts['failed']} failed, {counts['reused']} reused)")
    return exit_status(counts["failed"], "samples", Path(args.out) / "failures.jsonl")


def run_preferences(args: argparse.Namespace) -> int:
    from orca_math._sync import run_sync
    from orca_math.learn.labelling import label_attempts, read_attempts
    from orca_math.learn.preferences import PreferenceOptions, build_preferences

    out = check_out(args, "preferences", inputs=[args.attempts])
    label_failures = 0
    try:
        options = PreferenceOptions(positives=args.positives, negatives=args.negatives,
                                    borrow_negatives_from=args.borrow, max_pairs_per_problem=args.max_pairs, seed=args.seed)
        attempts = read_attempts(args.attempts)
        if any(a.label is None for a in attempts):
            grading = grading_from_args(args)
            path = run_sync(label_attempts(attempts, grading=grading, out=out / "labels", concurrency=args.concurrency,
                                           progress=not args.no_progress))
            labelling = read_json(out / "labels" / "summary.json")["counts"]
            print(f"labelled {labelling['labelled']} attempts by {labelling['by_method']}: {labelling['correct']} correct, "
                  f"{labelling['incorrect']} incorrect, {labelling['failed']} failed (see {out / 'labels'})")
            attempts = read_attempts(path)
            label_failures = labelling["failed"]
        data = build_preferences(attempts, options, style=args.style)
    except ValueError as exc:
        raise user_error(exc) from None
    for kind in ("dpo", "kto", "sft"):
        getattr(data, kind).save_to_disk(str(out / kind))
    stats = data.stats.to_dict()
    write_json(out / "stats.json", stats)
    width = max(map(len, stats))
    for name, value in stats.items():
        print(f"{name:<{width}}  {round(value, 4) if isinstance(value, float) else value}")
    print(f"datasets: {out / 'dpo'} ({len(data.dpo)} rows), {out / 'kto'} ({len(data.kto)}), {out / 'sft'} ({len(data.sft)})")
    return exit_status(label_failures, "gradings", out / "labels" / "label_failures.jsonl")


#: Specs that name a checkpoint this process (or a Ray worker) loads, and renders the prompt for.
_CHECKPOINT_SPECS = ("hf:", "vllm:")


def student_options(spec: str, args: argparse.Namespace) -> dict:
    """The `load_model` options `sample`'s flags give the student `spec`; sampling flags are not among them.

    ``--temperature``, ``--top-p`` and ``--max-tokens`` travel with every request (the sample stage's
    ``extra_create_args``), whatever the spec; load options are only what the spec's client takes:
    ``hf:`` and ``vllm:`` a prompt format and a default reply budget, a server URL a model name.

    Raises:
        UserError: a flag that does not apply to this kind of spec.
    """
    from orca_math.learn.sampling import checkpoint_options

    prompt_format = getattr(args, "prompt_format", None)
    model_name = getattr(args, "model_name", None)
    if spec.startswith(_CHECKPOINT_SPECS):
        if model_name:
            raise user_error(ValueError(f"--model-name names a model on a server URL; {spec.split(':')[0]}: loads the "
                                        "checkpoint it names, so drop --model-name."))
        return {**checkpoint_options(spec, max_tokens=args.max_tokens), "prompt_format": prompt_format or "orca"}
    if prompt_format is not None:
        raise user_error(ValueError("--prompt-format applies to hf: and vllm: students, which render the prompt "
                                    "themselves; a server applies the checkpoint's chat template, so drop --prompt-format."))
    if spec.startswith("vllm-serve:"):
        if model_name:
            raise user_error(ValueError("--model-name names a model on a server URL; vllm-serve: serves the "
                                        "checkpoint it names, so drop --model-name."))
        return {}
    return {"model": model_name} if model_name else {}


def _student(spec: str, args: argparse.Namespace):
    """The student as a `ModelRef`: the engine (or each Ray worker) builds its client where it samples."""
    from orca_math.models import ModelRef

    return ModelRef(spec, student_options(spec, args))


__all__ = ["add_parser", "run_preferences", "run_sample", "student_options"]
