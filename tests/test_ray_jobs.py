"""`eval`, `sample` and the `generate` command give the same results on Ray as locally.

Loopback fault servers only; the session's local cluster (tests/_ray_helpers.py), except the CLI
test, which runs the command a new user runs: `--executor ray` with no address starts its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orca_math.engine.config import EngineConfig
from orca_math.evaluate import evaluate_sync
from orca_math.learn.sampling import sample_responses
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._ray_helpers import agent_reply, ray_cluster, ray_executor

pytestmark = [pytest.mark.timeout(240)]
__all__ = ["ray_cluster"]
ROOT = Path(__file__).resolve().parents[1]


def student_reply(messages) -> str:
    """A deterministic student: right on some questions, wrong on others."""
    text = str(messages[-1].get("content", ""))
    return f"Thinking it through.\nFinal answer: {len(text) % 9}"


def test_eval_gives_the_same_verdicts_on_ray_as_locally(ray_cluster, tmp_path):
    benchmarks = Path(os.environ["ORCA_MATH_BENCHMARKS_DIR"])
    results = {}
    with FaultServer(FaultConfig(reply=student_reply, rate_429=0.1, retry_after=0.02, seed=5)) as server:
        for name, executor in (("local", None), ("ray", ray_executor())):
            results[name] = evaluate_sync(server.base_url, ["gsm8k", "svamp"], limit=8, grading="exact", path=benchmarks,
                                          out=tmp_path / name, progress=False, executor=executor)
    rows = {name: sorted(result.dataset.to_list(), key=lambda row: (row["benchmark"], row["id"])) for name, result in results.items()}
    assert len(rows["local"]) == 16
    assert [(r["id"], r["correct"], r["response"]) for r in rows["ray"]] == [(r["id"], r["correct"], r["response"]) for r in rows["local"]]
    assert results["ray"].summary.to_dict()["benchmarks"] == results["local"].summary.to_dict()["benchmarks"]


def _attempts(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda row: (row["problem_id"], row["sample_index"]))


def test_sample_gives_the_same_attempts_on_ray_and_through_ray_data_llm(ray_cluster, tmp_path):
    # "http" runs the stage through ray.data.llm's HttpRequestProcessorConfig: the code path of the
    # vLLM engines on GPUs (capture, generate, replay), with its HTTP preprocess and postprocess.
    problems = [{"id": f"q{i}", "question": f"What is {i} plus {i * 3}?", "answer": f"Final answer: {4 * i}"} for i in range(6)]
    attempts = {}
    with FaultServer(FaultConfig(reply=student_reply)) as server:
        import asyncio

        for name, executor in (("local", None), ("ray", ray_executor()), ("ray.data.llm", ray_executor(llm="http"))):
            path = asyncio.run(sample_responses(server.base_url, problems, k=2, out=tmp_path / name, progress=False,
                                                engine=EngineConfig.of(concurrency=4, progress=False, cache=False), executor=executor))
            attempts[name] = _attempts(path)
        seeds = sorted({r.body.get("seed") for r in server.chat_requests()})
    assert len(attempts["local"]) == 12
    strip = [[{k: v for k, v in row.items() if k not in ("usage",)} for row in rows] for rows in attempts.values()]
    assert strip[1] == strip[0] and strip[2] == strip[0]
    assert seeds == [0, 1]  # k samples of a problem are k requests with their own seeds, on every path


def test_the_generate_command_with_executor_ray_makes_the_same_dataset(tmp_path):
    # What a new user runs on a laptop: no address (a local cluster starts and stops with the command).
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    rows = {}
    with FaultServer(FaultConfig(reply=agent_reply)) as server:
        for name, extra in (("local", []), ("ray", ["--executor", "ray", "--workers", "2"])):
            out = tmp_path / name
            command = [sys.executable, "-m", "orca_math", "generate", "--seeds", str(ROOT / "examples" / "seeds.jsonl"),
                       "--out", str(out), "--model", server.base_url, "--model-name", "fault-model", "--rounds", "1",
                       "--no-decontaminate", "--no-progress", "--format", "jsonl", *extra]
            done = subprocess.run(command, capture_output=True, text=True, timeout=200, env=env, cwd=tmp_path)
            assert done.returncode == 0, done.stderr[-3000:]
            lines = (out / "data.jsonl").read_text().splitlines()
            rows[name] = sorted((json.loads(line) for line in lines if line.strip()), key=lambda row: row["id"])
    assert len(rows["local"]) > 32
    assert rows["ray"] == rows["local"]
