"""One process at a time per output folder: a second one exits at once, naming the holder's PID.

Before, two identical `solve` commands on the same `--out` both ran, paid for the same prompts
twice and one died on a temp-file rename.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orca_math.engine.folder import LOCK_FILE, RunFolder, RunFolderBusyError
from orca_math.testing.fault_server import FaultConfig, FaultServer

REPO = Path(__file__).resolve().parents[1]


def _holder(root: Path) -> subprocess.Popen:
    """Another process that opens a run in `root` and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from orca_math.engine.folder import RunFolder
        run = RunFolder({str(root)!r}, {{"task": "hold"}})
        print("ready", flush=True)
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_a_second_process_on_the_same_folder_is_refused_with_the_holders_pid(tmp_path):
    holder = _holder(tmp_path / "out")
    try:
        with pytest.raises(RunFolderBusyError, match=rf"PID {holder.pid}\b.*{tmp_path / 'out'}") as info:
            RunFolder(tmp_path / "out", {"task": "other"})  # any run key: the folder's outputs are shared
        assert len(str(info.value).rstrip(".").split(". ")) == 1  # one sentence
        assert (tmp_path / "out" / LOCK_FILE).read_text().strip() == str(holder.pid)
    finally:
        _kill(holder)
    # The OS let go of the lock with the killed process: the folder is usable at once.
    run = RunFolder(tmp_path / "out", {"task": "other"})
    assert (tmp_path / "out" / LOCK_FILE).read_text().strip() == str(os.getpid())
    run.close()


def test_the_same_process_may_open_a_folder_again_and_closing_releases_it(tmp_path):
    first = RunFolder(tmp_path / "out", {"task": "a"})
    second = RunFolder(tmp_path / "out", {"task": "b"})  # e.g. a notebook running a pipeline twice
    first.close()
    second.close()
    holder = _holder(tmp_path / "out")  # nothing is held any more
    _kill(holder)


def test_a_second_solve_on_the_same_out_exits_at_once_without_calls(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 1?"}) + "\n" for i in range(3)))
    out = tmp_path / "solved.jsonl"
    with FaultServer(FaultConfig()) as server:
        holder = _holder(out.with_name(out.name + ".run"))
        try:
            env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
            second = subprocess.run(
                [sys.executable, "-m", "orca_math", "solve", "--seeds", str(seeds), "--model", server.base_url,
                 "--model-name", "fault-model", "--no-progress", "--out", str(out)],
                capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
            )
        finally:
            _kill(holder)
        requests = server.chat_requests()
    assert second.returncode == 2
    assert second.stderr.strip().count("\n") == 0 and f"PID {holder.pid}" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and requests == []
