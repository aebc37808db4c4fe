"""run_items: every item ends as one checkpoint line, the input is read lazily, and stops are clean."""

from __future__ import annotations

import asyncio

import pytest

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.runner import ItemFailedError, ItemResult, RunStopped, run_items
from orca_math.models.errors import AuthenticationError


def _items(n: int, pulled: list[str]):
    for i in range(n):
        pulled.append(f"p{i}")
        yield {"id": f"p{i}"}


def _run(*args, **kwargs):
    return asyncio.run(run_items(*args, **kwargs))


def test_every_item_ends_as_exactly_one_line_ok_or_failed(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "c.jsonl")

    async def process(item):
        await asyncio.sleep(0.001)
        if item["id"].endswith("3"):
            raise ItemFailedError("no final answer", raw_reply="hmm")
        return ItemResult(outputs=[{**item, "done": True}])

    stats = _run("solve", _items(25, []), process, checkpoint, concurrency=4)
    records = list(checkpoint.records())
    assert sorted(r["key"] for r in records) == sorted(f"p{i}" for i in range(25))
    failed = {r["key"]: r["failure"]["reason"] for r in records if r["status"] == "failed"}
    assert failed == {"p3": "no final answer", "p13": "no final answer", "p23": "no final answer"}
    assert (stats.inputs, stats.ok, stats.failed, stats.skipped) == (25, 22, 3, 0)


def test_the_input_is_pulled_only_as_workers_free_up(tmp_path):
    pulled: list[str] = []
    in_flight_when_pulled: list[int] = []
    in_flight = 0

    async def process(item):
        nonlocal in_flight
        in_flight += 1
        in_flight_when_pulled.append(len(pulled))
        await asyncio.sleep(0.002)
        in_flight -= 1
        return ItemResult()

    _run("s", _items(200, pulled), process, CheckpointFile(tmp_path / "c.jsonl"), concurrency=3)
    # When the k-th item starts, at most k + 2 items have been read: nothing is buffered ahead.
    assert all(n <= k + 3 for k, n in enumerate(in_flight_when_pulled))


def test_rerun_skips_finished_items_and_retries_failed_ones(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "c.jsonl")
    attempts: dict[str, int] = {}

    async def flaky(item):
        attempts[item["id"]] = attempts.get(item["id"], 0) + 1
        if item["id"] == "p1" and attempts["p1"] == 1:
            raise ItemFailedError("timeout")
        return ItemResult(outputs=[item])

    _run("s", _items(5, []), flaky, checkpoint, concurrency=2)
    stats = _run("s", _items(5, []), flaky, checkpoint, concurrency=2)
    assert (stats.skipped, stats.ok) == (4, 1)
    assert attempts == {"p0": 1, "p1": 2, "p2": 1, "p3": 1, "p4": 1}


def test_a_fatal_error_stops_the_run_without_reading_the_rest(tmp_path):
    pulled: list[str] = []
    checkpoint = CheckpointFile(tmp_path / "c.jsonl")

    async def process(item):
        await asyncio.sleep(0.001)
        if item["id"] == "p5":
            raise AuthenticationError("The API key for http://x was rejected (401).")
        return ItemResult()

    with pytest.raises(RunStopped, match="rejected"):
        _run("s", _items(1000, pulled), process, checkpoint, concurrency=2)
    assert len(pulled) < 20
    assert all(r["status"] == "ok" for r in checkpoint.records())  # the fatal item is not recorded


def test_an_input_error_mid_run_surfaces_and_keeps_finished_work(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "c.jsonl")

    def items():
        yield {"id": "a"}
        yield {"id": "b"}
        raise ValueError("seeds.jsonl, line 3: not valid JSON")

    async def process(item):
        return ItemResult(outputs=[item])

    with pytest.raises(ValueError, match="line 3"):
        _run("s", items(), process, checkpoint, concurrency=1)
    assert [r["key"] for r in checkpoint.records()] == ["a", "b"]


def test_concurrency_must_be_positive(tmp_path):
    async def process(item):
        return ItemResult()

    with pytest.raises(ValueError, match="concurrency"):
        _run("s", [], process, CheckpointFile(tmp_path / "c.jsonl"), concurrency=0)


def test_records_come_back_in_key_order_with_the_last_record_of_each_key(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "step.jsonl")
    checkpoint.append({"key": "b", "status": "failed", "failure": {"reason": "first try"}})
    checkpoint.append({"key": "a", "status": "ok", "outputs": [{"n": 1}]})
    checkpoint.append({"key": "b", "status": "ok", "outputs": [{"n": 2}]})
    with open(checkpoint.path, "ab") as handle:
        handle.write(b"not json\n")  # a damaged line is skipped, not fatal
    found = list(checkpoint.in_key_order(["b", "a", "c"]))
    assert found == [("b", {"key": "b", "status": "ok", "outputs": [{"n": 2}]}),
                     ("a", {"key": "a", "status": "ok", "outputs": [{"n": 1}]}), ("c", None)]
    assert list(CheckpointFile(tmp_path / "none.jsonl").in_key_order(["x"])) == [("x", None)]
