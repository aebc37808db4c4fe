"""A seed's size limit: a seed over `MAX_SEED_CHARS` is refused naming its file and line, a huge JSON Lines
line is refused without being read whole, and `--max-seed-chars` raises the limit without changing the run."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from orca_math.cli import main
from orca_math.data.seeds import MAX_SEED_CHARS, SeedError, read_seeds
from orca_math.testing.fault_server import FaultConfig, FaultServer

SMALL = {"question": "Bo has 3 cards and gets 2 more. How many?", "answer": "5"}


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_seed_over_the_limit_is_refused_naming_file_and_line(tmp_path):
    long_question = "Count the apples. " * (MAX_SEED_CHARS // 18 + 10)
    seeds = _write(tmp_path / "seeds.jsonl", [SMALL, {"question": long_question, "answer": "7"}])
    with pytest.raises(SeedError) as caught:
        list(read_seeds(seeds))
    message = str(caught.value)
    assert message.startswith("seeds.jsonl, line 2: the seed is ") and "over the limit" in message
    assert "--max-seed-chars" in message
    assert len(list(read_seeds(seeds, max_seed_chars=2 * MAX_SEED_CHARS))) == 2


def test_a_huge_line_is_refused_before_it_is_read_whole(tmp_path):
    seeds = _write(tmp_path / "seeds.jsonl", [SMALL, {"question": "x" * 5_000_000, "answer": "2"}])
    tracemalloc.start()
    try:
        with pytest.raises(SeedError) as caught:
            list(read_seeds(seeds))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value).startswith("seeds.jsonl, line 2: the line is over ")
    assert peak < 2_500_000  # well under the 5 MB line: it was never held whole


@pytest.mark.parametrize("bad", [0, -1, True, "big"])
def test_a_bad_limit_is_one_sentence(tmp_path, bad):
    with pytest.raises(SeedError, match="max_seed_chars must be a positive integer"):
        list(read_seeds(_write(tmp_path / "s.jsonl", [SMALL]), max_seed_chars=bad))


def _solve(server, seeds, out, *extra):
    return main(["solve", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name",
                 "fault-model", "--no-progress", *extra])


def test_cli_refuses_the_seed_before_any_call_and_the_flag_raises_the_limit(tmp_path, capsys):
    long_question = "Count the pears. " * 4000 + "How many pears?"  # about 68,000 characters
    seeds = _write(tmp_path / "seeds.jsonl", [SMALL, {"question": long_question, "answer": "7"}])
    with FaultServer(FaultConfig()) as server:
        assert _solve(server, seeds, tmp_path / "a.jsonl") == 2
        err = capsys.readouterr().err
        assert "error: seeds.jsonl, line 2: the seed is " in err and "Traceback" not in err
        assert server.chat_requests() == []  # refused before any model call
        assert _solve(server, seeds, tmp_path / "b.jsonl", "--max-seed-chars", "100000") == 0


def test_raising_the_limit_keeps_the_run(tmp_path, capsys):
    seeds = _write(tmp_path / "seeds.jsonl", [SMALL])
    with FaultServer(FaultConfig()) as server:
        assert _solve(server, seeds, tmp_path / "o.jsonl") == 0
        capsys.readouterr()
        assert _solve(server, seeds, tmp_path / "o.jsonl", "--max-seed-chars", "100000") == 0
    runs = list((tmp_path / "o.jsonl.run" / "runs").iterdir())
    assert len(runs) == 1  # the same run key: resumed, not started again
