"""Accuracy of check_answer on the transformed-benchmark corpus, per failure class and split (issue #23).

The corpus (tests/data/answer_corpus.jsonl.gz, built by scripts/build_answer_corpus.py) holds replies
made mechanically from GSM8K, SVAMP and ASDiv gold solutions, with the expected verdict known by
construction. For each split (tuning, held_out) and failure class it reports:

  n          cases
  decided    share of cases check_answer decided (equal or not_equal)
  right      share of decided cases whose verdict is the expected one
  to LLM     share that hybrid grading (min_confidence="sole", GradingPolicy's default) would send
             to the LLM: the cases check_answer with that floor cannot tell

`--failures` lists the wrong and undecided cases of the tuning split only: the held-out split is
never shown case by case, so the rules are never tuned on it. `--baseline DIR` reports an older copy
of orca_math.answers kept as DIR/answers_before (see answer_checking_speed.py) as "before".

Run: .venv/bin/python benchmarks/answer_corpus_report.py [--markdown] [--failures N] [--baseline DIR]
This is a report, not a test: tests/test_answer_corpus.py holds the targets.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path

from answer_checking_speed import load_baseline  # benchmarks/ is on the path: this runs as a script

from orca_math.answers import check_answer

CORPUS = Path(__file__).resolve().parents[1] / "tests/data/answer_corpus.jsonl.gz"


def load_corpus(path: Path = CORPUS) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def judge(check, case: dict) -> tuple[str, str, str]:
    """(verdict with the default floor, verdict with min_confidence="sole", reason)."""
    loose = check(case["gold"], case["reply"], question=case["question"])
    sure = check(case["gold"], case["reply"], question=case["question"], min_confidence="sole")
    return loose.result, sure.result, loose.reason


def score(cases: list[dict], check) -> dict[tuple[str, str], dict[str, int]]:
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case in cases:
        loose, sure, _ = judge(check, case)
        for key in ((case["split"], case["class"]), (case["split"], "all")):
            row = counts[key]
            row["n"] += 1
            row["decided"] += loose != "cant_tell"
            row["right"] += loose == case["expected"]
            row["llm"] += sure == "cant_tell"
    return counts


def table(counts, label: str, markdown: bool) -> list[str]:
    lines = []
    for (split, klass), row in sorted(counts.items()):
        n, decided = row["n"], row["decided"]
        right = f"{row['right'] / decided:.1%}" if decided else "-"
        cells = [label, split, klass, str(n), f"{decided / n:.1%}", right, f"{row['llm'] / n:.1%}",
                 str(decided - row["right"])]
        lines.append("| " + " | ".join(cells) + " |" if markdown else "  ".join(f"{c:>10}" for c in cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--failures", type=int, default=0, help="list up to N failures of the tuning split")
    parser.add_argument("--baseline", help="folder holding answers_before, an older copy to report as 'before'")
    args = parser.parse_args()
    cases = load_corpus()
    checkers = [("after", check_answer)]
    if args.baseline:
        checkers.insert(0, ("before", load_baseline(args.baseline).check_answer))
    header = ["checker", "split", "class", "n", "decided", "right", "to LLM", "wrong"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header) if args.markdown else "  ".join(f"{h:>10}" for h in header))
    for label, check in checkers:
        print("\n".join(table(score(cases, check), label, args.markdown)))
    shown = 0
    for case in cases:
        if shown >= args.failures:
            break
        if case["split"] != "tuning":
            continue
        loose, sure, reason = judge(check_answer, case)
        if loose != case["expected"]:
            shown += 1
            print(f"\n--- {case['id']} ({case['class']}): expected {case['expected']}, got {loose} ({reason})")
            print(f"Q: {case['question']}\ngold: {case['gold']}\n{case['reply']}")


if __name__ == "__main__":
    main()
