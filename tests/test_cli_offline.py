"""The command as a process, as a user meets it: offline without benchmark copies, and a quiet first screen.

These run `python -m orca_math` in a child process because logging is set up once per process, and
the environment (no benchmark folder, no Hub) is the point. The model is a loopback `FaultServer`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orca_math.testing.fault_server import FaultConfig, FaultServer

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_DIR = Path(os.environ["ORCA_MATH_BENCHMARKS_DIR"])


@pytest.fixture(scope="module")
def server():
    with FaultServer(FaultConfig()) as running:
        yield running


@pytest.fixture
def seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"question": f"Kim has {i} shells and finds 4 more. How many?", "answer": str(i + 4)}) + "\n"
                            for i in range(2)))
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _orca_math(*argv, offline: bool = False, no_hub: bool = False, benchmarks: bool = True, cwd=None):
    env = dict(os.environ)
    if not benchmarks:
        env.pop("ORCA_MATH_BENCHMARKS_DIR", None)
    if not offline:
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("HF_DATASETS_OFFLINE", None)
    if no_hub:
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"  # refused at once, like a machine with no network
    return subprocess.run([sys.executable, "-m", "orca_math", *map(str, argv)], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=300)


def _model(server):
    return ["--model", server.base_url, "--model-name", "fault-model", "--no-progress"]


def test_generate_without_the_hub_fails_at_once_naming_the_cli_options(server, seeds, tmp_path):
    before = len(server.chat_requests())
    done = _orca_math("generate", "--seeds", seeds, "--out", tmp_path / "g", *_model(server), benchmarks=False, no_hub=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert message.startswith("error: cannot load gsm8k from the Hub") and "cannot be reached" in message
    assert "--benchmarks-dir" in message and "$ORCA_MATH_BENCHMARKS_DIR" in message and "--no-decontaminate" in message
    assert "path=" not in message and "Retrying" not in done.stderr
    assert len(server.chat_requests()) == before


def test_generate_with_hf_hub_offline_says_so(server, seeds, tmp_path):
    env_home = tmp_path / "hf-home"  # an empty Hugging Face cache
    done = subprocess.run(
        [sys.executable, "-m", "orca_math", "generate", "--seeds", str(seeds), "--out", str(tmp_path / "g"), *_model(server)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**{k: v for k, v in os.environ.items() if k != "ORCA_MATH_BENCHMARKS_DIR"}, "HF_HUB_OFFLINE": "1",
             "HF_HOME": str(env_home)},
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "HF_HUB_OFFLINE is set" in done.stderr and "--no-decontaminate" in done.stderr


def test_eval_without_the_hub_names_its_options(tmp_path):
    done = _orca_math("eval", "--model", "local", "--benchmarks", "svamp", "--grading", "exact", "--out", tmp_path / "e",
                      benchmarks=False, no_hub=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot load svamp from the Hub" in done.stderr and "--benchmarks-dir" in done.stderr
    assert "path=" not in done.stderr and "--no-decontaminate" not in done.stderr


def test_the_first_screen_has_no_benchmark_noise_and_v_shows_it_once(server, seeds, tmp_path):
    argv = ["generate", "--seeds", seeds, "--out", tmp_path / "g", *_model(server), "--dry-run"]
    quiet = _orca_math(*argv, offline=True)
    assert quiet.returncode == 0, quiet.stderr
    assert "asdiv" not in quiet.stderr and "gold" not in quiet.stderr
    verbose = _orca_math("-v", *argv, offline=True)
    assert verbose.returncode == 0
    assert verbose.stderr.count("asdiv: kept with gold=None 120 row(s)") == 1


def test_library_warnings_are_printed_once():
    code = ("from orca_math.cli import configure_logging; configure_logging(); "
            "import datasets.utils.logging, huggingface_hub.utils.logging, logging; "
            "datasets.utils.logging.get_logger('datasets.load').warning('from datasets'); "
            "huggingface_hub.utils.logging.get_logger('huggingface_hub.file_download').warning('from the hub'); "
            "logging.getLogger('orca_math.x').warning('from orca-math')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    for text in ("from datasets", "from the hub", "from orca-math"):
        assert done.stderr.count(text) == 1, done.stderr
