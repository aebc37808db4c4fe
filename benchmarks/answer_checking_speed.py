"""How many answer verdicts per second orca_math.answers gives on one core (single process).

Workloads:
  plain compare    compare_answers("72", "72")-style: bare integers and decimals
  plain check      check_answer("72", "... Final answer: 72"): a short Teacher-style solution
  gsm8k check      check_answer on the 1,319 GSM8K test solutions (rule "####"), if the offline copy is here
  gsm8k free-form  check_answer on GSM8K-style replies that end in a sentence, no marker
                   ("So she has 12 apples left."), from tests/data/answer_cases.jsonl
  orca student     check_answer on Orca-Math-style student replies (class "orca_student" of that table)
  mixed free-form  check_answer on varied responses: boxed, "The answer is", units, words, %, fractions,
                   times, no-marker closings (no expressions, so no math_verify)
  math_verify      compare_answers on LaTeX/expressions that go through math_verify (for scale only)

With --baseline DIR, a copy of an older orca_math.answers kept in DIR/answers_before (made with
`cp -r orca_math/answers DIR/answers_before` and its imports renamed to `answers_before`) is timed on the
same workloads in the same process, pass for pass in turn, so that machine load hits both alike; the
table then shows the ratio new / baseline.

Run: .venv/bin/python benchmarks/answer_checking_speed.py [--seconds 1.0] [--baseline /tmp/answers_before]
Prints the numbers; asserts nothing (timed assertions do not belong in tests).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orca_math.answers as current

ROOT = Path(__file__).resolve().parents[1]
PLAIN_PAIRS = [("72", "72"), ("18", "17"), ("3.5", "3.50"), ("1250", "1250"), ("0.25", "0.2"), ("-10", "-10")]
PLAIN_RESPONSES = [
    (gold, f"She sold 48/2 = 24 clips in May and {predicted} in all.\nFinal answer: {predicted}")
    for gold, predicted in PLAIN_PAIRS
]
MIXED_RESPONSES = [
    (
        "18",
        "Janet sells 16 - 3 - 4 = 9 eggs at $2 each, so she makes 9 * 2 = $18 every day.\nFinal answer: $18",
    ),
    ("0.75", "The probability is $\\boxed{\\frac{3}{4}}$."),
    ("12", "He had 5 apples and bought 7 more. The answer is 12 apples."),
    ("1500000", "Final answer: 1.5 million dollars"),
    ("42", "Final answer: forty-two"),
    ("50", "So the discount is 50%."),
    ("33.33", "Each gets 100/3 = 33.333... so **Answer:** 33.33"),
    ("3:30 p.m.", "They meet at 15:30."),
    ("2.25", "It takes 2 1/4 hours in total."),
    ("1250", "Step 1: 5 * 250 = <<5*250=1250>>1250\n#### 1,250"),
]
MATH_VERIFY_PAIRS = [("\\frac{\\sqrt{3}}{2}", "sqrt(3)/2"), ("2\\sqrt{2}", "\\sqrt{8}"), ("x^2+2x", "x(x+2)")]


def verdicts_per_second(
    pairs: list[tuple[str, str]], judge: Callable[[str, str], object], seconds: float
) -> float:
    """Loop over `pairs` for about `seconds`; return verdicts per second."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for gold, predicted in pairs:
            judge(gold, predicted)
        count += len(pairs)
    return count / (time.perf_counter() - start)


def gsm8k_pairs() -> list[tuple[str, str]]:
    default = ROOT.parent / "shared/data/benchmarks"
    path = Path(os.environ.get("ORCA_MATH_BENCHMARKS_DIR", default)) / "gsm8k/test.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["answer"].split("####")[-1].strip(), row["answer"]) for row in rows]


def table_pairs(*classes: str) -> list[tuple[str, str]]:
    path = ROOT / "tests/data/answer_cases.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["gold"], row["response"]) for row in rows if row["class"] in classes]


def load_baseline(directory: str | None):
    """The older copy of orca_math.answers kept as `directory`/answers_before, or None without a directory.

    The answer benchmarks share this loader (answer_corpus_report, answer_table_report). A folder without
    that package is refused in one sentence naming --baseline.
    """
    if directory is None:
        return None
    if not (Path(directory) / "answers_before" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {directory}: no answers_before package there (copy orca_math/answers to "
                         f"{directory}/answers_before and rename its imports of orca_math.answers to answers_before).")
    sys.path.insert(0, directory)
    return importlib.import_module("answers_before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each workload and version")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per workload (best is kept)")
    parser.add_argument("--baseline", help="folder holding answers_before, an older copy to compare with")
    args = parser.parse_args()

    versions = [("current", current)]
    baseline = load_baseline(args.baseline)
    if baseline is not None:
        versions.append(("baseline", baseline))
    for _, module in versions:
        module.compare_answers("\\sqrt{2}", "\\sqrt{2}")  # import sympy/math_verify once, outside the timings
    workloads = [
        ("plain compare", PLAIN_PAIRS, "compare_answers"),
        ("plain check", PLAIN_RESPONSES, "check_answer"),
        ("gsm8k check", gsm8k_pairs(), "check_answer"),
        ("gsm8k free-form", table_pairs("closing_sentence"), "check_answer"),
        ("orca student", table_pairs("orca_student"), "check_answer"),
        ("mixed free-form", MIXED_RESPONSES, "check_answer"),
        ("math_verify", MATH_VERIFY_PAIRS, "compare_answers"),
    ]
    header = f"{'workload':<17}{'verdicts/s':>12}{'cold':>10}"
    if baseline is not None:
        header += f"{'baseline':>12}{'ratio':>8}"
    print(header + "  (best of rounds; cold = number cache cleared before each verdict)")
    for name, pairs, function in workloads:
        if not pairs:
            print(f"{name:<17}{'skipped':>12}  (no offline copy)")
            continue
        best = {label: 0.0 for label, _ in versions}
        for _ in range(args.rounds):  # alternate versions so that load spikes hit both
            for label, module in versions:
                rate = verdicts_per_second(pairs, getattr(module, function), args.seconds)
                best[label] = max(best[label], rate)
        line = f"{name:<17}{best['current']:>12,.0f}"
        if name != "math_verify":  # math_verify keeps caches of its own; a cold figure would mislead
            line += f"{_cold(pairs, function, args.seconds):>10,.0f}"
        else:
            line += f"{'':>10}"
        if baseline is not None:
            line += f"{best['baseline']:>12,.0f}{best['current'] / best['baseline']:>8.2f}"
        print(line)


def _cold(pairs: list[tuple[str, str]], function: str, seconds: float) -> float:
    from orca_math.answers.normalize import read_number

    judge = getattr(current, function)

    def cold_judge(gold: str, predicted: str) -> object:
        read_number.cache_clear()
        return judge(gold, predicted)

    return verdicts_per_second(pairs, cold_judge, seconds)


if __name__ == "__main__":
    main()
