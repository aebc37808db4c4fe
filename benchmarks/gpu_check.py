"""Speed and memory of the SFT, DPO and KTO adapters on the Mistral-7B architecture, with random weights.

Usage:
    python benchmarks/gpu_check.py [--steps 3] [--out gpu_check.json]      # one CUDA GPU
    python benchmarks/gpu_check.py --tiny [--steps 2] [--out tiny.json]     # CPU, a toy-size model (CI)

Nothing is downloaded: the model is built from `MistralConfig()` defaults (7.2B parameters) with random
weights in bfloat16, and a byte-level BPE tokenizer is trained in-process on the synthetic problems
it trains on. Then each adapter (`get_trainer("sft"|"dpo"|"kto")`, exactly as a user calls it) trains
`--steps` optimizer steps with the `mistral-7b` preset and its LoRA settings (`use_lora=True`: rank 16
on every attention and MLP projection, gradient checkpointing, bf16, 4 x 4 sequences per step), on
rows built by `sft_dataset` and `build_preferences`. Every sequence is longer than the preset's
`max_length`, so each is cut to exactly that length: the memory figure is the worst case the preset
allows. Accuracy means nothing here; speed and fit do.

Per method it reports the training loop's time per optimizer step (TRL's `train_runtime` / steps, so
the first step's warm-up is included), tokens per second (the tokens TRL reports it trained on, prompt +
completion after truncation; DPO counts chosen and rejected; KTO's extra KL forward pass is not counted), the peak GPU memory
allocated and reserved, the wall time including loading the model and saving the merged checkpoint,
and the losses. `--tiny` does the same on CPU with a 2-layer model and the same preset, changed only where a CPU
needs it (fp32, 256-token sequences, 2 sequences per step), in about a minute. Output: a table on stdout and the same numbers as JSON in `--out`. No assertions beyond the
adapters' own (a non-finite loss stops the run).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("sft", "dpo", "kto")
NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena"]
THINGS = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "shells", "cards"]


def problem(rng: random.Random, index: int, words: int) -> tuple[str, str, str]:
    """A question, a correct step-by-step answer of at least `words` words, and a wrong one."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a, b, c = rng.randint(2, 90), rng.randint(2, 90), rng.randint(2, 9)
    question = (
        f"Problem {index}: {name} has {a} {thing} and buys {c} packs of {b} {thing} each. "
        f"How many {thing} does {name} have now?"
    )
    steps: list[str] = []
    total = a
    while sum(len(step.split()) for step in steps) < words:
        total += b
        steps.append(f"After one more pack of {b} {thing}, {name} has {total - b} + {b} = {total} {thing}.")
    answer = " ".join(steps) + f" Final answer: {a + b * c}"
    wrong = " ".join(steps) + f" Final answer: {a + b * c + 7}"  # as long as the right one: the worst case
    return question, answer, wrong


def build_tokenizer(texts: list[str], vocab_size: int, folder: Path):
    """A byte-level BPE tokenizer trained on `texts`, saved to `folder` as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    wrapped.save_pretrained(folder)
    return wrapped


def build_model(folder: Path, tokenizer, *, tiny: bool, device: str) -> int:
    """Save a randomly initialised Mistral (MistralConfig() defaults, or a toy size) to `folder`."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    special = {
        "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }  # fmt: skip
    if tiny:
        config = MistralConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=len(tokenizer), **special,
        )  # fmt: skip
        dtype = torch.float32
    else:
        config = MistralConfig(**special)  # the defaults are Mistral-7B-v0.1's shape; vocab 32,000
        dtype = torch.bfloat16
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):  # 7B random weights initialise in seconds on the GPU itself
            model = MistralForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return parameters


def datasets_for(rows: int, words: int, seed: int = 0):
    """SFT, DPO and KTO datasets built the way users build them: `sft_dataset` and `build_preferences`."""
    from orca_math.learn import build_preferences, sft_dataset
    from orca_math.records import Attempt

    rng = random.Random(seed)
    problems = [problem(rng, index, words) for index in range(rows)]
    sft = sft_dataset({"question": q, "answer": a} for q, a, _ in problems)
    attempts = []
    for index, (question, answer, wrong) in enumerate(problems):
        for sample, correct in enumerate((True, False)):
            attempts.append(Attempt(
                problem_id=f"p{index}", sample_index=sample, question=question,
                response=answer if correct else wrong, reference=answer, label=correct, method="exact",
            ))  # fmt: skip
    data = build_preferences(attempts)
    return {"sft": sft, "dpo": data.dpo.select(range(rows)), "kto": data.kto.select(range(rows))}, problems


def tokens_per_step(dataset, kind: str, tokenizer, max_length: int, rows_per_step: int) -> int:
    """Prompt + completion tokens of one optimizer step, each sequence cut to `max_length`."""
    def length(prompt: str, completion: str) -> int:
        return min(max_length, len(tokenizer(prompt + completion)["input_ids"]) + 1)

    total = 0
    for row in dataset.select(range(rows_per_step)):
        if kind == "dpo":
            total += length(row["prompt"], row["chosen"]) + length(row["prompt"], row["rejected"])
        else:
            total += length(row["prompt"], row["completion"])
    return total


