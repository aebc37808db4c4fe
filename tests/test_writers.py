"""Writers: round trips through save_to_disk, parquet and JSON Lines, column order and layout."""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest

from orca_math.data import DataFileError, read_jsonl, read_seeds, rows_to_dataset, write_dataset, write_jsonl

ROWS = [
    {"question": "What is {{ 2 }} + 2?", "answer": "2 + 2 = 4\n#### 4", "id": "p1", "verified": True, "round": 0},
    {"question": "Halve 9.", "answer": "9 / 2 = 4.5\n#### 4.5", "id": "p2", "verified": None, "round": 1},
]
COLUMNS = ["question", "answer", "id", "verified", "round"]


def test_every_format_round_trips_with_column_order(tmp_path):
    paths = write_dataset(ROWS, tmp_path / "out", formats=("hf", "parquet", "jsonl"))
    assert paths == {
        "hf": tmp_path / "out" / "dataset",
        "parquet": tmp_path / "out" / "data.parquet",
        "jsonl": tmp_path / "out" / "data.jsonl",
    }
    saved = datasets.load_from_disk(str(paths["hf"]))
    assert saved.column_names == COLUMNS and saved.to_list() == ROWS
    table = pq.read_table(paths["parquet"])
    assert table.column_names == COLUMNS and table.to_pylist() == ROWS
    assert list(read_jsonl(paths["jsonl"])) == ROWS
    assert list(next(read_jsonl(paths["jsonl"]))) == COLUMNS


def test_single_format_layout(tmp_path):
    assert write_dataset(ROWS, tmp_path / "hf") == {"hf": tmp_path / "hf"}
    assert datasets.load_from_disk(str(tmp_path / "hf")).num_rows == 2
    assert write_dataset(ROWS, tmp_path / "x.parquet", formats=["parquet"]) == {"parquet": tmp_path / "x.parquet"}
    assert write_dataset(ROWS, tmp_path / "folder", formats="jsonl") == {"jsonl": tmp_path / "folder" / "data.jsonl"}
    assert write_dataset(ROWS, tmp_path / "rows.jsonl", formats=["jsonl"]) == {"jsonl": tmp_path / "rows.jsonl"}


def test_written_files_read_back_as_seeds(tmp_path):
    paths = write_dataset(ROWS, tmp_path / "out", formats=("hf", "parquet", "jsonl"))
    for path in paths.values():
        problems = list(read_seeds(path))
        assert [p.id for p in problems] == ["p1", "p2"]
        assert [p.known_answer for p in problems] == ["4", "4.5"]
        assert problems[0].question == "What is {{ 2 }} + 2?"


def test_keys_that_appear_late_are_kept_not_dropped():
    dataset = rows_to_dataset([{"question": "a", "answer": "1"}, {"question": "b", "answer": "2", "note": "x"}])
    assert dataset.column_names == ["question", "answer", "note"]
    assert dataset["note"] == [None, "x"]


def test_dataset_input_and_features(tmp_path):
    source = datasets.Dataset.from_list(ROWS)
    features = datasets.Features({
        "question": datasets.Value("string"), "answer": datasets.Value("string"), "id": datasets.Value("string"),
        "verified": datasets.Value("bool"), "round": datasets.Value("int32"),
    })
    paths = write_dataset(source, tmp_path / "typed", features=features)
    saved = datasets.load_from_disk(str(paths["hf"]))
    assert saved.features["round"] == datasets.Value("int32") and saved.column_names == COLUMNS


def test_write_jsonl_is_atomic_and_unicode(tmp_path):
    path = tmp_path / "deep" / "rows.jsonl"
    assert write_jsonl([{"question": "Café costs €3 — how much for 2?"}], path) == path
    assert path.read_text(encoding="utf-8") == '{"question":"Café costs €3 — how much for 2?"}\n'  # UTF-8, compact
    assert not list(path.parent.glob("*.partial"))

    def failing_rows():
        yield {"question": "first"}
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError):
        write_jsonl(failing_rows(), path)
    assert list(read_jsonl(path)) == [{"question": "Café costs €3 — how much for 2?"}]  # old file intact
    assert not list(path.parent.glob("*.partial"))


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown output format\(s\) \['csv'\]; choose from hf, parquet, jsonl"):
        write_dataset(ROWS, tmp_path / "o", formats=("hf", "csv"))
    with pytest.raises(ValueError, match="unknown output format"):
        write_dataset(ROWS, tmp_path / "o", formats=())
    with pytest.raises(TypeError, match="row 1 is a str, not a dict"):
        write_dataset([ROWS[0], "oops"], tmp_path / "o")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n\n{"a": \n', encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad\.jsonl, line 3: not valid JSON"):
        list(read_jsonl(bad))
    with pytest.raises(DataFileError, match=r"missing\.jsonl does not exist"):
        list(read_jsonl(tmp_path / "missing.jsonl"))


def test_a_copy_is_atomic_and_a_failed_one_leaves_the_old_file(tmp_path):
    from orca_math.files import copy_file

    source, target = tmp_path / "rows.jsonl", tmp_path / "out" / "copy.jsonl"
    source.write_text('{"id": 1}\n', encoding="utf-8")
    assert copy_file(source, target) == target and target.read_text() == '{"id": 1}\n'
    with pytest.raises(FileNotFoundError):
        copy_file(tmp_path / "missing.jsonl", target)
    assert target.read_text() == '{"id": 1}\n' and not list(target.parent.glob("*.partial"))
