"""`parse_json` and `json_bytes` read and write exactly what `json.loads` and `json.dumps` do.

They replace the standard library on the run's hot paths (checkpoint lines, the dataset's JSON
Lines), so any difference would change a file or a resume. The cases are compared against the
standard library itself, on values drawn at random, on real benchmark files (text this code was
not written against) and on inputs the fast parser refuses.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.files import json_bytes, parse_json, read_jsonl, write_jsonl

BENCHMARKS_DIR = Path(
    os.environ.get("ORCA_MATH_BENCHMARKS_DIR", Path(__file__).resolve().parents[2] / "shared/data/benchmarks")
)

ALPHABET = 'abc xyz 012 "\\/\n\t\r\b\f\x00\x1f\x7f é ÷ × √ π ∑ 中文 😀 \u2028\u2029'


def _value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 7, 2**53 + 1, -(2**63), 2**64, 10**30])
    if kind == 3:
        return rng.choice([0.0, -0.0, 0.1, 1 / 3, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, rng.uniform(-1e6, 1e6)])
    if kind == 4:
        return rng.choice([math.nan, math.inf, -math.inf, rng.random()])
    if kind == 5:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(12)))
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {"".join(rng.choice(ALPHABET) for _ in range(rng.randrange(6))): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN and -0.0 told from 0.0 (a written file would differ)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _stdlib_bytes(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def test_random_values_are_written_byte_for_byte_as_json_dumps_and_read_back_as_json_loads():
    rng = random.Random(20261207)
    for _ in range(3000):
        value = _value(rng)
        written = json_bytes(value)
        assert _same(json.loads(written), json.loads(_stdlib_bytes(value)))
        assert _same(parse_json(written), json.loads(written))
        assert _same(parse_json(written.decode("utf-8")), json.loads(written))


def test_written_text_matches_json_dumps_except_exponent_spelling():
    # The one spelling that differs: pydantic-core writes 1e-7 where Python writes 1e-07 (same number).
    rng = random.Random(7)
    for _ in range(2000):
        value = _value(rng)
        ours, theirs = json_bytes(value), _stdlib_bytes(value)
        if ours != theirs:
            assert b"e-" in theirs and _same(json.loads(ours), json.loads(theirs)), (value, ours, theirs)


@pytest.mark.parametrize("relative", ["gsm8k/test.jsonl", "asdiv/test.jsonl", "svamp/test.jsonl", "mawps/singleeq.jsonl"])
def test_benchmark_files_parse_and_write_as_the_standard_library_does(relative):
    path = BENCHMARKS_DIR / relative
    if not path.exists():
        pytest.skip(f"benchmark copy {path} is not here (set ORCA_MATH_BENCHMARKS_DIR)")
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        value = json.loads(line)
        assert _same(parse_json(line), value)
        assert json_bytes(value) == _stdlib_bytes(value)


@pytest.mark.parametrize("text", [
    '{"a":1} x', "[1,]", '{"a":1,}', '{"a":tru}', "01", "1.", ".5", "+1", '"\x00"', '{"a":"x\ny"}', "\ufeff{}", "",
])
def test_malformed_json_raises_the_standard_librarys_error(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        parse_json(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)


def test_what_only_the_standard_library_reads_is_still_read():
    assert parse_json('"\\udc00"') == "\udc00"  # a lone surrogate escape
    deep = "[" * 500 + "]" * 500  # past pydantic-core's nesting limit
    assert parse_json(deep) == json.loads(deep)
    with pytest.raises(UnicodeDecodeError):
        parse_json(b'{"a":"\xff"}')


def test_a_type_json_lacks_goes_to_default_or_raises_typeerror_as_json_dumps_does():
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    assert json_bytes({"x": Opaque()}, default=str) == b'{"x":"opaque!"}'
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_bytes({"x": Opaque()})
    with pytest.raises(UnicodeEncodeError):
        json_bytes({"s": "\ud800"})  # as json.dumps(...).encode("utf-8") refuses it


def test_write_jsonl_lines_read_back_equal_with_nan_and_non_ascii(tmp_path):
    rows = [{"question": "2 ÷ 4 = ?", "answer": "½", "score": math.nan}, {"id": 2, "big": 10**30, "neg": -0.0}]
    path = write_jsonl(rows, tmp_path / "rows.jsonl")
    text = path.read_text(encoding="utf-8")
    assert "÷" in text and "NaN" in text  # UTF-8 as written, NaN as Python writes it
    assert all(_same(a, b) for a, b in zip(read_jsonl(path), rows, strict=True))


def test_checkpoint_lines_round_trip_through_the_fast_paths(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "stage.jsonl")
    records = [{"key": f"k{i}", "status": "ok", "outputs": [{"id": f"k{i}", "text": "é\n\"" * i, "x": i / 7}], "drops": [],
                "usage": {"calls": 1}} for i in range(50)]
    for record in records:
        checkpoint.append(record)
    checkpoint.close()
    lines = (tmp_path / "stage.jsonl").read_bytes().splitlines()
    assert lines == [_stdlib_bytes(record) for record in records]  # the file is as the standard library wrote it
    assert list(checkpoint.latest()) == records
