"""User errors stay one sentence with exit 2: with `-v` too (the traceback is debug detail), and when
Ray's local cluster times out starting (what it started is stopped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orca_math.cli import main
from orca_math.testing.fault_server import FaultConfig, FaultServer


def _seeds(path, n=2):
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Bo has {i} cards and gets 2 more. How many?",
                                        "answer": str(i + 2)}) + "\n" for i in range(n)))
    return path


@pytest.mark.parametrize("fault", ["a rejected key (401)", "a run stopped by the server's refusal (404 for every item)"])
def test_a_user_error_with_v_keeps_exit_2_and_shows_the_traceback_as_debug(fault, tmp_path):
    key_check = "401" in fault
    with FaultServer(FaultConfig(api_key="sk-right-key-000" if key_check else None)) as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-wrong-key-111"}
        argv = ["solve", "--seeds", str(_seeds(tmp_path / "s.jsonl", 2 if key_check else 25)), "--model", server.base_url,
                "--model-name", "fault-model" if key_check else "no-such-model", "--no-progress"]
        quiet = subprocess.run([sys.executable, "-m", "orca_math", *argv, "--out", str(tmp_path / "a.jsonl")],
                               capture_output=True, text=True, env=env, timeout=300)
        verbose = subprocess.run([sys.executable, "-m", "orca_math", "-v", *argv, "--out", str(tmp_path / "b.jsonl")],
                                 capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert verbose.returncode == 2
    error_lines = [line for line in verbose.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and error_lines == [line for line in quiet.stderr.splitlines() if line.startswith("error: ")]
    assert "DEBUG orca_math.cli: traceback of the error below" in verbose.stderr and "Traceback" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1].startswith("error: ")  # the sentence comes last


def test_ray_start_up_timing_out_stops_what_it_started_and_says_what_to_do(tmp_path, monkeypatch, capsys):
    ray = pytest.importorskip("ray")
    started: list[subprocess.Popen] = []

    def init_that_times_out(*args, **kwargs):
        # What a node start-up on busy cores does: start its processes, then give up waiting for them.
        started.append(subprocess.Popen(["sleep", "600"]))
        raise Exception("The current node timed out during startup. This could happen because some of the raylet "
                        "failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(ray, "init", init_that_times_out)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with FaultServer(FaultConfig()) as server:
        code = main(["solve", "--seeds", str(_seeds(tmp_path / "s.jsonl")), "--out", str(tmp_path / "o.jsonl"),
                     "--model", server.base_url, "--model-name", "fault-model", "--no-progress", "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Ray's local cluster did not start in time" in err and "--ray-address auto" in err
    assert "Traceback" not in err
    assert started and started[0].poll() is not None  # the process the start-up left behind was stopped
