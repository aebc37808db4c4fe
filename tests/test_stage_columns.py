"""Custom stages add typed dataset columns; wrong declarations and wrong values are caught with reasons."""

from __future__ import annotations

import json

import pytest

from orca_math.dataset_card import build_card
from orca_math.pipeline import ItemResult, Pipeline, Solve, Stage, Verify
from orca_math.pipeline.columns import ColumnError
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

SEEDS = [
    {"id": "a", "question": "Ann has 2 cats and gets 3 more. How many cats does she have?", "answer": "#### 5"},
    {"id": "b", "question": "Bo has 4 pens and buys 6 more. How many pens does he have now?", "answer": "#### 10"},
]


class RateDifficulty(Stage):
    """Scores a problem (an int for one, a float for the others), tags it, keeps counts in a dict."""

    name = "rate"
    reads = ("id", "question")
    writes = ("difficulty", "tags", "counts", "scratch")
    columns = {"difficulty": float, "tags": list, "counts": dict}

    async def process(self, row):
        words = len(row["question"].split())
        return ItemResult(outputs=[{**row, "difficulty": 1 if row["id"] == "a" else words / 10, "tags": ["arith"],
                                    "counts": {"words": words}, "scratch": "not a column"}])


def _seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in SEEDS))
    return path


def _run(tmp_path, stages, out="out", **kwargs):
    pipeline = Pipeline(stages, model=ScriptedChatClient(responder=pipeline_responder), managed=False, progress=False)
    return pipeline.run_sync(_seeds(tmp_path), out=tmp_path / out, **kwargs)


def test_declared_columns_follow_the_fixed_ones_typed_in_every_format(tmp_path):
    result = _run(tmp_path, [RateDifficulty(), Solve(), Verify()], formats=("hf", "parquet", "jsonl"))
    dataset = result.load_dataset()
    import pyarrow.parquet as pq

    assert pq.read_schema(result.outputs["parquet"]).names == dataset.column_names
    first_line = json.loads(result.outputs["jsonl"].read_text().splitlines()[0])
    assert list(first_line) == dataset.column_names
    assert dataset.column_names[:2] == ["question", "answer"]
    assert dataset.column_names[-3:] == ["difficulty", "tags", "counts"]
    assert "scratch" not in dataset.column_names  # written, but not declared as a column
    assert dataset.features["difficulty"].dtype == "float64"
    rows = {row["id"]: row for row in dataset}
    assert rows["a"]["difficulty"] == 1.0  # an int for a float column is stored as a float
    words_b = len(SEEDS[1]["question"].split())
    assert rows["b"]["difficulty"] == pytest.approx(words_b / 10)
    assert json.loads(rows["a"]["tags"]) == ["arith"] and json.loads(rows["b"]["counts"]) == {"words": words_b}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["columns"]["difficulty"] == {"type": "float", "stage": "rate"}
    assert "added by stage `rate` (float)" in build_card(tmp_path / "out")


def test_an_empty_dataset_still_has_the_declared_columns(tmp_path):
    class DropAll(Stage):
        name = "drop_all"
        writes = ("difficulty",)
        columns = {"difficulty": float}

        async def process(self, row):
            return ItemResult(drops=[{"id": row["id"], "stage": self.name, "reason": "all", "row": row}])

    dataset = _run(tmp_path, [DropAll()]).load_dataset()
    assert len(dataset) == 0 and dataset.features["difficulty"].dtype == "float64"


def test_a_value_of_the_wrong_type_fails_that_item_with_the_reason(tmp_path):
    class Sloppy(Stage):
        name = "sloppy"
        writes = ("difficulty",)
        columns = {"difficulty": float}

        async def process(self, row):
            return ItemResult(outputs=[{**row, "difficulty": "hard" if row["id"] == "b" else 0.5}])

    result = _run(tmp_path, [Sloppy()])
    assert [row["id"] for row in result.load_dataset()] == ["a"]
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [(f["id"], f["stage"]) for f in failures] == [("b", "sloppy")]
    assert "difficulty='hard' (str), but declares the column as float" in failures[0]["reason"]


@pytest.mark.parametrize(
    ("columns", "writes", "message"),
    [
        ({"question": str}, ("question",), "is a fixed dataset column"),
        ({"difficulty": float}, (), "not in its writes"),
        ({"difficulty": complex}, ("difficulty",), "use one of: str, int, float, bool, list, dict"),
    ],
)
def test_bad_declarations_are_refused_when_the_pipeline_is_built(columns, writes, message):
    stage = type("Bad", (Stage,), {"name": "bad", "writes": writes, "columns": columns, "process": RateDifficulty.process})
    with pytest.raises(ColumnError, match=message):
        Pipeline([stage()], model=ScriptedChatClient(), managed=False)


def test_two_stages_declaring_one_column_with_different_types_are_refused():
    first = type("First", (Stage,), {"name": "first", "writes": ("score",), "columns": {"score": int}, "process": RateDifficulty.process})
    second = type("Second", (Stage,), {"name": "second", "writes": ("score",), "columns": {"score": str}, "process": RateDifficulty.process})
    with pytest.raises(ColumnError, match="stage 'second' declares column 'score' as str, but stage 'first' declares it as int"):
        Pipeline([first(), second()], model=ScriptedChatClient(), managed=False)


def test_changing_a_column_declaration_starts_a_new_run(tmp_path):
    first = _run(tmp_path, [RateDifficulty()])

    class RateAsText(RateDifficulty):
        columns = {"difficulty": float, "tags": list}

    second = _run(tmp_path, [RateAsText()])
    assert first.run_key != second.run_key
