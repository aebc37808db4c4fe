"""Commands close every HTTP client and session they open, on success and on error.

Before, every successful `solve` or `generate` ended with ``ERROR asyncio: Unclosed client
session`` / ``Unclosed connector`` and a connection dump several KB long on stderr (the aiohttp
sessions of openai's DefaultAioHttpClient were never closed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orca_math.testing.fault_server import FaultConfig, FaultServer

REPO = Path(__file__).resolve().parents[1]


def _cli(*argv: str, key: str = "sk-test") -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": key, "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-m", "orca_math", *argv], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env)


def _commands(commands: list[list[str]]) -> subprocess.CompletedProcess:
    """Several `orca-math` commands in one interpreter (one start-up); prints each exit status."""
    code = ("import sys\nfrom orca_math.cli import main\n"
            f"for argv in {commands!r}:\n    print('rc', main(argv), flush=True)\n")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO, env=env)


@pytest.fixture
def seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Ann has {i + 2} pens and buys 3 more. How many?",
                                        "answer": str(i + 5)}) + "\n" for i in range(3)))
    return path


def _model(server: FaultServer) -> list[str]:
    return ["--model", server.base_url, "--model-name", "fault-model", "--no-progress"]


def test_solve_alone_leaves_no_unclosed_session(tmp_path, seeds):
    with FaultServer(FaultConfig()) as server:
        result = _cli("solve", "--seeds", str(seeds), *_model(server), "--out", str(tmp_path / "solved.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "Unclosed" not in result.stderr, result.stderr[-2000:]


def test_every_command_that_calls_a_model_leaves_no_unclosed_session(tmp_path, seeds):
    from tests.test_reliability_sampling import _reply  # answers each agent in its format

    with FaultServer(FaultConfig(reply=_reply)) as server:
        model = _model(server)
        result = _commands([
            ["solve", "--seeds", str(seeds), "--model", "openai:fault-model", "--base-url", server.base_url,
             "--no-progress", "--out", str(tmp_path / "o.jsonl")],
            ["generate", "--seeds", str(seeds), *model, "--no-decontaminate", "--out", str(tmp_path / "gen")],
            ["eval", *model, "--benchmarks", "gsm8k", "--limit", "2", "--grader", "exact", "--out", str(tmp_path / "eval")],
            ["sample", *model, "--data", str(seeds), "--k", "1", "--out", str(tmp_path / "samples")],
        ])
    assert result.stdout.count("rc 0") == 4, result.stdout + result.stderr[-2000:]
    assert "Unclosed" not in result.stderr, result.stderr[-2000:]


def test_runs_that_fail_or_stop_leave_no_unclosed_session(tmp_path, seeds):
    with FaultServer(FaultConfig(api_key="sk-right")) as rejecting, FaultServer(FaultConfig(rate_bad_format=1.0)) as failing:
        result = _commands([
            ["solve", "--seeds", str(seeds), *_model(rejecting), "--out", str(tmp_path / "rejected.jsonl")],
            ["solve", "--seeds", str(seeds), *_model(failing), "--out", str(tmp_path / "failing.jsonl")],
        ])
    assert [line for line in result.stdout.splitlines() if line.startswith("rc ")] == ["rc 2", "rc 1"], result.stdout
    assert "API key was rejected" in result.stderr
    assert "Unclosed" not in result.stderr, result.stderr[-2000:]
