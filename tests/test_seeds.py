"""Seed reading: every source kind, column detection, laziness, ids and each error message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orca_math.data import SeedError, canonical_number, count_seeds, read_seeds, source_fingerprint
from orca_math.records import Problem

EXAMPLE_SEEDS = Path(__file__).resolve().parents[1] / "examples" / "seeds.jsonl"
ROWS = [
    {"id": "a", "question": "Ann has 3 apples and buys 4 more. How many now?", "answer": "3 + 4 = 7\n#### 7"},
    {"id": "b", "question": "What is 10 minus 4?", "answer": "6"},
]


def _write_jsonl(path: Path, rows: list[dict], *, trailing_newline: bool = True) -> Path:
    text = "\n".join(json.dumps(row) for row in rows)
    path.write_text(text + ("\n" if trailing_newline else ""), encoding="utf-8")
    return path


def _check_rows(problems: list[Problem]) -> None:
    assert [p.id for p in problems] == ["a", "b"]
    assert [p.known_answer for p in problems] == ["7", "6"]
    assert problems[0].gold_solution == "3 + 4 = 7\n#### 7"
    assert all(p.origin == "seed" for p in problems)


def test_jsonl_with_blank_lines_and_no_trailing_newline(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]), encoding="utf-8")
    problems = list(read_seeds(path))
    _check_rows(problems)
    assert problems[1].metadata == {"source": "seeds.jsonl", "line": 4}


def test_csv_parquet_saved_folder_list_and_dataset_agree(tmp_path):
    csv_path = tmp_path / "seeds.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "question", "answer"])
        writer.writeheader()
        writer.writerows(ROWS)
    parquet_path = tmp_path / "seeds.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), parquet_path)
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    dict_folder = tmp_path / "saved_dict"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(dict_folder))

    for source, options in [
        (csv_path, {}),
        (str(parquet_path), {}),
        (folder, {}),
        (dict_folder, {"split": "test"}),
        (ROWS, {}),
        (datasets.Dataset.from_list(ROWS), {}),
    ]:
        _check_rows(list(read_seeds(source, **options)))
        assert count_seeds(source, **options) == 2
    # the multi-line answer survives CSV quoting; csv rows report the line they start on
    assert list(read_seeds(csv_path))[1].metadata == {"source": "seeds.csv", "line": 4}


def test_example_seeds_all_have_numeric_answers():
    problems = list(read_seeds(EXAMPLE_SEEDS, require_answers=True))
    assert len(problems) >= 30
    assert len({p.id for p in problems}) == len(problems)
    assert all(canonical_number(p.known_answer) == p.known_answer for p in problems)


def test_column_detection_svamp_body_question_and_numeric_answers():
    rows = [{"Body": "Tom has 5 pens.", "Question": "How many pens?", "Answer": 5.0, "ID": "chal-1"}]
    (problem,) = read_seeds(rows)
    assert problem.question == "Tom has 5 pens. How many pens?"
    assert (problem.id, problem.known_answer, problem.gold_solution) == ("chal-1", "5", "5")
    (problem,) = read_seeds([{"input": "What is 2 + 2?", "target": 4}])
    assert problem.known_answer == "4"
    (problem,) = read_seeds([{"problem": "Half of 3?", "solution": "It is 3/2.\nFinal answer: 1.5"}])
    assert problem.known_answer == "1.5"
    (problem,) = read_seeds([{"text": "Q?", "sol": "#### 1,200"}], question_column="text", answer_column="sol")
    assert problem.known_answer == "1200"


def test_derived_ids_are_stable_and_position_based():
    rows = [{"question": "Q one?"}, {"question": "Q two?"}]
    first = [p.id for p in read_seeds(rows)]
    assert first == [p.id for p in read_seeds(rows)]
    assert first[0].startswith("seed-000000-") and first[1].startswith("seed-000001-")
    assert all(p.known_answer is None and p.gold_solution is None for p in read_seeds(rows))


def test_prompt_like_text_passes_through_unchanged():
    question = "Compute {{ x }} + {% if y %}{y}{% endif %} where x = 2. USER: ignore this\nASSISTANT: {0}"
    (problem,) = read_seeds([{"question": question, "answer": "{{ 3 }}"}])
    assert problem.question == question
    assert problem.gold_solution == "{{ 3 }}"


def test_reading_is_lazy(tmp_path):
    path = tmp_path / "big.jsonl"
    good = json.dumps({"question": "What is 1 + 1?", "answer": "2"})
    path.write_text("\n".join([good] * 5000 + ["{broken"]) + "\n", encoding="utf-8")
    problems = read_seeds(path)
    assert next(problems).known_answer == "2"  # the bad last line has not been read yet
    assert len(list(read_seeds(path, limit=4999))) == 4999
    with pytest.raises(SeedError, match=r"big\.jsonl, line 5001: not valid JSON"):
        list(read_seeds(path))


def test_limit_and_count(tmp_path):
    path = _write_jsonl(tmp_path / "s.jsonl", [{"question": f"Q{i}?"} for i in range(7)], trailing_newline=False)
    assert len(list(read_seeds(path, limit=3))) == 3
    assert count_seeds(path) == 7
    assert count_seeds(path, limit=3) == 3
    with pytest.raises(TypeError, match="colum"):
        count_seeds(path, colum="x")


def test_fingerprint_follows_bytes(tmp_path):
    path = _write_jsonl(tmp_path / "s.jsonl", ROWS)
    same = _write_jsonl(tmp_path / "copy.jsonl", ROWS)
    assert source_fingerprint(path) == source_fingerprint(same)
    before = source_fingerprint(path)
    _write_jsonl(path, ROWS[:1])
    assert source_fingerprint(path) != before
    assert source_fingerprint(ROWS) == source_fingerprint([dict(r) for r in ROWS])


# --------------------------------------------------------------------------- errors


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"question": "x" "answer": 1}\n', encoding="utf-8")
    with pytest.raises(SeedError) as info:
        list(read_seeds(path))
    assert str(info.value) == "seeds.jsonl, line 2: not valid JSON (Expecting ',' delimiter)."
    path.write_text("[1, 2]\n[3]\n".replace("[1, 2]", json.dumps(ROWS[0])), encoding="utf-8")
    with pytest.raises(SeedError, match=r"seeds\.jsonl, line 2: expected a JSON object, got list"):
        list(read_seeds(path))


def test_row_without_question_names_file_and_line(tmp_path):
    path = _write_jsonl(tmp_path / "seeds.jsonl", [ROWS[0], {"id": "x", "question": "  ", "answer": "1"}])
    with pytest.raises(SeedError, match=r"seeds\.jsonl, line 2: no question"):
        list(read_seeds(path))
    with pytest.raises(SeedError, match=r"<rows>, row 0: the question .* is a int"):
        list(read_seeds([{"question": 5}]))


def test_missing_question_column_lists_found_columns(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\nhello,1\n", encoding="utf-8")
    with pytest.raises(SeedError) as info:
        list(read_seeds(path))
    message = str(info.value)
    assert "no question column in data.csv" in message and "found columns: text, label" in message
    assert "question_column=" in message
    with pytest.raises(SeedError, match=r"no column 'prompt' in data\.csv; found columns: text, label"):
        list(read_seeds(path, question_column="prompt"))


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_says_so(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SeedError, match=r"empty\.jsonl is empty"):
        list(read_seeds(path))
    header_only = tmp_path / "header.csv"
    header_only.write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(SeedError, match=r"header\.csv is empty"):
        list(read_seeds(header_only))


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(SeedError, match=r"nope\.jsonl does not exist"):
        read_seeds(tmp_path / "nope.jsonl")
    with pytest.raises(SeedError, match=r"nope\.csv does not exist"):
        read_seeds(str(tmp_path / "nope.csv"))
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(SeedError, match=r"unsupported seed file type '\.txt' for notes\.txt"):
        read_seeds(tmp_path / "notes.txt")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(SeedError, match=r"bad\.parquet is not a readable parquet file"):
        list(read_seeds(tmp_path / "bad.parquet"))
    with pytest.raises(SeedError, match="unsupported seed source of type int"):
        read_seeds(42)


def test_duplicate_ids_and_required_answers(tmp_path):
    path = _write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[1], dict(ROWS[0], question="Other?")])
    with pytest.raises(SeedError, match=r"dup\.jsonl, line 3: duplicate id 'a' \(first seen at line 1\)"):
        list(read_seeds(path))
    path = _write_jsonl(tmp_path / "noanswer.jsonl", [ROWS[0], {"question": "Q?", "answer": ""}])
    assert list(read_seeds(path))[1].gold_solution is None
    with pytest.raises(SeedError, match=r"noanswer\.jsonl, line 2: no answer, and require_answers=True"):
        list(read_seeds(path, require_answers=True))
    with pytest.raises(SeedError, match="limit must be"):
        read_seeds(path, limit=-1)


def test_canonical_number():
    cases = {"1,000": "1000", "$18": "18", "5/2": "2.5", "-(1/3)": "-1/3", "0.50": "0.5", 145.0: "145",
             7: "7", "-3": "-3", ".5": "0.5", "2:3": None, "abc": None, "": None, True: None}
    assert {key: canonical_number(key) for key in cases} == cases


ANSWER_CASES = {
    "3 + 4 = 7\n#### 7": "7",
    "#### 1,200": "1200",
    "It is 3/2.\nFinal answer: 1.5": "1.5",
    "Final answer: $18": "18",
    "42": "42",
    "9 (apples)": "9",
    "She had 3, then 5 more, so 8 in all.": None,  # no stated final answer: not guessed
}


def test_final_answer_without_the_answers_module(monkeypatch):
    import sys

    from orca_math.data import final_answer_of

    monkeypatch.setitem(sys.modules, "orca_math.answers", None)  # makes the import fail
    assert {text: final_answer_of(text) for text in ANSWER_CASES} == ANSWER_CASES


def test_final_answer_with_the_answers_module():
    pytest.importorskip("orca_math.answers", reason="orca_math.answers is not present")
    from orca_math.data import final_answer_of

    try:
        from orca_math.answers import extract_final_answer  # noqa: F401
    except ImportError:
        pytest.skip("orca_math.answers does not export extract_final_answer yet")
    assert {text: final_answer_of(text) for text in ANSWER_CASES} == ANSWER_CASES


def test_json_array_file(tmp_path):
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    _check_rows(list(read_seeds(path)))


def test_hub_name_streams_the_split(monkeypatch):
    calls = []

    def fake_load_dataset(name, config=None, *, split, streaming):
        calls.append((name, config, split, streaming))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    _check_rows(list(read_seeds("someone/word-problems:main", split="validation")))
    assert calls == [("someone/word-problems", "main", "validation", True)]

    def offline(*args, **kwargs):
        raise ConnectionError("no network\ntrace")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SeedError) as info:
        list(read_seeds("someone/word-problems"))
    assert str(info.value) == "cannot load 'someone/word-problems' (split 'train') from the Hugging Face Hub: no network"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json"])
def test_a_file_that_is_not_utf8_names_the_file_line_and_byte(tmp_path, suffix):
    path = tmp_path / f"seeds{suffix}"
    if suffix == ".csv":
        text = "question,answer\nWhat is 1 + 1?,2\nRené has 3 pens; how many?,3\n"
    elif suffix == ".json":
        text = '[{"question": "What is 1 + 1?", "answer": "2"},\n{"question": "René has 3 pens?", "answer": "3"}]\n'
    else:
        text = '{"question": "What is 1 + 1?", "answer": "2"}\n{"question": "René has 3 pens?", "answer": "3"}\n'
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(SeedError) as caught:
        list(read_seeds(path))
    message = str(caught.value)
    line = 3 if suffix == ".csv" else 2
    assert message.startswith(f"seeds{suffix}, line {line}: not UTF-8 text (byte 0xe9 at column ")
    assert "'é' in Windows-1252/Latin-1" in message and "save the file as UTF-8" in message
    assert "codec can't decode" not in message


def test_a_utf16_file_says_so(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_bytes('{"question": "What is 1 + 1?", "answer": "2"}\n'.encode("utf-16"))
    with pytest.raises(SeedError, match=r"seeds.jsonl is UTF-16 text, not UTF-8"):
        list(read_seeds(path))
