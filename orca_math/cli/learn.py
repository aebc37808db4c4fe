"""`orca-math sample`, `preferences`, `train` and `learn`: the Orca-Math training loop, step by step or whole.

See docs/learning.md for the loop and docs/training.md for the 8-GPU Mistral-7B commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orca_math.cli.arguments import non_negative_float, non_negative_int, open_share, positive_int, top_p
from orca_math.cli.outcome import exit_status


def add_parser(subparsers) -> None:
    _add_sample(subparsers)
    _add_preferences(subparsers)
    _add_train(subparsers)
    _add_learn(subparsers)


# --------------------------------------------------------------------------- parsers


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    from orca_math.cli.common import add_seed_options

    parser.add_argument("--data", required=True, metavar="DIR_OR_FILE",
                        help="problems with the teacher's solutions (question/answer columns): .jsonl, .json, .csv, "
                        ".parquet, a save_to_disk folder, or an HF dataset name")
    add_seed_options(parser)


def _add_sampling_options(parser: argparse.ArgumentParser, *, k_flag: str = "--k") -> None:
    parser.add_argument(k_flag, "--samples", dest="k", type=positive_int, default=4, metavar="K",
                        help="responses sampled per problem (default 4, as in the paper)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.7, help="sampling temperature (default 0.7, the paper's)")
    parser.add_argument("--top-p", type=top_p, default=0.95, help="nucleus sampling top_p (default 0.95, the paper's)")
    parser.add_argument("--max-tokens", type=positive_int, default=1024, help="reply token limit per sample (default 1024)")
    parser.add_argument("--prompt-format", choices=["orca", "chat"], default="orca",
                        help="for hf: models only: 'orca' sends USER: {question}\\nASSISTANT: (what our SFT trains on); "
                        "'chat' uses the tokenizer's chat template (default orca)")


def _add_grader_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grader", choices=["exact", "llm", "hybrid"], default="exact",
                        help="how samples are labelled against the teacher's solution: exact (deterministic answer "
                        "checking, no model needed; the default), llm (the Grader agent always, as in the paper), "
                        "hybrid (deterministic where both answers parse, the Grader agent otherwise)")
    parser.add_argument("--grader-model", default=None, metavar="SPEC",
                        help="model spec of the Grader agent, needed for llm and hybrid (use a strong model)")


def _add_preset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["tiny", "mistral-7b"], default="mistral-7b",
                        help="training preset: mistral-7b (one 8-GPU node; see docs/training.md) or tiny (CPU smoke "
                        "runs); default mistral-7b")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a preset field, e.g. --set max_steps=100 --set use_lora=true "
                        "--set lora_target_modules=q_proj,v_proj --set trl_args='{\"save_steps\": 500}'; repeatable")


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    from orca_math.cli.paths import add_overwrite_option

    add_overwrite_option(parser, "existing files in --out")


def _add_sample(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample", help="sample k responses per problem from a student model",
        description="Sample K responses per problem from a student model (iteration 2 of Orca-Math samples 4 from M1 "
        "at temperature 0.7, top_p 0.95) and write OUT/attempts.jsonl (one Attempt row per sample), "
        "OUT/failures.jsonl and OUT/sampling.json. Each sample is checkpointed in OUT/runs/<key>; rerunning the "
        "same command resumes and retries failed samples; the exit status is 1 when some samples failed. "
        "See docs/learning.md.",
    )
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="the student: 'hf:<checkpoint>' (local transformers, Orca prompt format), an "
                        "OpenAI-compatible server URL such as a vLLM server (http://127.0.0.1:8000/v1), or 'openai:<model>'")
    parser.add_argument("--model-name", default=None, help="model name to request from a server URL (default: the first one it serves)")
    _add_data_options(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_sampling_options(parser)
    parser.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="samples in flight at once (default 8)")
    parser.add_argument("--fresh", action="store_true", help="discard an earlier run of the same command instead of resuming it")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_overwrite(parser)
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
    _add_grader_options(parser)
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
    _add_overwrite(parser)
    parser.set_defaults(handler=run_preferences)


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model with SFT, DPO or KTO (TRL)",
        description="Train MODEL on DATA with TRL and save the model and tokenizer in OUT. DATA is a save_to_disk "
        "folder in the trainer's TRL format, or the output folder of `orca-math preferences` (its sft/, dpo/ or kto/ "
        "subfolder is used); for sft it may also be question/answer problems (any file `orca-math sample --data` "
        "reads). Launch with `accelerate launch $(which orca-math) train ...` for several GPUs (docs/training.md).",
    )
    parser.add_argument("kind", choices=["sft", "dpo", "kto"], help="the trainer")
    parser.add_argument("--data", required=True, metavar="DIR_OR_FILE", help="training data (see above)")
    parser.add_argument("--model", required=True, metavar="PATH", help="model folder or Hub id to train")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the trained model and tokenizer are saved")
    parser.add_argument("--ref-model", default=None, metavar="PATH",
                        help="DPO/KTO reference model (default: a frozen copy of --model)")
    _add_preset_options(parser)
    _add_overwrite(parser)
    parser.set_defaults(handler=run_train)


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
    _add_data_options(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="the loop's folder")
    parser.add_argument("--iterations", type=positive_int, default=3, help="iterations, SFT included (default 3, the paper's)")
    parser.add_argument("--method", choices=["kto", "dpo"], default="kto", help="preference method (default kto, the paper's best)")
    _add_preset_options(parser)
    _add_sampling_options(parser)
    _add_grader_options(parser)
    evaluation = parser.add_mutually_exclusive_group()
    evaluation.add_argument("--holdout", type=open_share, default=None, metavar="SHARE",
                            help="hold out this share of DATA (never trained on) and score greedy answers against the "
                            "teacher's final answers (default 0.1)")
    evaluation.add_argument("--eval-benchmarks", default=None, metavar="NAMES",
                            help="evaluate on these benchmarks instead (comma-separated, e.g. gsm8k,svamp)")
    evaluation.add_argument("--no-eval", action="store_true", help="skip evaluation")
    parser.add_argument("--eval-limit", type=positive_int, default=None, metavar="N", help="first N items of each benchmark")
    parser.add_argument("--benchmarks-dir", default=None, metavar="DIR", help="local benchmark copies (default: $ORCA_MATH_BENCHMARKS_DIR, else the Hub)")
    parser.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="samples and gradings in flight at once (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_overwrite(parser)
    parser.set_defaults(handler=run_learn)


# --------------------------------------------------------------------------- handlers


def run_sample(args: argparse.Namespace) -> int:
    from orca_math._sync import run_sync
    from orca_math.learn.sampling import check_sampling, sample_responses

    _check_out(args, "sample", inputs=[args.data])
    try:
        check_sampling(k=args.k, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                       concurrency=args.concurrency)
    except ValueError as exc:
        raise _user_error(exc) from None
    problems = _problems(args)
    model = _student(args.model, args)
    try:
        path = run_sync(sample_responses(model, problems, k=args.k, temperature=args.temperature, top_p=args.top_p,
                                         max_tokens=args.max_tokens, out=args.out, concurrency=args.concurrency,
                                         fresh=args.fresh, progress=not args.no_progress))
    except ValueError as exc:
        raise _user_error(exc) from None
    finally:
        if not isinstance(model, str):
            run_sync(model.close())
    counts = json.loads((Path(args.out) / "sampling.json").read_text(encoding="utf-8"))
    print(f"{counts['ok']} of {counts['samples']} samples in {path} ({counts['failed']} failed, {counts['reused']} reused)")
    return exit_status(counts["failed"], "samples", Path(args.out) / "failures.jsonl")


def run_preferences(args: argparse.Namespace) -> int:
    from orca_math._sync import run_sync
    from orca_math.learn.labelling import label_attempts, read_attempts
    from orca_math.learn.preferences import PreferenceOptions, build_preferences

    out = _check_out(args, "preferences", inputs=[args.attempts])
    label_failures = 0
    try:
        options = PreferenceOptions(positives=args.positives, negatives=args.negatives,
                                    borrow_negatives_from=args.borrow, max_pairs_per_problem=args.max_pairs, seed=args.seed)
        attempts = read_attempts(args.attempts)
        if any(a.label is None for a in attempts):
            grader = _grader(args)
            path = run_sync(label_attempts(attempts, grader=grader, out=out / "labels", concurrency=args.concurrency,
                                           progress=not args.no_progress))
            labelling = json.loads((out / "labels" / "labelling.json").read_text(encoding="utf-8"))
            print(f"labelled {labelling['labelled']} attempts by {labelling['by_method']}: {labelling['correct']} correct, "
                  f"{labelling['incorrect']} incorrect, {labelling['failed']} failed (see {out / 'labels'})")
            attempts = read_attempts(path)
            label_failures = labelling["failed"]
        data = build_preferences(attempts, options, style=args.style)
    except ValueError as exc:
        raise _user_error(exc) from None
    for kind in ("dpo", "kto", "sft"):
        getattr(data, kind).save_to_disk(str(out / kind))
    stats = data.stats.to_dict()
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    width = max(map(len, stats))
    for name, value in stats.items():
        print(f"{name:<{width}}  {round(value, 4) if isinstance(value, float) else value}")
    print(f"datasets: {out / 'dpo'} ({len(data.dpo)} rows), {out / 'kto'} ({len(data.kto)}), {out / 'sft'} ({len(data.sft)})")
    return exit_status(label_failures, "gradings", out / "labels" / "label_failures.jsonl")


def run_train(args: argparse.Namespace) -> int:
    from orca_math.learn.formats import DatasetFormatError
    from orca_math.learn.trainers import get_trainer

    _check_out(args, "train", inputs=[args.data, args.model, args.ref_model])
    preset = preset_from_args(args.preset, args.overrides)
    dataset = _training_data(args.data, args.kind)
    try:
        checkpoint = get_trainer(args.kind).train(dataset, args.out, preset, model=args.model, ref_model=args.ref_model)
    except DatasetFormatError as exc:
        raise _user_error(exc) from None
    print(f"{args.kind.upper()} on {len(dataset)} rows with preset {preset.name}: saved {checkpoint}")
    return 0


def run_learn(args: argparse.Namespace) -> int:
    from orca_math.learn.loop import IterativeLearner, default_sampler, iterations_table

    _check_out(args, "learn", inputs=[args.data, args.model])
    if args.eval_limit is not None and not args.eval_benchmarks:
        raise _user_error(ValueError("--eval-limit needs --eval-benchmarks."))
    evaluation: Any = 0.1 if args.holdout is None else args.holdout
    if args.eval_benchmarks:
        evaluation = (args.eval_benchmarks, args.eval_limit)
    elif args.no_eval:
        evaluation = None
    prompt_format, max_tokens = args.prompt_format, args.max_tokens

    def sampler(checkpoint: Path):
        if prompt_format == "orca":
            return default_sampler(checkpoint, max_new_tokens=max_tokens)
        from orca_math.models import load_model

        return load_model(f"hf:{checkpoint}", prompt_format=prompt_format, max_new_tokens=max_tokens)

    try:
        learner = IterativeLearner(
            args.model, _data_source(args), out=args.out, preset=preset_from_args(args.preset, args.overrides),
            preference_method=args.method, iterations=args.iterations, samples_per_problem=args.k,
            grader=_grader(args), sampler_model_factory=sampler, eval=evaluation, temperature=args.temperature,
            top_p=args.top_p, max_tokens=max_tokens, concurrency=args.concurrency,
            benchmarks_dir=args.benchmarks_dir, progress=not args.no_progress,
        )
        results = learner.run_sync()
    except ValueError as exc:
        raise _user_error(exc) from None
    print(iterations_table(results))
    print(f"\n{Path(args.out) / 'iterations.md'}; per-step files in {Path(args.out)}/iteration-*/")
    failed = sum((r.details.get(step) or {}).get("failed", 0) for r in results for step in ("samples", "labels"))
    where = f"{Path(args.out)}/iteration-*/samples/failures.jsonl and labels/label_failures.jsonl"
    return exit_status(failed, "samples or labels", where, retried=False)  # a finished step is not redone


# --------------------------------------------------------------------------- helpers


def _check_out(args: argparse.Namespace, command: str, *, inputs: list[Any]) -> Path:
    """Check `--out` before any model is loaded: one sentence per problem (see orca_math.cli.paths)."""
    from orca_math.cli.paths import LAYOUTS, check_not_input, check_output_folder

    check_not_input(args.out, inputs)
    return check_output_folder(args.out, LAYOUTS[command], overwrite=args.overwrite)


def preset_from_args(name: str, overrides: list[str]):
    """The named preset with ``FIELD=VALUE`` overrides, each value read as its field's type.

    Raises:
        UserError: an override without '=', an unknown field, or a value of the wrong type.
    """
    from orca_math.learn.presets import get_preset, preset_fields

    defaults = get_preset(name)
    values: dict[str, Any] = {}
    for override in overrides:
        field, sep, raw = override.partition("=")
        field = field.strip()
        if not sep or not field:
            raise _user_error(ValueError(f"--set {override!r}: write FIELD=VALUE, e.g. --set max_steps=10."))
        if field not in preset_fields():
            try:
                get_preset(name, **{field: raw})  # raises the preset's own error, with a suggestion
            except ValueError as exc:
                raise _user_error(exc) from None
        values[field] = _parse_value(field, raw.strip(), getattr(defaults, field))
    try:
        return get_preset(name, **values) if values else defaults
    except (ValueError, TypeError) as exc:
        raise _user_error(exc) from None


def _parse_value(field: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(default, dict):
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ValueError
            return parsed
    except ValueError:
        kind = "a JSON object" if isinstance(default, dict) else type(default).__name__
        raise _user_error(ValueError(f"--set {field}={raw}: {field} takes {kind} (default {default!r}).")) from None
    return raw


def _problems(args: argparse.Namespace) -> list[dict[str, str]]:
    from orca_math.cli.common import seed_options_from_args
    from orca_math.data.seeds import read_seeds

    return [{"id": p.id, "question": p.question, "answer": p.gold_solution}
            for p in read_seeds(args.data, limit=args.limit, require_answers=True, **seed_options_from_args(args))]


def _data_source(args: argparse.Namespace) -> Any:
    plain = args.limit is None and not _seed_options_changed(args)
    return args.data if plain else _problems(args)


def _seed_options_changed(args: argparse.Namespace) -> bool:
    from orca_math.cli.common import seed_options_from_args

    return bool(seed_options_from_args(args))


def _student(spec: str, args: argparse.Namespace):
    from orca_math.models import load_model

    if spec.startswith("hf:"):
        return load_model(spec, prompt_format=args.prompt_format, max_new_tokens=args.max_tokens)
    if args.model_name:
        return load_model(spec, model=args.model_name)
    return spec


def _grader(args: argparse.Namespace):
    from orca_math.grading import AnswerGrader

    if args.grader != "exact" and not args.grader_model:
        raise _user_error(ValueError(f"--grader {args.grader} needs --grader-model SPEC (a strong model, e.g. openai:gpt-4o)."))
    return AnswerGrader(args.grader_model, mode=args.grader) if args.grader != "exact" else AnswerGrader(mode="exact")


def _training_data(source: str, kind: str):
    import datasets

    from orca_math.learn.formats import sft_dataset, validate_format

    path = Path(source)
    if (path / kind).is_dir() and _is_saved_dataset(path / kind):
        path = path / kind  # the output folder of `orca-math preferences`
    if _is_saved_dataset(path):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise _user_error(ValueError(f"{path} holds splits {', '.join(loaded)}; a 'train' split is needed."))
            loaded = loaded["train"]
        dataset = loaded if kind != "sft" or "question" not in loaded.column_names else sft_dataset(loaded)
    elif kind == "sft":
        from orca_math.data.seeds import read_seeds

        dataset = sft_dataset({"question": p.question, "answer": p.gold_solution or ""}
                              for p in read_seeds(source, require_answers=True))
    else:
        raise _user_error(FileNotFoundError(
            f"{source} is not a saved {kind.upper()} dataset nor an `orca-math preferences` folder with {kind}/ inside."))
    try:
        validate_format(dataset, kind)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _user_error(exc) from None
    return dataset


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists())


def _user_error(exc: BaseException):
    from orca_math.cli import UserError, cli_message

    return UserError(cli_message(exc))


__all__ = ["add_parser", "preset_from_args"]