def run_method(kind: str, dataset, model_dir: Path, work: Path, preset, tokenizer, cuda: bool) -> dict:
    import torch

    from orca_math.learn import get_trainer

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    adapter = get_trainer(kind)
    output = work / f"out-{kind}"
    started = time.perf_counter()
    adapter.train(dataset, output, preset, model=str(model_dir))
    wall = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)  # a merged 7B checkpoint is 14.5 GB; the disk holds few
    summary = next(entry for entry in reversed(adapter.log_history) if "train_runtime" in entry)
    steps = preset.max_steps
    step_s = summary["train_runtime"] / steps
    rows_per_step = preset.per_device_train_batch_size * preset.gradient_accumulation_steps
    # TRL counts the tokens it trained on (`num_tokens`, cumulative); older TRL: count them ourselves.
    counted = [entry["num_tokens"] for entry in adapter.log_history if "num_tokens" in entry]
    if counted:
        tokens = round(float(counted[-1]) / steps)
    else:
        tokens = tokens_per_step(dataset, kind, tokenizer, preset.max_length, rows_per_step)
    result = {
        "method": kind,
        "steps": steps,
        "sequences_per_step": rows_per_step * (2 if kind == "dpo" else 1),
        "tokens_per_step": tokens,
        "step_s": round(step_s, 3),
        "tokens_per_s": round(tokens / step_s, 1),
        "train_runtime_s": round(summary["train_runtime"], 2),
        "wall_s_with_load_and_save": round(wall, 2),
        "losses": [round(entry["loss"], 4) for entry in adapter.log_history if "loss" in entry],
        "peak_gpu_allocated_gib": None,
        "peak_gpu_reserved_gib": None,
    }
    if cuda:
        result["peak_gpu_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_gpu_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    return result


def environment(cuda: bool) -> dict:
    import peft
    import torch
    import transformers
    import trl

    info = {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "trl": trl.__version__, "peft": peft.__version__, "device": "cpu",
    }  # fmt: skip
    if cuda:
        info["device"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def print_table(report: dict) -> None:
    header = ("method", "step s", "tokens/s", "tokens/step", "peak alloc GiB", "peak reserved GiB", "wall s", "losses")
    rows = [
        (r["method"], r["step_s"], r["tokens_per_s"], r["tokens_per_step"], r["peak_gpu_allocated_gib"],
         r["peak_gpu_reserved_gib"], r["wall_s_with_load_and_save"], " ".join(str(x) for x in r["losses"]))
        for r in report["methods"]
    ]  # fmt: skip
    widths = [max(len(str(row[i])) for row in [*rows, header]) for i in range(len(header))]
    print(f"{report['model']['name']}: {report['model']['parameters']:,} parameters, {report['environment']['device']}")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"peak RSS of this process: {report['peak_rss_mib']} MiB; total {report['total_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU, a 2-layer toy Mistral, fp32, 256-token sequences")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per method (default 3; --tiny 2)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of sft,dpo,kto")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="where to write the JSON")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        parser.error(f"--methods: use names from sft, dpo, kto (got {args.methods!r})")
    steps = args.steps if args.steps is not None else (2 if args.tiny else 3)
    if steps < 1:
        parser.error(f"--steps must be at least 1, not {steps}")

    import datasets
    import torch

    from orca_math.learn import get_preset

    datasets.disable_progress_bars()

    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        print("gpu_check.py: no CUDA GPU is visible to torch; run with --tiny for the CPU check.", file=sys.stderr)
        return 2
    # The mistral-7b preset with its LoRA settings either way; at toy size only what a CPU needs changes
    # (fp32, shorter sequences, smaller batches), so CI walks the GPU run's code path.
    toy = {"bf16": False, "model_dtype": "float32", "per_device_train_batch_size": 2,
           "gradient_accumulation_steps": 1, "max_length": 256} if args.tiny else {}  # fmt: skip
    if args.tiny:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    preset = get_preset("mistral-7b", use_lora=True, max_steps=steps, logging_steps=1, **toy)
    started = time.perf_counter()
    scratch = args.work_dir or Path(tempfile.mkdtemp(prefix="orca-math-gpu-check-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        rows = steps * preset.per_device_train_batch_size * preset.gradient_accumulation_steps
        # Enough words that every sequence passes max_length, whatever the tokenizer merges.
        data, problems = datasets_for(rows, words=preset.max_length + 50)
        model_dir = scratch / "model"
        texts = [text for triple in problems for text in triple]
        tokenizer = build_tokenizer(texts, 1000 if args.tiny else 32000, model_dir)
        parameters = build_model(model_dir, tokenizer, tiny=args.tiny, device="cuda" if cuda else "cpu")
        if cuda:
            torch.cuda.empty_cache()
        report = {
            "model": {"name": "tiny Mistral (2 layers)" if args.tiny else "Mistral-7B shape, random weights",
                      "parameters": parameters, "dtype": preset.model_dtype},
            "preset": {key: getattr(preset, key) for key in (
                "name", "use_lora", "lora_r", "lora_alpha", "gradient_checkpointing", "bf16",
                "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "max_steps")},
            "environment": environment(cuda),
            "methods": [run_method(kind, data[kind], model_dir, scratch, preset, tokenizer, cuda) for kind in methods],
        }  # fmt: skip
        report["preset"]["lora_target_modules"] = list(preset.lora_target_modules)
    finally:
        if args.work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["total_s"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
