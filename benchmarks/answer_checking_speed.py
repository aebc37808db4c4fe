"""How many answer verdicts per second orca_math.answers gives on one core (single process).

Workloads:
  plain compare    compare_answers("72", "72")-style: bare integers and decimals
  plain check      check_answer("72", "... Final answer: 72"): a short Teacher-style solution
  gsm8k check      check_answer on the 1,319 GSM8K test solutions (rule "####"), if the offline copy is here
  mixed free-form  check_answer on varied responses: boxed, "The answer is", units, words, %, fractions,
                   times, last-number fallback (no expressions, so no math_verify)
  math_verify      compare_answers on LaTeX/expressions that go through math_verify (for scale only)

Run: .venv/bin/python benchmarks/answer_checking_speed.py [--seconds 1.0]
Prints the numbers; asserts nothing (timed assertions do not belong in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from orca_math.answers import check_answer, compare_answers
from orca_math.answers.normalize import read_number

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
    default = Path(__file__).resolve().parents[2] / "shared/data/benchmarks"
    path = Path(os.environ.get("ORCA_MATH_BENCHMARKS_DIR", default)) / "gsm8k/test.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["answer"].split("####")[-1].strip(), row["answer"]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each workload")
    args = parser.parse_args()

    compare_answers("\\sqrt{2}", "\\sqrt{2}")  # import sympy/math_verify once, outside the timings
    workloads = [
        ("plain compare", PLAIN_PAIRS, compare_answers),
        ("plain check", PLAIN_RESPONSES, check_answer),
        ("gsm8k check", gsm8k_pairs(), check_answer),
        ("mixed free-form", MIXED_RESPONSES, check_answer),
        ("math_verify", MATH_VERIFY_PAIRS, compare_answers),
    ]
    print(f"{'workload':<18}{'verdicts/s':>12}  (cold = number cache cleared before each pass)")
    for name, pairs, judge in workloads:
        if not pairs:
            print(f"{name:<18}{'skipped':>12}  (no offline copy)")
            continue
        warm = verdicts_per_second(pairs, judge, args.seconds)

        def cold_judge(gold: str, predicted: str, judge=judge) -> object:
            read_number.cache_clear()
            return judge(gold, predicted)

        if name == "math_verify":  # math_verify keeps caches of its own; a cold figure would mislead
            print(f"{name:<18}{warm:>12,.0f}")
            continue
        cold = verdicts_per_second(pairs, cold_judge, args.seconds)
        print(f"{name:<18}{warm:>12,.0f}  cold {cold:,.0f}")


if __name__ == "__main__":
    main()
