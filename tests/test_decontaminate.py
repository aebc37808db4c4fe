"""Decontamination against benchmark test sets: 13-gram overlap of normalised words."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orca_math.quality import (
    DEFAULT_SETS,
    DecontaminationOptions,
    Decontaminator,
    decontaminate_dataset,
    decontaminate_rows,
)

BENCHMARKS_DIR = Path(
    os.environ.get(
        "ORCA_MATH_BENCHMARKS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
    )
)


def read_jsonl(relative: str) -> list[dict]:
    with (BENCHMARKS_DIR / relative).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


GSM8K = read_jsonl("gsm8k/test.jsonl")
GSM8K_VERBATIM = GSM8K[0]["question"]
# GSM8K test question 3, lightly edited: another name, another percentage, another last sentence.
# "decides to try flipping a house he buys a house for 80000 and" (13 words) survives.
assert GSM8K[2]["question"].startswith("Josh decides to try flipping a house.")
GSM8K_EDITED = (
    "Mike decides to try flipping a house. He buys a house for $80,000 and then puts in $50,000 in "
    "repairs. This increased the value of the house by 120%. What was his profit?"
)
SVAMP_ROW = read_jsonl("svamp/test.jsonl")[4]
SVAMP_QUESTION = SVAMP_ROW["Body"] + " " + SVAMP_ROW["Question"]
SINGLEOP_QUESTION = read_jsonl("mawps/singleop.jsonl")[2]["input"]
CLEAN = [
    "A gardener plants 14 rows of tulips with 23 tulips in each row, then gives away 57 tulips to "
    "neighbours. How many tulips does the gardener have left?",
    "A spaceship travels 1,200 kilometres in the first hour and 15% more in each of the next two hours. "
    "How far does it travel in three hours?",
    "Priya saves 35 rupees every week for 9 weeks and then spends a third of her savings on a kite. "
    "How many rupees does she have now?",
]


def planted_rows() -> list[dict]:
    texts = [CLEAN[0], GSM8K_VERBATIM, CLEAN[1], GSM8K_EDITED, SVAMP_QUESTION, CLEAN[2], SINGLEOP_QUESTION]
    return [{"id": f"q{index}", "question": text, "answer": "1"} for index, text in enumerate(texts)]


@pytest.fixture(scope="module")
def default_index() -> Decontaminator:
    return Decontaminator.from_benchmarks(path=BENCHMARKS_DIR)


def test_the_default_index_covers_every_default_benchmark(default_index):
    assert default_index.names == DEFAULT_SETS
    assert default_index.sizes["gsm8k"] == 1319
    assert default_index.sizes["svamp"] == 1000
    assert default_index.sizes["singleop"] == 562
    assert default_index.sizes["asdiv"] == 2215  # every question, even those without a numeric gold


def test_planted_contamination_is_dropped_with_benchmark_names_and_counts(default_index):
    rows = planted_rows()
    kept, drops, report = decontaminate_rows(rows, default_index)

    assert [row["id"] for row in kept] == ["q0", "q2", "q5"]
    assert [drop.id for drop in drops] == ["q1", "q3", "q4", "q6"]
    by_id = {drop.id: drop for drop in drops}
    for drop in drops:
        assert (drop.stage, drop.reason) == ("decontaminate", "contaminated")
        assert drop.row == rows[int(drop.id[1:])]
    assert by_id["q1"].detail.startswith("gsm8k: 'janet s ducks lay 16 eggs per day")
    assert by_id["q3"].detail == "gsm8k: 'decides to try flipping a house he buys a house for 80000 and'"
    assert "svamp: '" in by_id["q4"].detail
    assert "singleop: '" in by_id["q6"].detail

    assert report.checked == 7 and report.contaminated == 4
    assert report.per_benchmark["gsm8k"] == 2
    assert report.per_benchmark["svamp"] == 1
    assert report.per_benchmark["singleop"] == 1
    card = report.to_dict()
    assert card["per_benchmark"]["gsm8k"] == 2 and card["n"] == 13 and card["action"] == "drop"
    assert set(card["per_benchmark"]) == set(DEFAULT_SETS)
    json.dumps(card)


def test_check_reports_the_benchmarks_hit_and_an_example(default_index):
    result = default_index.check(GSM8K_EDITED)
    assert result.contaminated and result.benchmarks == ("gsm8k",)
    assert len(result.matched_ngram.split()) == 13
    assert result.count >= 1
    verbatim = default_index.check(GSM8K_VERBATIM)
    assert verbatim.count > result.count
    for text in CLEAN:
        clean = default_index.check(text)
        assert not clean.contaminated and clean.benchmarks == () and clean.matched_ngram is None


def test_flag_mode_keeps_every_row_with_contamination_columns():
    index = Decontaminator.from_benchmarks(
        ["gsm8k", "svamp"], path=BENCHMARKS_DIR, options=DecontaminationOptions(action="flag")
    )
    rows = planted_rows()
    kept, drops, report = decontaminate_rows(rows, index)

    assert drops == [] and len(kept) == len(rows)
    assert [row["contaminated"] for row in kept] == [False, True, False, True, True, False, False]
    assert kept[1]["contaminated_with"] == ["gsm8k"] and kept[4]["contaminated_with"] == ["svamp"]
    assert kept[0]["contaminated_with"] == []
    assert "contaminated" not in rows[1]  # the input rows are left alone
    assert report.contaminated == 3 and report.to_dict()["action"] == "flag"


def test_user_added_reference_sets():
    own = ["Our private eval: a farmer has 17 goats and buys 5 more goats every month for a whole year."]
    leaked = {"id": "x", "question": "A farmer has 17 goats and buys 5 more goats every month for a whole year. How many?"}
    index = Decontaminator.from_benchmarks(["svamp"], path=BENCHMARKS_DIR, extra={"private_eval": own})
    assert index.names == ("svamp", "private_eval")
    _, drops, report = decontaminate_rows([leaked], index)
    assert drops[0].detail.startswith("private_eval: 'a farmer has 17 goats")
    assert report.per_benchmark == {"private_eval": 1}

    only_own = Decontaminator({"private_eval": iter(own)})  # any iterable of texts
    assert only_own.check(leaked["question"]).benchmarks == ("private_eval",)


def test_n_is_configurable():
    reference = {"ref": ["The cat sat on the warm mat near the old red door of the barn today."]}
    text = "Yesterday a dog sat on the warm mat near the old red door, barking."
    assert not Decontaminator(reference).check(text).contaminated
    result = Decontaminator(reference, DecontaminationOptions(n=8)).check(text)
    assert result.contaminated and result.matched_ngram == "sat on the warm mat near the old"
    assert result.count == 3  # the 10 shared words "sat … door" hold three 8-grams


def test_min_overlap_counts_distinct_shared_ngrams():
    reference = {"ref": ["one two three four five six seven eight nine ten eleven twelve thirteen fourteen"]}
    one_shared = "zero one two three four five six seven eight nine ten eleven twelve thirteen"
    two_shared = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen!"
    strict = DecontaminationOptions(min_overlap=2)
    assert Decontaminator(reference).check(one_shared).count == 1
    assert not Decontaminator(reference, strict).check(one_shared).contaminated
    assert Decontaminator(reference, strict).check(two_shared).contaminated


def test_short_texts_match_only_a_whole_equal_reference():
    references = {
        "short": ["How many apples are left?"],
        "long": ["Sam had 10 apples and ate 3 of them at lunch with friends. How many apples are left now?"],
    }
    index = Decontaminator(references)
    equal = index.check("how many APPLES are left")
    assert equal.contaminated and equal.benchmarks == ("short",) and equal.count == 1
    assert equal.matched_ngram == "how many apples are left"
    # A short text inside a longer reference question is not contamination: it is a common phrase.
    assert not index.check("How many apples are left now?").contaminated
    assert not index.check("").contaminated
    # A long text that contains a short reference question is not matched either.
    assert not index.check("Ann has 4 baskets of 12 apples and sells 20. How many apples are left?").contaminated


def test_bad_input_gets_a_clear_error(default_index):
    with pytest.raises(ValueError, match="non-empty mapping"):
        Decontaminator({})
    with pytest.raises(ValueError, match="'empty' has no texts"):
        Decontaminator({"empty": []})
    with pytest.raises(TypeError, match="iterable of texts"):
        Decontaminator({"one": "a single string"})
    with pytest.raises(TypeError, match="holds a int"):
        Decontaminator({"numbers": [1, 2]})
    with pytest.raises(ValueError, match="same name as a benchmark"):
        Decontaminator.from_benchmarks(["svamp"], path=BENCHMARKS_DIR, extra={"svamp": ["x"]})
    with pytest.raises(ValueError, match="svampp"):
        Decontaminator.from_benchmarks(["svampp"], path=BENCHMARKS_DIR)
    with pytest.raises(ValueError, match="no 'question' field"):
        decontaminate_rows([{"id": "a", "problem": "x"}], default_index)
    with pytest.raises(ValueError, match="no 'id' id field"):
        decontaminate_rows([{"question": "x"}], default_index)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n": 0}, "n must be"),
        ({"action": "remove"}, "action"),
        ({"min_overlap": 0}, "min_overlap"),
        ({"field": ""}, "field"),
        ({"ngram": 13}, "unknown decontamination option.*ngram"),
    ],
)
def test_bad_options_are_rejected(values, message):
    with pytest.raises(ValueError, match=message):
        DecontaminationOptions.from_mapping(values)


def test_decontaminate_dataset_writes_the_clean_dataset_and_the_drops(tmp_path):
    datasets = pytest.importorskip("datasets")
    source = datasets.Dataset.from_list(planted_rows()[:4])
    out, drops_out = tmp_path / "clean.jsonl", tmp_path / "drops.jsonl"

    report = decontaminate_dataset(source, benchmarks=["gsm8k"], path=BENCHMARKS_DIR, out=out, drops_out=drops_out)

    assert (report.checked, report.contaminated, report.per_benchmark) == (4, 2, {"gsm8k": 2})
    clean = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in clean] == ["q0", "q2"]
    dropped = [json.loads(line) for line in drops_out.read_text().splitlines()]
    assert [(drop["id"], drop["reason"]) for drop in dropped] == [("q1", "contaminated"), ("q3", "contaminated")]


def test_decontaminate_dataset_flags_a_saved_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"question": row["question"], "answer": "1"} for row in planted_rows()[:3]]  # no id column
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "generated"))

    report = decontaminate_dataset(
        tmp_path / "generated", benchmarks=["gsm8k"], path=BENCHMARKS_DIR,
        options=DecontaminationOptions(action="flag"), out=tmp_path / "flagged.parquet",
    )

    flagged = datasets.Dataset.from_parquet(str(tmp_path / "flagged.parquet"))
    assert flagged["contaminated"] == [False, True, False]
    assert flagged["contaminated_with"] == [[], ["gsm8k"], []]
    assert report.contaminated == 1
    with pytest.raises(FileNotFoundError, match="no dataset"):
        decontaminate_dataset(tmp_path / "missing", benchmarks=["gsm8k"], path=BENCHMARKS_DIR)


def test_decontaminate_dataset_cleans_every_split_of_a_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"question": GSM8K_VERBATIM}, {"question": CLEAN[0]}]),
            "test": datasets.Dataset.from_list([{"question": CLEAN[1]}, {"question": GSM8K_EDITED}]),
        }
    )
    drops_out = tmp_path / "drops.jsonl"
    report = decontaminate_dataset(
        splits, benchmarks=["gsm8k"], path=BENCHMARKS_DIR, out=tmp_path / "clean", drops_out=drops_out
    )

    assert (report.checked, report.contaminated) == (4, 2)
    clean = datasets.load_from_disk(str(tmp_path / "clean"))
    assert clean["train"]["question"] == [CLEAN[0]] and clean["test"]["question"] == [CLEAN[1]]
    dropped_ids = [json.loads(line)["id"] for line in drops_out.read_text().splitlines()]
    assert dropped_ids == ["train:0", "test:1"]
