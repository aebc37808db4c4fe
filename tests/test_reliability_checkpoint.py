"""A damaged checkpoint line anywhere is set aside with a warning, its item is redone, the run resumes.

Before, one non-UTF-8 byte in the middle of a checkpoint failed every rerun with a
UnicodeDecodeError naming no file; a JSON line without "key" gave a KeyError, a bare number a
TypeError.
"""

from __future__ import annotations

import json
import logging

import pytest

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

DAMAGE = {
    "a non-UTF-8 byte": lambda line: line[:12] + b"\xff" + line[13:],
    "JSON without a key": lambda line: b'{"status": "ok", "outputs": []}\n',
    "a bare number": lambda line: b"12345\n",
    "a JSON list": lambda line: b'["p1", "ok"]\n',
    "a key that is not a string": lambda line: line.replace(b'"key":"p1"', b'"key":1'),
    "an ok record without outputs": lambda line: b'{"key": "p1", "status": "ok"}\n',
    "an unknown status": lambda line: line.replace(b'"status":"ok"', b'"status":"maybe"'),
    "half a line": lambda line: line[: len(line) // 2] + b"\n",
}


def _seeds(path):
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 2?"}) + "\n" for i in range(3)))
    return path


def _run(tmp_path):
    client = ScriptedChatClient(responder=pipeline_responder)
    result = Pipeline([Solve()], model=client, progress=False, cache=False).run_sync(_seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "out")
    return result, client


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_middle_line_is_set_aside_and_its_item_redone(tmp_path, caplog, damage):
    first, _ = _run(tmp_path)
    path = first.run_dir / "stages" / "solve.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert b'"key":"p1"' in lines[1]
    broken = DAMAGE[damage](lines[1])
    path.write_bytes(lines[0] + broken + lines[2])

    with caplog.at_level(logging.WARNING, logger="orca_math.engine.checkpoint"):
        second, client = _run(tmp_path)
    assert second.funnel.final_rows == 3 and second.resumed
    assert len(client.calls) == 1 and "What is 1 + 2?" in str(client.calls[0]["messages"][-1].content)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in w and "line 2" in w for w in warnings), warnings
    assert len([w for w in warnings if str(path) in w]) == 1, warnings  # once, as the module promises (#21 item 9)
    sidecar = path.with_name(path.name + ".damaged")
    assert sidecar.read_bytes() == broken  # kept byte for byte, for whoever wants to look
    assert [json.loads(line)["key"] for line in path.read_bytes().splitlines()] == ["p0", "p2", "p1"]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="orca_math.engine.checkpoint"):
        third, client = _run(tmp_path)
    assert third.funnel.final_rows == 3 and len(client.calls) == 0 and not caplog.records


def test_records_skip_damaged_lines_without_touching_the_file(tmp_path, caplog):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"key":"a","status":"ok","outputs":[]}\n\xff\xfe\n12345\n{"key":"b","status":"failed","failure":{}}\n')
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="orca_math.engine.checkpoint"):
        keys = [record["key"] for record in CheckpointFile(path).records()]
    assert keys == ["a", "b"] and path.read_bytes() == before  # readers never rewrite a checkpoint
    assert [m for m in caplog.messages if "line 2" in m and "UTF-8" in m] and [m for m in caplog.messages if "line 3" in m]


def test_statuses_set_damaged_lines_aside_once(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"key":"a","status":"ok","outputs":[]}\n{"status":"ok"}\n{"key":"b","status":"failed","failure":{}}\n')
    assert CheckpointFile(path).statuses() == {"a": "ok", "b": "failed"}
    assert CheckpointFile(path).statuses() == {"a": "ok", "b": "failed"}
    assert (tmp_path / "c.jsonl.damaged").read_bytes() == b'{"status":"ok"}\n'
    assert path.read_bytes().count(b"\n") == 2


def _checkpoint_with(tmp_path, tail: bytes, lines: int = 3, pad: int = 0):
    checkpoint = CheckpointFile(tmp_path / "step.jsonl")
    for i in range(lines):
        checkpoint.append({"key": f"k{i}", "status": "ok", "outputs": [{"text": "x" * pad}]})
    checkpoint.close()
    with open(checkpoint.path, "ab") as handle:
        handle.write(tail)
    return checkpoint


