"""The hand-written answer table: every case in tests/data/answer_cases.jsonl goes through `check_answer`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orca_math.answers import check_answer

CASES_PATH = Path(__file__).parent / "data" / "answer_cases.jsonl"


def load_cases() -> list[dict[str, str]]:
    with CASES_PATH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_table_is_large_and_well_formed():
    cases = load_cases()
    assert len(cases) >= 150
    for case in cases:
        assert set(case) == {"gold", "response", "expected", "note"}, case
        assert case["expected"] in ("equal", "not_equal"), case
    assert sum(case["expected"] == "not_equal" for case in cases) >= 40  # wrong answers are well represented


def test_check_answer_agrees_with_the_table():
    cases = load_cases()
    verdicts = [(case, check_answer(case["gold"], case["response"])) for case in cases]
    decided = [(case, verdict) for case, verdict in verdicts if verdict.result != "cant_tell"]
    undecided = [(case, verdict) for case, verdict in verdicts if verdict.result == "cant_tell"]
    mismatches = [(case, verdict) for case, verdict in decided if verdict.result != case["expected"]]

    def show(rows):
        return "\n".join(
            f"  [{case['note']}] gold={case['gold']!r} response={case['response']!r} expected={case['expected']} "
            f"got={verdict.result} ({verdict.method}, rule={verdict.rule}: {verdict.reason})"
            for case, verdict in rows
        )

    assert len(mismatches) <= 0.01 * len(decided), f"{len(mismatches)} mismatches:\n{show(mismatches)}"
    assert len(undecided) <= 0.05 * len(cases), f"{len(undecided)} cant_tell:\n{show(undecided)}"


@pytest.mark.parametrize("expected", ["equal", "not_equal"])
def test_each_verdict_kind_is_mostly_right(expected):
    """A checker that said "equal" to everything would fail here even if the overall rate looked fine."""
    cases = [case for case in load_cases() if case["expected"] == expected]
    right = sum(check_answer(case["gold"], case["response"]).result == expected for case in cases)
    assert right >= 0.95 * len(cases)
