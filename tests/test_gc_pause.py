"""The collector is off while a command starts, and on again once its work begins (orca_math.gc_pause)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orca_math.engine.gc_tuning import tuned_gc
from orca_math.gc_pause import end_start_pause, pause_during_start, start_paused
from orca_math.testing.fault_server import FaultServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _collector_restored():
    was_enabled = gc.isenabled()
    yield
    end_start_pause()
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_a_pause_turns_the_collector_off_until_it_is_ended():
    pause_during_start(limit=600)
    assert not gc.isenabled() and start_paused()
    end_start_pause()
    assert gc.isenabled() and not start_paused()
    end_start_pause()  # a second end changes nothing
    assert gc.isenabled()


def test_a_pause_ends_on_its_own_after_its_limit():
    pause_during_start(limit=0.05)
    assert not gc.isenabled()
    deadline = time.monotonic() + 10
    while not gc.isenabled() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gc.isenabled() and not start_paused()


def test_a_collector_its_owner_turned_off_stays_off():
    gc.disable()
    pause_during_start(limit=600)
    assert not start_paused()
    end_start_pause()
    with tuned_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_run_ends_the_pause_and_leaves_the_collector_on():
    pause_during_start(limit=600)
    with tuned_gc():
        assert gc.isenabled() and not start_paused()
        assert gc.get_threshold()[0] >= 50_000  # the run's own settings apply as usual
    assert gc.isenabled() and gc.get_threshold()[0] < 50_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_during_a_pause_has_its_collector_on():
    pause_during_start(limit=600)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        os.write(write, b"on" if gc.isenabled() else b"off")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 8)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"on"
    assert not gc.isenabled()  # the parent's pause goes on


def test_the_console_command_starts_paused_and_a_solve_run_turns_the_collector_back_on(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 1?"}) + "\n" for i in range(3)))
    with FaultServer() as server:
        script = textwrap.dedent(f"""
            import atexit, gc, sys
            import orca_math.gc_pause as pause
            pause.START_PAUSE_LIMIT = 600  # only the run may end the pause here
            import orca_math.cli as cli
            main = cli.main
            def observed_main():
                print("at start: collector", "on" if gc.isenabled() else "off", flush=True)
                return main()
            cli.main = observed_main
            atexit.register(lambda: print("at exit: collector", "on" if gc.isenabled() else "off", flush=True))
            sys.argv = ["orca-math", "solve", "--seeds", {str(seeds)!r}, "--out", {str(tmp_path / "out.jsonl")!r},
                        "--model", {server.base_url!r}, "--model-name", "fault-model", "--no-progress"]
            cli.console_main()
            """)
        env = {**os.environ, "OPENAI_API_KEY": "sk-test",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                              cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "at start: collector off" in done.stdout and "at exit: collector on" in done.stdout
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
