"""Benchmark loaders on the offline copies, the gold policy, the Hub code path and custom layouts."""

from __future__ import annotations

import collections
import json
import logging
import os
from fractions import Fraction
from pathlib import Path

import datasets
import pytest

from orca_math.data import (
    BENCHMARKS,
    BenchmarkError,
    canonical_number,
    load_benchmark,
    load_benchmark_with_report,
    load_custom,
    load_custom_with_report,
    parse_gold,
)
from orca_math.data.benchmarks import BENCHMARKS_DIR_ENV

BENCHMARKS_DIR = Path(
    os.environ.get(BENCHMARKS_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
)
needs_copies = pytest.mark.skipif(not BENCHMARKS_DIR.is_dir(), reason=f"no benchmark copies at {BENCHMARKS_DIR}")

# Rows in each file (shared/data/README.md) and how many have a gold that is not a single number.
EXPECTED = {
    ("gsm8k", "train"): (7473, 0),
    ("gsm8k", "test"): (1319, 0),
    ("svamp", "test"): (1000, 0),
    ("asdiv", "test"): (2215, 120),
    ("addsub", "test"): (395, 0),
    ("multiarith", "test"): (600, 0),
    ("singleop", "test"): (562, 0),
    ("singleeq", "test"): (508, 0),
}


@needs_copies
@pytest.mark.parametrize(("name", "split"), list(EXPECTED))
def test_local_benchmarks_have_the_documented_rows_and_numeric_golds(name, split):
    rows, excluded = EXPECTED[(name, split)]
    report = load_benchmark_with_report(name, split=split, path=BENCHMARKS_DIR)
    dataset = report.dataset
    assert len(dataset) == rows - excluded
    assert len(report.excluded) == excluded
    assert dataset.column_names[:4] == ["id", "benchmark", "question", "gold"]
    assert set(dataset["benchmark"]) == {name}
    assert len(set(dataset["id"])) == len(dataset)
    for gold in dataset["gold"]:
        Fraction(gold)  # raises if the gold is not a number
        assert canonical_number(gold) == gold
    assert all(question.strip() for question in dataset["question"])


@needs_copies
def test_each_benchmark_normalises_its_own_fields():
    gsm8k = load_benchmark("gsm8k", path=BENCHMARKS_DIR, limit=1)[0]
    assert gsm8k["id"] == "gsm8k-test-00000" and gsm8k["gold"] == "18"
    assert gsm8k["answer"].endswith("#### 18") and gsm8k["question"].startswith("Janet")
    svamp = load_benchmark("svamp", path=BENCHMARKS_DIR, limit=1)[0]
    assert svamp["question"] == svamp["Body"] + " " + svamp["Question"]
    assert (svamp["id"], svamp["gold"], svamp["Answer"]) == ("svamp-chal-777", "145", 145.0)
    asdiv = load_benchmark("asdiv", path=BENCHMARKS_DIR, limit=1)[0]
    assert asdiv["gold"] == "9" and asdiv["answer"] == "9 (apples)"
    assert asdiv["question"] == asdiv["body"] + " " + asdiv["source_question"]
    addsub = load_benchmark("addsub", path=BENCHMARKS_DIR, limit=2)
    assert addsub["gold"] == ["43", "26"] and addsub["id"] == ["addsub-test-00000", "addsub-test-00001"]


@pytest.fixture
def fresh_reports(monkeypatch):
    """Forget which exclusions were logged already (they are logged once per process)."""
    import orca_math.data.benchmarks as benchmarks

    monkeypatch.setattr(benchmarks, "_reported", set())


@needs_copies
def test_asdiv_exclusions_are_reported_with_reasons(caplog, fresh_reports):
    with caplog.at_level(logging.WARNING, logger="orca_math.data.benchmarks"):
        report = load_benchmark_with_report("asdiv", path=BENCHMARKS_DIR)
    reasons = collections.Counter(item.reason.split(":")[0] for item in report.excluded)
    assert reasons == {
        "a ratio or clock time, not a single number": 61,
        "a text answer, not a number": 56,
        "not a single number": 3,
    }
    by_id = {item.id: item for item in report.excluded}
    assert by_id["asdiv-849"].answer == "5:6" and "ratio" in by_id["asdiv-849"].reason
    assert "asdiv-849" in report.excluded_ids and "asdiv-849" not in report.dataset["id"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "excluded 120 row(s)" in warnings[0] and "asdiv-29" in warnings[0]
    # ordinals and fractions are single numbers and stay in
    golds = dict(zip(report.dataset["id"], report.dataset["gold"], strict=True))
    assert golds["asdiv-188"] == "6" and golds["asdiv-1299"] == "2.5" and golds["asdiv-1313"] == "-1/3"

    kept = load_benchmark("asdiv", path=BENCHMARKS_DIR, include_unparsed=True)
    assert len(kept) == 2215
    assert sum(gold is None for gold in kept["gold"]) == 120


@needs_copies
def test_benchmarks_dir_from_environment(monkeypatch):
    monkeypatch.setenv(BENCHMARKS_DIR_ENV, str(BENCHMARKS_DIR))
    assert len(load_benchmark("singleop", limit=5)) == 5


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(BenchmarkError, match=r"unknown benchmark 'gsm9k'; known: gsm8k, svamp"):
        load_benchmark("gsm9k", path=tmp_path)
    with pytest.raises(BenchmarkError, match=r"svamp has no local split 'train'; local splits: test"):
        load_benchmark("svamp", split="train", path=tmp_path)
    with pytest.raises(BenchmarkError, match=r"mawps/addsub\.jsonl does not exist"):
        load_benchmark("addsub", path=tmp_path)
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "Q?", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(BenchmarkError, match=r"test\.jsonl, line 2: not valid JSON"):
        load_benchmark("gsm8k", path=tmp_path)


def test_hub_code_path_passes_the_documented_source(monkeypatch):
    calls = []

    def fake_load_dataset(repo, config=None, *, split, data_files=None):
        calls.append((repo, config, split, data_files))
        return datasets.Dataset.from_list([{"input": "Ann has 2 pens and gets 3. How many?", "target": 5.0}])

    monkeypatch.delenv(BENCHMARKS_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    dataset = load_benchmark("addsub")
    assert calls == [("HuggingFaceTB/math_tasks", None, "train", "data/mawps/addsub.jsonl")]
    assert dataset[0]["gold"] == "5" and dataset[0]["id"] == "addsub-test-00000"
    calls.clear()
    with pytest.raises(BenchmarkError, match="no column 'question' in openai/gsm8k"):
        load_benchmark("gsm8k", split="train")
    assert calls[0][:3] == ("openai/gsm8k", "main", "train")


def test_hub_failure_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub\nlong trace")

    monkeypatch.delenv(BENCHMARKS_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(BenchmarkError) as info:
        load_benchmark("svamp")
    assert str(info.value) == (
        "cannot load svamp from the Hub (ChilleD/SVAMP): Couldn't reach the Hub (HF_HUB_OFFLINE is set, so only a copy "
        f"in the Hugging Face cache could be used); pass path= or set {BENCHMARKS_DIR_ENV} to load local files."
    )
    assert info.value.cli_message.endswith(f"point --benchmarks-dir (or ${BENCHMARKS_DIR_ENV}) at a folder of local copies.")
    assert "path=" not in info.value.cli_message


@needs_copies
def test_unparsed_golds_kept_for_decontamination_are_logged_once_as_a_detail(caplog, fresh_reports):
    with caplog.at_level(logging.DEBUG, logger="orca_math.data.benchmarks"):
        load_benchmark("asdiv", path=BENCHMARKS_DIR, include_unparsed=True)
        load_benchmark("asdiv", path=BENCHMARKS_DIR, include_unparsed=True)  # a pipeline binds its stages twice
        load_benchmark("asdiv", path=BENCHMARKS_DIR)
        load_benchmark("asdiv", path=BENCHMARKS_DIR)
    records = [(r.levelno, r.getMessage()) for r in caplog.records if "asdiv" in r.getMessage()]
    assert [level for level, _ in records] == [logging.INFO, logging.WARNING]
    assert "kept with gold=None 120 row(s)" in records[0][1] and "excluded 120 row(s)" in records[1][1]


def test_an_unreachable_hub_fails_at_once_and_is_asked_once(monkeypatch):
    import huggingface_hub

    from orca_math.data import benchmarks

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", BENCHMARKS_DIR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    benchmarks._hub_unreachable.cache_clear()
    probes = []
    real_session = huggingface_hub.get_session

    def counting_session():
        probes.append(1)
        return real_session()

    monkeypatch.setattr(huggingface_hub, "get_session", counting_session)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("no download may be tried"))
    for name in ("gsm8k", "svamp"):
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(name)
        assert f"cannot load {name} from the Hub" in str(info.value) and "the Hub cannot be reached" in str(info.value)
        assert "--benchmarks-dir" in info.value.cli_message
    assert len(probes) == 1
    benchmarks._hub_unreachable.cache_clear()


def test_custom_layout_with_answer_pattern(tmp_path):
    path = tmp_path / "quiz.jsonl"
    rows = [
        {"uid": "q1", "prob_text": "A shelf has 4 rows of 6 books.", "ask": "How many books?", "sol": "4*6. The answer is 24."},
        {"uid": "q2", "prob_text": "It was -2 and fell 3.", "ask": "What is it now?", "sol": "The answer is -5"},
        {"uid": "q3", "prob_text": "Split 7 equally in 2.", "ask": "How much each?", "sol": "Half of 7 is 3.5"},
        {"uid": "q4", "prob_text": "Pay $1,250 twice.", "ask": "Total?", "sol": "The answer is 2,500."},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    report = load_custom_with_report(path, question=["prob_text", "ask"], answer="sol", id="uid", name="quiz",
                                     answer_pattern=r"answer is (-?[\d,.]*\d)")
    dataset = report.dataset
    assert dataset["id"] == ["quiz-q1", "quiz-q2", "quiz-q4"]
    assert dataset["gold"] == ["24", "-5", "2500"]
    assert dataset[0]["question"] == "A shelf has 4 rows of 6 books. How many books?"
    assert dataset.column_names == ["id", "benchmark", "question", "gold", "uid", "prob_text", "ask", "sol"]
    assert [(item.id, item.reason.split(" '")[0]) for item in report.excluded] == [
        ("quiz-q3", "answer_pattern did not match")
    ]


def test_custom_csv_and_in_memory_rows(tmp_path):
    path = tmp_path / "exam.csv"
    path.write_text("text,result\nWhat is 6 times 7?,42\nHalf of 1?,0.50\n", encoding="utf-8")
    dataset = load_custom(path, question="text", answer="result")
    assert dataset["gold"] == ["42", "0.5"] and dataset["id"] == ["custom-test-00000", "custom-test-00001"]
    dataset = load_custom([{"q": "Q?", "a": "work\n#### 1,024"}], question="q", answer="a", limit=1)
    assert dataset["gold"] == ["1024"]


def test_custom_errors(tmp_path):
    path = tmp_path / "exam.csv"
    path.write_text("text,result\nWhat is 6 times 7?,42\n", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"no column 'answer' in exam\.csv; found columns: text, result"):
        load_custom(path, question="text", answer="answer")
    with pytest.raises(BenchmarkError, match=r"answer_pattern '\(' is not a valid regular expression"):
        load_custom(path, question="text", answer="result", answer_pattern="(")
    with pytest.raises(BenchmarkError, match="limit must be a non-negative integer"):
        load_custom(path, question="text", answer="result", limit=-1)
    assert len(load_custom(path, question="text", answer="result", limit=0)) == 0
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"empty\.jsonl is empty"):
        load_custom(tmp_path / "empty.jsonl", question="q", answer="a")
    with pytest.raises(BenchmarkError, match=r"missing\.jsonl does not exist"):
        load_custom(tmp_path / "missing.jsonl", question="q", answer="a")


def test_parse_gold_policy():
    assert parse_gold(72) == ("72", None)
    assert parse_gold(2.50) == ("2.5", None)
    assert parse_gold("9 (apples)") == ("9", None)
    assert parse_gold("1st") == ("1", None)
    assert parse_gold("steps\n#### -3") == ("-3", None)
    assert parse_gold("2:3")[1].startswith("a ratio or clock time")
    assert parse_gold("3 and 4")[1].startswith("several values")
    assert parse_gold("Purple")[1].startswith("a text answer")
    assert parse_gold(None) == (None, "no gold answer")


def test_registry_lists_the_seven_benchmarks():
    assert set(BENCHMARKS) == {"gsm8k", "svamp", "asdiv", "addsub", "multiarith", "singleop", "singleeq"}