@pytest.mark.parametrize("pad", [0, 200_000])  # a last line longer than the block repair reads backwards
def test_repair_cuts_only_a_cut_off_last_line_and_sets_it_aside(tmp_path, pad):
    whole = json.dumps({"key": "k9", "status": "ok", "outputs": [{"text": "y" * pad}]}).encode()
    checkpoint = _checkpoint_with(tmp_path, whole[: len(whole) // 2], pad=pad)  # a crash mid-write: no newline
    size = checkpoint.path.stat().st_size
    assert checkpoint.repair() == len(whole) // 2
    assert checkpoint.path.stat().st_size == size - len(whole) // 2
    assert [r["key"] for r in checkpoint.records()] == ["k0", "k1", "k2"]
    assert checkpoint.damaged_path.read_bytes() == whole[: len(whole) // 2] + b"\n"
    assert checkpoint.repair() == 0  # whole lines stay as they are


def test_repair_cuts_a_torn_last_line_that_ends_in_a_newline(tmp_path):
    checkpoint = _checkpoint_with(tmp_path, b'{"key": "k9", "sta\n')
    assert checkpoint.repair() == len(b'{"key": "k9", "sta\n')
    assert [r["key"] for r in checkpoint.records()] == ["k0", "k1", "k2"]


def test_repair_keeps_a_file_of_one_whole_line_and_cuts_one_of_half_a_line(tmp_path):
    one = CheckpointFile(tmp_path / "one.jsonl")
    one.append({"key": "k0", "status": "ok", "outputs": []})
    assert one.repair() == 0 and [r["key"] for r in one.records()] == ["k0"]
    half = tmp_path / "half.jsonl"
    half.write_bytes(b'{"key": "k0", "st')
    assert CheckpointFile(half).repair() == 17 and half.read_bytes() == b""


def test_repair_reads_the_last_line_not_the_whole_file(tmp_path):
    import tracemalloc

    checkpoint = _checkpoint_with(tmp_path, b'{"key": "k9", "sta', lines=2_000, pad=10_000)  # a 20 MB checkpoint
    tracemalloc.start()
    try:
        checkpoint.repair()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert checkpoint.path.stat().st_size > 20_000_000
    assert peak < 1_000_000  # reading it whole, as it once did, made each step's end a run's memory peak


def _records(*pairs):
    return [{"key": key, "status": "ok", "outputs": [{"id": key, "answer": answer}]} for key, answer in pairs]


def test_latest_and_key_order_give_a_keys_earlier_sound_record_when_its_last_line_was_damaged_during_the_run(tmp_path, caplog):
    # The readers learn keys from each line's start; a line whose key is intact but whose rest is
    # damaged must not hide the key's earlier sound record.
    checkpoint = CheckpointFile(tmp_path / "solve.jsonl")
    for record in _records(("p0", "1"), ("p1", "first"), ("p1", "second"), ("p2", "3")):
        checkpoint.append(record)
    checkpoint.close()
    lines = checkpoint.path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2][:30] + b"\xff" + lines[2][31:]
    checkpoint.path.write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING):
        latest = {record["key"]: record["outputs"][0]["answer"] for record in checkpoint.latest()}
        ordered = [(key, record and record["outputs"][0]["answer"]) for key, record in checkpoint.in_key_order(["p1", "p9", "p0"])]
    assert latest == {"p0": "1", "p1": "first", "p2": "3"}
    assert ordered == [("p1", "first"), ("p9", None), ("p0", "1")]
    assert "solve.jsonl" in caplog.text and "not UTF-8" in caplog.text


def test_latest_keeps_file_order_of_each_keys_last_line_and_reads_keys_that_need_escaping(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "solve.jsonl")
    odd = 'say "hi"\\ é'
    for record in _records(("a", "1"), (odd, "2"), ("b", "3"), ("a", "4")):
        checkpoint.append(record)
    with open(checkpoint.path, "ab") as handle:  # a record written by hand, key not first
        handle.write(json.dumps({"status": "ok", "outputs": [{"answer": "5"}], "key": "c"}).encode() + b"\n")
    checkpoint.close()
    assert [(r["key"], r["outputs"][0]["answer"]) for r in checkpoint.latest()] == [(odd, "2"), ("b", "3"), ("a", "4"), ("c", "5")]
    assert [record["outputs"][0]["answer"] for _, record in checkpoint.in_key_order(["c", odd, "a"])] == ["5", "2", "4"]
