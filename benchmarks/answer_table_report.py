"""Per-class decided share and accuracy on the hand-written answer table, for three answer checkers.

Checkers, all run on tests/data/answer_cases.jsonl (gold, free-form response, expected verdict, class):
  check_answer         orca_math.answers.check_answer, default (every extraction may decide), given the
                       case's question where it has one (its numbers are set aside)
  check_answer strict  the same with min_confidence="sole": guesses among several numbers are cant_tell
                       (what GradingPolicy's hybrid and exact modes use)
  math-verify          math_verify.parse on the gold and on the whole response, then math_verify.verify;
                       "decided" when both parse to something
  lm-eval flexible     lm-evaluation-harness's GSM8K "flexible-extract" filter, written here from its
                       documented settings: the last match of (-?[$0-9.,]{2,})|(-?[0-9]+), then exact match
                       with ignore_case and the regexes_to_ignore "," "\\$" "(?s).*#### " "\\.$" applied
                       to both sides; "decided" when the regex matches at all (lm-eval scores a reply with
                       no match as wrong)

"right" is the share of decided cases whose verdict matches the table's expected one. With --baseline
DIR, an older copy of orca_math.answers kept as DIR/answers_before (see answer_checking_speed.py) is
reported too, as "before".

Run: .venv/bin/python benchmarks/answer_table_report.py [--markdown] [--baseline /tmp/answers_before]
This is a report, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from orca_math.answers import check_answer

TABLE = Path(__file__).resolve().parents[1] / "tests/data/answer_cases.jsonl"
# A checker is called with (gold, response, question or None) and returns "equal", "not_equal" or None
# (undecided). Only check_answer reads the question; the other checkers have no use for it.
Checker = Callable[[str, str, str | None], str | None]


def orca(gold: str, response: str, question: str | None = None) -> str | None:
    result = check_answer(gold, response, question=question).result
    return None if result == "cant_tell" else result


def orca_strict(gold: str, response: str, question: str | None = None) -> str | None:
    result = check_answer(gold, response, question=question, min_confidence="sole").result
    return None if result == "cant_tell" else result


def math_verify_checker(gold: str, response: str, question: str | None = None) -> str | None:
    import math_verify

    try:
        parsed_gold = math_verify.parse(gold)
        parsed_response = math_verify.parse(response)
        if not parsed_gold or not parsed_response:
            return None
        return "equal" if math_verify.verify(parsed_gold, parsed_response) else "not_equal"
    except Exception:  # a failure inside math_verify is no verdict
        return None


_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_IGNORED = [re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$")]


def _lm_eval_normalise(text: str) -> str:
    for pattern in _IGNORED:
        text = pattern.sub("", text)
    return text.strip().lower()


def lm_eval_flexible(gold: str, response: str, question: str | None = None) -> str | None:
    matches = _FLEXIBLE.findall(response)
    if not matches:
        return None
    extracted = next(group for group in matches[-1] if group)  # group_select: -1, then the filled group
    return "equal" if _lm_eval_normalise(extracted) == _lm_eval_normalise(gold) else "not_equal"


CHECKERS: dict[str, Checker] = {
    "check_answer": orca,
    "check_answer strict": orca_strict,
    "math-verify": math_verify_checker,
    "lm-eval flexible": lm_eval_flexible,
}


def add_baseline(directory: str) -> None:
    """Put the older check_answer kept in `directory`/answers_before first in the report, as "before"."""
    from answer_checking_speed import load_baseline  # benchmarks/ is on the path: this runs as a script

    before = load_baseline(directory)

    def old(gold: str, response: str, question: str | None = None) -> str | None:
        result = before.check_answer(gold, response).result
        return None if result == "cant_tell" else result

    CHECKERS.update({"before": old, **{name: CHECKERS.pop(name) for name in list(CHECKERS)}})


def tally(cases: list[dict[str, str]]) -> dict[str, dict[str, list[int]]]:
    """checker -> class -> [cases, decided, right]."""
    table: dict[str, dict[str, list[int]]] = {name: defaultdict(lambda: [0, 0, 0]) for name in CHECKERS}
    for case in cases:
        for name, checker in CHECKERS.items():
            verdict = checker(case["gold"], case["response"], case.get("question"))
            row = table[name][case["class"]]
            row[0] += 1
            if verdict is not None:
                row[1] += 1
                row[2] += verdict == case["expected"]
    return table


def _cell(row: list[int]) -> str:
    cases, decided, right = row
    accuracy = f"{right / decided:.1%}" if decided else "-"
    return f"{decided / cases:.0%} / {accuracy}"


def render(table: dict[str, dict[str, list[int]]], markdown: bool) -> str:
    names = list(CHECKERS)
    classes = sorted(table[names[0]])
    totals = {name: [sum(row[i] for row in table[name].values()) for i in range(3)] for name in names}
    rows = [[c, str(table[names[0]][c][0]), *(_cell(table[name][c]) for name in names)] for c in classes]
    rows.append(["**all**" if markdown else "all", str(totals[names[0]][0]), *(_cell(totals[n]) for n in names)])
    header = ["class", "cases", *(f"{name} (decided / right)" for name in names)]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)) for r in [header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for docs/answers.md)")
    parser.add_argument("--baseline", help="folder holding answers_before, an older copy to report as 'before'")
    args = parser.parse_args()
    if args.baseline:
        add_baseline(args.baseline)
    cases = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(render(tally(cases), args.markdown))


if __name__ == "__main__":
    main()
