"""A resumed run ends with exactly the rows of an uninterrupted one (#21 items 1 and 12).

Dedup decides over the whole of its input; when a rerun retries items that failed the first time,
their rows join that input, and decisions recorded without them must be taken again. Rows that a
changed decision removes from a later stage's input must not be output from that stage's checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.models.errors import ServerError
from orca_math.pipeline import Dedup, Expand, Filter, Harden, Pipeline, Solve, Verify
from orca_math.quality import Deduplicator
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

# Pairs of seeds that differ in one word: near duplicates of each other. The first of each pair sorts first, so an uninterrupted run keeps it and drops the second.
# (The scripted teacher adds up the numbers, so the "gold" answers here are sums.)
_PAIRS = [
    ("Ann has 12 red cats and gets 3 more cats from the farm next door. How many cats does Ann have now?",
     "Ann has 12 red cats and gets 3 more cats from the farm next door. How many cats does Ann own now?"),
    ("A baker makes 40 loaves of bread every morning and sells 25 of them before noon. How many are left?",
     "A baker makes 40 loaves of bread every morning and sells 25 of them before lunch. How many are left?"),
]
SEEDS = [
    {"id": "s01", "question": _PAIRS[0][0], "answer": "#### 15"},
    {"id": "s02", "question": "Bo has 4 pens and buys 6 more. How many pens does he have?", "answer": "#### 10"},
    {"id": "s03", "question": _PAIRS[1][0], "answer": "#### 65"},
    {"id": "s04", "question": _PAIRS[0][1], "answer": "#### 15"},
    {"id": "s05", "question": "A shelf holds 8 books and 9 more are added. How many books?", "answer": "#### 17"},
    {"id": "s06", "question": _PAIRS[1][1], "answer": "#### 65"},
]
#: Seeds whose hardening fails in the first, broken run (the server errs): the first of each pair.
BROKEN = ("s01", "s03")


def _stages():
    return [Expand(), Harden(rounds=1), Dedup(), Solve(), Verify(), Filter()]


def _run(seeds: Path, out: Path, client: ScriptedChatClient):
    pipeline = Pipeline(_stages(), model=client, managed=False, progress=False, concurrency=3)
    return pipeline.run_sync(seeds, out=out)


def _broken_hardening(messages):
    prompt = "\n".join(str(m.content) for m in messages)
    if '"suggestions"' in prompt and any(seed["question"] in prompt for seed in SEEDS if seed["id"] in BROKEN):
        # A model error (as after the managed client's retries): the whole Harden item fails, seed included.
        return ServerError("the server answered 500 Internal Server Error")
    return pipeline_responder(messages)


def _rows(result) -> list[dict]:
    return sorted(datasets.load_from_disk(str(result.dataset_path)).to_list(), key=lambda row: row["id"])


def _seeds(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    return path


def test_a_rerun_that_retries_failed_items_ends_with_the_rows_of_an_uninterrupted_run(tmp_path):
    seeds = _seeds(tmp_path)
    clean = _run(seeds, tmp_path / "clean", ScriptedChatClient(responder=pipeline_responder))

    first = _run(seeds, tmp_path / "resumed", ScriptedChatClient(responder=_broken_hardening))
    assert first.funnel.stages[1].failed == len(BROKEN)
    first_ids = {row["id"] for row in _rows(first)}
    assert {"s04", "s06"} <= first_ids  # kept: their earlier twins had failed
    second = _run(seeds, tmp_path / "resumed", ScriptedChatClient(responder=pipeline_responder))
    assert second.resumed and second.funnel.stages[1].failed == 0

    assert _rows(second) == _rows(clean)
    ids = [row["id"] for row in _rows(second)]
    assert len(ids) == len(set(ids))
    assert {"s04", "s06"}.isdisjoint(ids)
    deduplicator = Deduplicator()
    assert [row["id"] for row in _rows(second) if deduplicator.check(row["id"], row["question"]).is_duplicate] == []
    # The funnel, drops and failures agree too: the retracted rows are counted nowhere.
    assert second.funnel.to_dict()["stages"] == _comparable(clean.funnel.to_dict()["stages"], second)
    assert _drops(second) == _drops(clean)
    assert second.outputs["failures"].read_text() == ""


def _comparable(stages: list[dict], resumed) -> list[dict]:
    """The clean run's stage counts; tokens and calls of a rerun include the failed first attempts."""
    by_name = {stage["name"]: stage for stage in resumed.funnel.to_dict()["stages"]}
    keys = ("prompt_tokens", "completion_tokens", "calls", "cached_calls", "cached_prompt_tokens",
            "cached_completion_tokens", "cost_usd", "saved_by_cache_usd", "seconds")
    return [{**stage, **{key: by_name[stage["name"]][key] for key in keys}} for stage in stages]


def _untimed(result) -> list[dict]:
    """The stage counts of a run's funnel, without each stage's time (a run's own)."""
    return [{k: v for k, v in stage.items() if k != "seconds"} for stage in result.funnel.to_dict()["stages"]]


def _drops(result) -> list[tuple]:
    rows = [json.loads(line) for line in result.outputs["drops"].read_text().splitlines()]
    return sorted((row["id"], row["stage"], row["reason"], row.get("duplicate_of")) for row in rows)


def test_checkpoint_lines_of_keys_that_are_not_inputs_are_not_output(tmp_path):
    seeds = _seeds(tmp_path)
    first = _run(seeds, tmp_path / "out", ScriptedChatClient(responder=pipeline_responder))
    rows = _rows(first)
    path = first.run_dir / "stages" / "filter.jsonl"
    copied = json.loads(path.read_text().splitlines()[0])
    path.write_text(path.read_text() + json.dumps({**copied, "key": "not-an-input"}) + "\n")  # a copied line

    second = _run(seeds, tmp_path / "out", ScriptedChatClient(responder=pipeline_responder))
    assert _rows(second) == rows
    assert _untimed(second) == _untimed(first)
    assert [record["key"] for record in CheckpointFile(path).latest()].count("not-an-input") == 0


def test_set_aside_moves_the_lines_of_keys_byte_for_byte_and_readers_no_longer_see_them(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "step.jsonl")
    for key in ("a", "b", "a", "c"):
        checkpoint.append({"key": key, "status": "ok", "outputs": [{"id": key}]})
    checkpoint.close()
    lines = checkpoint.path.read_bytes().splitlines(keepends=True)

    assert checkpoint.set_aside({"a", "not-there"}) == 2
    assert [record["key"] for record in checkpoint.latest()] == ["b", "c"]
    assert checkpoint.stale_path.read_bytes() == lines[0] + lines[2]
    assert checkpoint.set_aside({"a"}) == 0 and checkpoint.set_aside(set()) == 0
