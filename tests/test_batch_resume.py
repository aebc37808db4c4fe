"""Batch mode across process deaths and restarts: killed after submitting, killed after downloading, --no-wait.

The fake batch server runs in the test process, so it outlives the killed runs and counts what
it would bill. A rerun must poll what is still running, never resubmit what finished, lose
nothing, duplicate nothing, and pay for each request once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from orca_math.engine.batch import BatchState, RunPaused, state_path
from orca_math.testing.batch_server import BatchServer, BatchServerConfig
from tests._batch_helpers import close_clients, failures, rows, solve_pipeline, write_seeds

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from orca_math.engine.batch import state
    from orca_math.models import load_model
    from orca_math.pipeline import Pipeline, Solve
    from orca_math.engine.batch import BatchOptions

    base_url, seeds, out, crash = sys.argv[1:5]
    if crash == "after_submit":
        update = state.BatchState.update_batch
        def update_then_die(self, batch_id, **fields):
            update(self, batch_id, **fields)
            if fields.get("state") == "submitted":
                os.kill(os.getpid(), signal.SIGKILL)
        state.BatchState.update_batch = update_then_die
    elif crash == "after_download":
        store = state.BatchState.store_results
        def store_then_die(self, *args, **kwargs):
            store(self, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)  # results stored, no item checkpointed yet
        state.BatchState.store_results = store_then_die
    client = load_model(base_url, model="batch-model", api_key="sk-test")
    pipeline = Pipeline([Solve()], model=client, mode="batch", progress=False,
                        batch=BatchOptions(poll_seconds=0.01, max_poll_seconds=0.05))
    pipeline.run_sync(seeds, out=out)
    print("finished")
""")


@pytest.fixture(autouse=True)
def _closed_clients():
    yield
    close_clients()


def _run(tmp_path, server, seeds, crash: str) -> subprocess.CompletedProcess:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), server.base_url, str(seeds), str(tmp_path / "out"), crash],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("crash", ["after_submit", "after_download"])
def test_a_run_killed_then_rerun_resubmits_nothing_loses_nothing_and_pays_once(tmp_path, crash):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 6)
    with BatchServer(BatchServerConfig(polls_before_done=1)) as server:
        killed = _run(tmp_path, server, seeds, crash)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert len(server.created_batches()) == 1
        rerun = _run(tmp_path, server, seeds, "none")
        assert rerun.returncode == 0 and "finished" in rerun.stdout, rerun.stderr[-2000:]
        billed = server.billed
        created = server.created_batches()
    assert len(created) == 1  # the rerun polled (or read back) the batch it had, and sent nothing new
    assert sum(billed.values()) == 6 and max(billed.values()) == 1  # each request paid once
    from datasets import load_from_disk

    ids = sorted(load_from_disk(str(tmp_path / "out" / "dataset"))["id"])
    assert ids == [f"s{i:04d}" for i in range(6)]  # nothing lost, nothing duplicated
    assert failures(tmp_path / "out") == []


def test_no_wait_submits_pauses_with_a_rerun_line_and_the_rerun_polls_instead_of_resubmitting(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 6)
    with BatchServer(BatchServerConfig(polls_before_done=1)) as server:
        with pytest.raises(RunPaused) as paused:
            solve_pipeline(server).run_sync(seeds, out=tmp_path / "out", wait=False)
        assert "Rerun the same command to continue" in str(paused.value)
        assert len(server.created_batches()) == 1
        with pytest.raises(RunPaused):  # still running at the provider: polled once, nothing resent
            solve_pipeline(server).run_sync(seeds, out=tmp_path / "out", wait=False)
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out", wait=False)
        assert len(server.created_batches()) == 1 and sum(server.billed.values()) == 6
    assert len(rows(result)) == 6
    assert [b.state for b in BatchState(state_path(tmp_path / "out")).batches()] == ["stored"]


def test_a_crash_between_creating_a_batch_and_recording_its_id_finds_the_batch_at_the_provider(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with BatchServer(BatchServerConfig(polls_before_done=1)) as server:
        with pytest.raises(RunPaused):
            solve_pipeline(server).run_sync(seeds, out=tmp_path / "out", wait=False)
        state = BatchState(state_path(tmp_path / "out"))
        (record,) = state.batches()
        state.update_batch(record.id, remote_id=None, state="prepared")  # as if killed before the id was written
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        assert len(server.created_batches()) == 1 and sum(server.billed.values()) == 3
    assert len(rows(result)) == 3


def test_a_fresh_rerun_serves_every_stored_result_and_sends_nothing(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 4)
    with BatchServer() as server:
        solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out", fresh=True)
        assert len(server.created_batches()) == 1 and sum(server.billed.values()) == 4
    assert len(rows(result)) == 4
