"""How many GSM8K-style verdicts hybrid grading still sends to the LLM Grader (issue #16: at most 5%).

Every reply goes through `orca_math.grading.GradingPolicy(mode="hybrid")` with its question, the way
labelling and evaluation call it. The LLM Grader is a scripted client that counts its calls, so the
share sent to it is measured, not inferred. Sets:

  gsm8k test / train        GSM8K reference solutions with their `#### N` line removed: free-form
                            replies whose last line is a sentence with an equation, graded against
                            their own gold (so nearly all should be "equal")
  gsm8k test, wrong gold    the same replies against gold + 1, a stand-in for wrong student answers
                            (the checker must then say "not equal" on its own)
  corpus gsm8k / all        tests/data/answer_corpus.jsonl.gz (issue #23): replies made from GSM8K (or
                            GSM8K, SVAMP and ASDiv) gold solutions by mechanical transformations
                            (recaps, asides, words, durations, hedges, wrong values)
  table free-form           the hand-written table's free-form classes (closing_sentence, orca_student,
                            restated_after, several_numbers, number_words), with their question where
                            the case has one

Run: .venv/bin/python benchmarks/answer_hybrid_share.py [--markdown]
This is a report, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
from fractions import Fraction
from pathlib import Path

from orca_math.grading import GradingPolicy
from orca_math.testing import ScriptedChatClient

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(os.environ.get("ORCA_MATH_BENCHMARKS_DIR", ROOT.parent / "shared/data/benchmarks"))
TABLE = ROOT / "tests/data/answer_cases.jsonl"
FREE_FORM = {"closing_sentence", "orca_student", "restated_after", "several_numbers", "number_words"}
# A case: (question, gold, reply).
Case = tuple[str, str, str]


def gsm8k(split: str, wrong_gold: bool = False) -> list[Case]:
    path = BENCHMARKS / f"gsm8k/{split}.jsonl"
    if not path.exists():
        return []
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        gold = row["answer"].split("####")[-1].strip().replace(",", "")
        if wrong_gold:
            gold = str(Fraction(gold) + 1)
        cases.append((row["question"], gold, re.sub(r"\n####.*$", "", row["answer"].strip())))
    return cases


def corpus(source: str | None = None) -> list[Case]:
    with gzip.open(ROOT / "tests/data/answer_corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [(row["question"], row["gold"], row["reply"]) for row in rows if source in (None, row["source"])]


def table_free_form() -> list[Case]:
    rows = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    # A case without a question gets a neutral one: the policy needs a question, and it sets nothing aside.
    return [(row.get("question", "What is the answer?"), row["gold"], row["response"])
            for row in rows if row["class"] in FREE_FORM]


async def share_sent_to_llm(cases: list[Case], with_question: bool) -> tuple[int, int]:
    """(verdicts, calls to the LLM Grader) for `cases` under hybrid grading."""
    client = ScriptedChatClient(responder=lambda messages: "Error analysis: Judged.\nFinal Verdict: Correct")
    policy = GradingPolicy(client, mode="hybrid")
    for question, gold, reply in cases:
        # Without the question, the policy still needs one: a neutral text sets nothing aside.
        await policy.assess(question=question if with_question else "What is the answer?",
                            reference_answer=gold, student_solution=reply)
    return len(cases), len(client.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for docs/answers.md)")
    args = parser.parse_args()
    sets = {
        "gsm8k test": gsm8k("test"),
        "gsm8k train": gsm8k("train"),
        "gsm8k test, wrong gold": gsm8k("test", wrong_gold=True),
        "corpus gsm8k": corpus("gsm8k"),
        "corpus all": corpus(),
        "table free-form": table_free_form(),
    }
    rows = []
    for name, cases in sets.items():
        if not cases:
            continue
        total, without = asyncio.run(share_sent_to_llm(cases, with_question=False))
        _, with_q = asyncio.run(share_sent_to_llm(cases, with_question=True))
        rows.append((name, str(total), f"{without / total:.1%} ({without})", f"{with_q / total:.1%} ({with_q})"))
    header = ("set", "verdicts", "sent to the LLM, no question", "sent to the LLM, with the question")
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        print("\n".join("| " + " | ".join(row) + " |" for row in rows))
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
