"""check_answer on the transformed-benchmark corpus: accuracy targets on the tuning and held-out splits.

The corpus (tests/data/answer_corpus.jsonl.gz) is built by scripts/build_answer_corpus.py from GSM8K,
SVAMP and ASDiv gold solutions by mechanical transformations, with the expected verdict known by
construction; its held-out split (a hash of the source problem) was never used to tune the rules.
This is an accuracy test: it counts verdicts and times nothing.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from orca_math.answers import check_answer

CORPUS = Path(__file__).parent / "data" / "answer_corpus.jsonl.gz"
CLASSES = {"plain", "1 recap", "2 aside", "3 words", "4 duration", "5 long closing sentence", "6 hedge",
           "7 markdown steps"}


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _scores(cases: list[dict]) -> tuple[int, int, int]:
    """(cases, decided, right on decided) under check_answer's defaults, with the question."""
    decided = right = 0
    for case in cases:
        result = check_answer(case["gold"], case["reply"], question=case["question"]).result
        decided += result != "cant_tell"
        right += result == case["expected"]
    return len(cases), decided, right


def test_the_corpus_is_large_mixed_and_split_by_source_problem(corpus):
    assert len(corpus) >= 2000
    assert {case["class"] for case in corpus} == CLASSES
    assert {case["source"] for case in corpus} == {"gsm8k", "svamp", "asdiv"}
    counts = Counter(case["split"] for case in corpus)
    assert counts["held_out"] >= 500 and counts["tuning"] >= 1500
    # A source problem's cases all sit in one split, so no held-out problem was seen while tuning.
    splits: dict[str, set[str]] = {}
    for case in corpus:
        splits.setdefault(case["id"].rsplit(":", 1)[0], set()).add(case["split"])
    assert all(len(found) == 1 for found in splits.values())
    assert Counter(case["expected"] for case in corpus)["not_equal"] >= 500


@pytest.mark.parametrize("split", ["tuning", "held_out"])
def test_right_on_at_least_995_per_mille_of_decided_and_cant_tell_at_most_5_percent(corpus, split):
    total, decided, right = _scores([case for case in corpus if case["split"] == split])
    assert right / decided >= 0.995, f"{split}: {right} of {decided} decided cases right"
    assert (total - decided) / total <= 0.05, f"{split}: {total - decided} of {total} cases undecided"


@pytest.mark.parametrize(("split", "least_share"), [("tuning", 1.0), ("held_out", 0.98)])
def test_hedges_are_not_equal_with_the_reason_several_answers(corpus, split, least_share):
    # The held-out share is a floor, not 100%: its failures are never looked at (see docs/answers.md).
    hedges = [case for case in corpus if case["class"] == "6 hedge" and case["split"] == split]
    verdicts = [check_answer(c["gold"], c["reply"], question=c["question"]) for c in hedges]
    several = [v for v in verdicts if v.result == "not_equal" and v.reason.startswith("several answers")]
    assert len(several) >= least_share * len(hedges), f"{len(several)} of {len(hedges)}"


def test_hybrid_grading_sends_at_most_5_percent_of_gsm8k_style_replies_to_the_llm(corpus):
    # Hybrid grading (GradingPolicy's default floor "sole") asks the LLM exactly when this is cant_tell.
    gsm8k = [case for case in corpus if case["source"] == "gsm8k"]
    unsure = sum(check_answer(c["gold"], c["reply"], question=c["question"], min_confidence="sole").result == "cant_tell"
                 for c in gsm8k)
    assert unsure / len(gsm8k) <= 0.05, f"{unsure} of {len(gsm8k)}"


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["scripts/build_answer_corpus.py", "--out", "{tmp}/corpus.jsonl.gz"], {"ORCA_MATH_BENCHMARKS_DIR": "{tmp}/none"},
     "does not exist; a benchmarks folder holds gsm8k/test.jsonl. Set ORCA_MATH_BENCHMARKS_DIR"),
    (["scripts/build_answer_corpus.py", "--out", "{tmp}/no/such/corpus.jsonl.gz"], {}, "--out {tmp}/no/such/corpus.jsonl.gz: the folder"),
    (["benchmarks/answer_corpus_report.py", "--baseline", "{tmp}"], {}, "--baseline {tmp}: no answers_before package"),
    (["benchmarks/answer_table_report.py", "--baseline", "{tmp}"], {}, "--baseline {tmp}: no answers_before package"),
])
def test_the_corpus_script_and_reports_refuse_bad_input_in_one_sentence(tmp_path, argv, env, message):
    import os
    import subprocess
    import sys

    fill = lambda text: text.replace("{tmp}", str(tmp_path))  # noqa: E731
    done = subprocess.run([sys.executable, *map(fill, argv)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **{k: fill(v) for k, v in env.items()}})
    assert done.returncode != 0
    assert fill(message) in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
