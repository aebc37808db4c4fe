"""Ctrl-C with the embedded model: a real SIGINT to `orca-math` while llama.cpp generates in-process.

Before the fix the command printed "interrupted" and then died in libggml with a segfault (exit
139): the model was freed while a worker thread was still generating. Now the run is cancelled,
the generation stops within a token, the model is freed after it, and the exit status is 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the embedded local model needs the 'local' extra")
pytestmark = pytest.mark.slow

SEEDS = Path(__file__).parent.parent / "examples" / "seeds.jsonl"


def _default_sigint() -> None:
    # A child of a non-interactive shell starts with SIGINT ignored; Ctrl-C reaches a user's
    # terminal process with the default handler, which turns it into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _command(name: str, out: Path) -> list[str]:
    common = ["--seeds", str(SEEDS), "--model", "local", "--limit", "2", "--no-progress", "--no-cache"]
    if name == "solve":
        return [sys.executable, "-m", "orca_math", "solve", *common, "--out", str(out / "solved.jsonl")]
    # The teacher alone (no expansion, no hardening): a short run to resume after the interrupt.
    return [sys.executable, "-m", "orca_math", "generate", *common, "--out", str(out), "--no-expand", "--rounds", "0",
            "--no-dedup", "--no-decontaminate"]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for path in out.rglob("stages/solve.jsonl") for line in path.read_text().splitlines()]


def _finished_lines(out: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in out.rglob("stages/solve.jsonl"))


def _interrupt_after_first_item(command: list[str], out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, preexec_fn=_default_sigint, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        # One item finished means the model is loaded and busy with the next one: the moment that crashed.
        while _finished_lines(out) < 1 and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the command ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("name", ["generate", "solve"])
def test_ctrl_c_with_the_local_model_exits_130_and_the_run_resumes(name, tmp_path):
    out = tmp_path / "run"
    command = _command(name, out)
    interrupted = _interrupt_after_first_item(command, out)
    assert interrupted.returncode == 130, interrupted.stderr[-2000:]
    assert "interrupted: finished work is saved" in interrupted.stderr
    assert "Segmentation fault" not in interrupted.stderr and "Traceback" not in interrupted.stderr
    done_before = [record["key"] for record in _records(out) if record["status"] == "ok"]

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode in (0, 1), resumed.stderr[-2000:]  # 1: the tiny model failed an item
    keys = [record["key"] for record in _records(out)]
    assert len(set(keys)) == 2  # both seeds ended as one output or one failure
    assert all(keys.count(key) == 1 for key in done_before), "an item finished before the interrupt was done again"
    if name == "generate":
        assert "resumed run" in resumed.stdout
