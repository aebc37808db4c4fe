"""Bad numbers on the command line are refused when it is parsed, in the CLI's words, naming the flag."""

from __future__ import annotations

import json

import pytest

from orca_math.cli import main
from orca_math.testing.fault_server import FaultConfig, FaultServer


@pytest.fixture(scope="module")
def server():
    with FaultServer(FaultConfig()) as running:
        yield running


@pytest.fixture
def seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"question": f"Ann has {i} cats and gets 2 more. How many?", "answer": str(i + 2)}) + "\n"
                            for i in range(3)))
    return path


def _run(argv, capsys):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _solve(server, seeds, tmp_path, *extra):
    return ["solve", "--seeds", seeds, "--out", tmp_path / "s.jsonl", "--model", server.base_url, "--model-name", "fault-model",
            "--no-progress", *extra]


@pytest.mark.parametrize(
    ("extra", "expected", "internal"),
    [
        (["--concurrency", "0"], "--concurrency must be a positive integer, not '0'", "floor"),
        (["--budget-usd", "-1"], "--budget-usd must be a positive number, not '-1'", "already spent"),
        (["--limit", "-1"], "--limit must be a positive integer, not '-1'", "None"),
        (["--solutions", "zero"], "--solutions must be a positive integer, not 'zero'", "invalid"),
        (["--rpm", "nan"], "--rpm must be a positive number, not 'nan'", "invalid"),
    ],
)
def test_bad_numbers_name_the_flag_before_anything_runs(server, seeds, tmp_path, capsys, extra, expected, internal):
    before = len(server.requests)
    code, _, err = _run(_solve(server, seeds, tmp_path, *extra), capsys)
    assert code == 2
    assert err.startswith(f"error: {expected}") and "orca-math solve --help" in err
    assert internal not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert len(server.requests) == before and not (tmp_path / "s.jsonl.run").exists()


def test_a_budget_without_a_price_names_the_price_flag(server, seeds, tmp_path, capsys):
    before = len(server.requests)
    code, _, err = _run(_solve(server, seeds, tmp_path, "--budget-usd", "5"), capsys)
    assert code == 2 and "--price fault-model=IN,OUT" in err
    assert "UsageMeter" not in err and "PriceTable" not in err
    assert len(server.requests) == before


def test_a_negative_answer_cap_is_refused_before_any_call(server, seeds, tmp_path, capsys):
    before = len(server.requests)
    code, _, err = _run(["generate", "--seeds", seeds, "--out", tmp_path / "g", "--model", server.base_url, "--model-name",
                         "fault-model", "--no-progress", "--max-answer-chars", "-1"], capsys)
    assert code == 2 and "--max-answer-chars must be a positive integer" in err
    assert len(server.requests) == before


def test_many_rounds_warn_that_they_multiply_calls(server, seeds, tmp_path, capsys):
    code, _, err = _run(["generate", "--seeds", seeds, "--out", tmp_path / "g", "--model", server.base_url, "--model-name",
                         "fault-model", "--rounds", "7", "--dry-run", "--no-decontaminate"], capsys)
    assert code == 0 and "warning: --rounds 7" in err and "14 Suggester and Editor calls" in err
    code, _, err = _run(["generate", "--seeds", seeds, "--out", tmp_path / "g", "--model", server.base_url, "--model-name",
                         "fault-model", "--rounds", "2", "--dry-run", "--no-decontaminate"], capsys)
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["eval", "--model", "local", "--out", "o", "--audit-rate", "2"], "--audit-rate must be a share between 0 and 1"),
        (["sample", "--model", "hf:x", "--data", "d.jsonl", "--out", "o", "--top-p", "0"], "--top-p must be above 0 and at most 1"),
        (["sample", "--model", "hf:x", "--data", "d.jsonl", "--out", "o", "--samples", "0"], "--k must be a positive integer"),
        (["learn", "--model", "m", "--data", "d.jsonl", "--out", "o", "--holdout", "1"], "--holdout must be a share between 0 and 1, both excluded"),
        (["decontaminate", "d.jsonl", "--n", "0"], "--n must be a positive integer"),
        (["solve", "--seeds", "s.jsonl"], "the following arguments are required: --out"),
    ],
)
def test_every_command_words_parse_errors_the_same_way(argv, expected, capsys):
    code, _, err = _run(argv, capsys)
    assert code == 2 and err.startswith(f"error: {expected}") and len(err.strip().splitlines()) == 1
