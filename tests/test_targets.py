"""Row targets: `Pipeline(target_rows=N)` and `generate --target-rows N` on scripted seeds and the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from orca_math.errors import ConfigError
from orca_math.pipeline import Expand, Filter, Pipeline, Solve, Verify
from orca_math.pipeline.targets import TargetProgress, band_quotas, next_draw, rows_per_seed
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

#: One number per question: each seed gives itself and one Ask-Me-Anything problem, both verified (2 rows,
#: 3 calls: Ask-Me-Anything, and the Teacher twice); seed 5 has two numbers (3 rows, 4 calls).
SEEDS = [{"id": f"s{i}", "question": f"Ann has {i + 3} cats. How many cats does she have?", "answer": f"#### {i + 3}"}
         for i in range(1, 13)]
SEEDS[4] = {"id": "s5", "question": "Bo has 4 pens and buys 6 more. How many pens?", "answer": "#### 10"}
CALLS_PER_SEED = {seed["id"]: 4 if seed["id"] == "s5" else 3 for seed in SEEDS}


def _stages():
    return [Expand(), Solve(), Verify(), Filter()]


def _write(tmp_path: Path, rows=SEEDS) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _run(tmp_path, target, *, seeds=None, concurrency=4, **kwargs):
    client = ScriptedChatClient(responder=pipeline_responder)
    pipeline = Pipeline(_stages(), model=client, managed=False, progress=False, concurrency=concurrency, target_rows=target)
    result = pipeline.run_sync(seeds or _write(tmp_path), out=tmp_path / "out", **kwargs)
    return result, client


def _asked_seeds(client) -> set[str]:
    """Seeds whose Ask-Me-Anything call was made (each seed's first call)."""
    texts = ["\n".join(str(m.content) for m in call["messages"]) for call in client.calls]
    return {seed["id"] for seed in SEEDS if any(seed["question"] in text and '"statement"' in text for text in texts)}


def test_target_stops_with_exactly_n_rows_in_seed_order_and_one_seed_of_extra_calls_at_most(tmp_path):
    result, client = _run(tmp_path, 7)
    ds = datasets.load_from_disk(str(result.dataset_path))
    assert len(ds) == 7 and result.funnel.final_rows == 7
    # Seed order: s1, its problem, s2, its problem, ... and the cut falls inside s4.
    assert ds["id"] == ["s1", "s1-ama1", "s2", "s2-ama1", "s3", "s3-ama1", "s4"]
    # 4 seeds are needed for 7 rows; at most one more seed's calls were made.
    needed = sum(CALLS_PER_SEED[f"s{i}"] for i in range(1, 5))
    assert needed <= len(client.calls) <= needed + max(CALLS_PER_SEED.values())
    assert _asked_seeds(client) <= {"s1", "s2", "s3", "s4", "s5"}
    target = result.extra["target"]
    assert target.met and target.rows == 7 and target.kept == 8
    drops = [json.loads(line) for line in result.outputs["drops"].read_text().splitlines()]
    assert [(d["id"], d["reason"]) for d in drops] == [("s4-ama1", "beyond_target")]
    summary = json.loads(result.outputs["summary"].read_text())
    assert summary["target"]["rows"] == 7 and summary["target"]["beyond_target"] == 1
    assert summary["funnel"]["final_rows"] == 7 and summary["funnel"]["cut_to"] == 7


def test_a_rerun_of_a_finished_target_makes_no_calls_and_writes_the_same_rows(tmp_path):
    first, _ = _run(tmp_path, 7)
    rows = datasets.load_from_disk(str(first.dataset_path)).to_list()
    second, client = _run(tmp_path, 7)
    assert second.resumed and second.run_key == first.run_key
    assert client.calls == []
    assert datasets.load_from_disk(str(second.dataset_path)).to_list() == rows


def test_a_rerun_retries_failed_items_only_and_keeps_the_target(tmp_path):
    seeds = _write(tmp_path)

    def broken(messages):  # every call about s6 fails to parse: its rows are missing, so more seeds are drawn
        text = "\n".join(str(m.content) for m in messages)
        return "no idea" if "9 cats" in text else pipeline_responder(messages)

    client = ScriptedChatClient(responder=broken)
    pipeline = Pipeline(_stages(), model=client, managed=False, progress=False, concurrency=2, target_rows=13)
    first = pipeline.run_sync(seeds, out=tmp_path / "out")
    assert first.extra["target"].met and "s6" not in datasets.load_from_disk(str(first.dataset_path))["id"]
    assert sum(stage.failed for stage in first.funnel.stages) > 0

    second, again = _run(tmp_path, 13, seeds=seeds, concurrency=2)
    assert second.run_key == first.run_key
    assert _asked_seeds(again) == {"s6"}  # nothing finished was asked again, and no new seed was drawn
    ids = datasets.load_from_disk(str(second.dataset_path))["id"]
    assert len(ids) == 13 and "s6" in ids  # the retried seed's rows take their place in seed order


def test_seeds_running_out_first_say_how_many_rows_were_reached(tmp_path):
    result, client = _run(tmp_path, 100, limit=3)
    target = result.extra["target"]
    assert not target.met and (target.rows, target.seeds_drawn, target.seeds_available) == (6, 3, 3)
    assert "6 of 100 rows" in target.message()
    assert len(datasets.load_from_disk(str(result.dataset_path))) == 6


def test_the_target_is_in_the_run_key(tmp_path):
    seeds = _write(tmp_path)
    keys = {Pipeline(_stages(), model="local", target_rows=n).config(seeds, {"limit": None})["target_rows"] for n in (3, 4)}
    assert keys == {3, 4}
    assert "target_rows" not in Pipeline(_stages(), model="local").config(seeds, {"limit": None})


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "7"])
def test_a_bad_target_is_one_sentence(bad):
    with pytest.raises(ConfigError, match="target_rows must be a whole number"):
        Pipeline(_stages(), model="local", target_rows=bad)


def test_ray_with_a_target_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="--target-rows runs on the local executor, not ray"):
        Pipeline(_stages(), model="local", executor="ray", target_rows=5)


def test_wave_sizes_never_overshoot_by_more_than_one_seed():
    progress = TargetProgress(100, kept=40, seeds_drawn=10, seeds_available=1000)
    # At most 6 rows a seed so far: 60 more rows need at least 10 more seeds, and 10 more cannot overshoot.
    assert next_draw(progress, {"": 6}, batch=False) == 20
    # At most 2 a seed: 30 more seeds could not overshoot, but a wave at most doubles what was drawn.
    assert next_draw(progress, {"": 2}, batch=False) == 20
    assert next_draw(TargetProgress(100, kept=97, seeds_drawn=30, seeds_available=1000), {"": 6}, batch=False) == 31
    assert next_draw(TargetProgress(100, kept=0, seeds_drawn=4, seeds_available=1000), {"": 0}, batch=False) == 8
    # Batch: the mean yield plus a tenth, in one wave.
    assert next_draw(TargetProgress(100, kept=40, seeds_drawn=10, seeds_available=1000), None, batch=True) == 27
    assert next_draw(TargetProgress(100, kept=40, seeds_drawn=10, seeds_available=12), {"": 4}, batch=False) == 12


def test_band_waves_draw_for_the_band_that_needs_the_most_seeds():
    progress = TargetProgress(10, quotas={"hard": 5, "easy": 5}, kept_by_band={"hard": 1, "easy": 4}, seeds_drawn=4,
                              seeds_available=100)
    # hard: 4 more at most 1 a seed -> 4 seeds; easy: 1 more at most 2 a seed -> at least 1.
    assert next_draw(progress, {"hard": 1, "easy": 2}, batch=False) == 8
    assert next_draw(progress, {"hard": 0, "easy": 2}, batch=False) == 8  # hard never seen yet: double
    assert band_quotas(7, {"hard": 0.5, "medium": 0.3, "easy": 0.2}) == {"hard": 4, "medium": 2, "easy": 1}
    assert sum(band_quotas(10_001, {"hard": 0.5, "medium": 0.3, "easy": 0.2}).values()) == 10_001


def test_rows_per_seed_follows_generated_ids():
    assert rows_per_seed(["a", "b", "c"], ["a", "a-ama1", "c-h1", "c-h1-h2"]) == [2, 0, 2]
    assert rows_per_seed(["a", "b"], ["a", "zzz"]) is None


def _orca_math(*argv, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1]))}
    return subprocess.run([sys.executable, "-m", "orca_math", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_cli_refuses_target_rows_with_ray_in_one_sentence(tmp_path):
    done = _orca_math("generate", "--seeds", _write(tmp_path), "--out", tmp_path / "out", "--target-rows", "3",
                      "--executor", "ray", "--no-decontaminate")
    assert done.returncode == 2, done.stderr
    assert "--target-rows runs on the local executor" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_cli_with_the_embedded_model_stops_when_the_seeds_run_out_and_says_how_far_it_got(tmp_path):
    pytest.importorskip("llama_cpp", reason="the embedded local model needs the 'local' extra")
    seeds = Path(__file__).parent.parent / "examples" / "seeds.jsonl"
    # Without Ask-Me-Anything and hardening a seed gives at most its own row, so one seed cannot make 2 rows:
    # the run always ends with the seeds used up, whatever the tiny model answers.
    argv = ["generate", "--seeds", seeds, "--out", tmp_path / "out", "--model", "local", "--limit", "1", "--target-rows", "2",
            "--no-expand", "--rounds", "0", "--no-dedup", "--no-decontaminate", "--no-progress"]
    done = _orca_math(*argv)
    target = json.loads((tmp_path / "out" / "summary.json").read_text())["target"]
    assert not target["met"] and target["seeds_drawn"] == target["seeds_available"] == 1
    assert done.returncode == 1, done.stderr[-2000:]  # the CLI's rule: finished, but short of the target
    assert f"target not reached: {target['rows']} of 2 rows; the seeds ran out after all 1 were drawn" in done.stderr
    assert len(datasets.load_from_disk(str(tmp_path / "out" / "dataset"))) == target["rows"] <= 1
    assert "Traceback" not in done.stderr


def test_a_target_in_batch_mode_sends_each_wave_as_a_batch_and_cuts_to_n(tmp_path):
    from orca_math.testing.batch_server import BatchServer
    from tests._batch_helpers import close_clients, solve_pipeline, write_seeds

    seeds = write_seeds(tmp_path / "seeds.jsonl", 40)
    try:
        with BatchServer() as server:
            result = solve_pipeline(server, target_rows=15).run_sync(seeds, out=tmp_path / "out")
            batches = server.created_batches()
            billed = server.billed
    finally:
        close_clients()
    ids = result.load_dataset()["id"]
    assert ids == [f"s{i:04d}" for i in range(15)]  # seed order, exactly the target
    # Waves: 2 seeds (one per ten rows asked), then the mean yield plus a tenth: ceil(13 * 1.1) = 15 more.
    assert [len(batch.lines) for batch in batches] == [2, 15]
    assert max(billed.values()) == 1 and sum(billed.values()) == 17
    assert result.extra["target"].met


def test_cli_target_in_batch_mode_without_waiting_keeps_its_target_over_the_reruns(tmp_path, capsys):
    """`generate --batch --no-wait --target-rows N`: each rerun continues the wave the last one drew, bills nothing twice."""
    from orca_math.cli import main
    from orca_math.testing.batch_server import BatchServer, BatchServerConfig
    from tests._batch_helpers import MODEL, write_seeds

    seeds = write_seeds(tmp_path / "seeds.jsonl", 40)
    out = tmp_path / "data"
    with BatchServer(BatchServerConfig(polls_before_done=1)) as server:
        argv = ["generate", "--seeds", seeds, "--out", out, "--model", server.base_url, "--model-name", MODEL, "--no-expand",
                "--rounds", "0", "--no-dedup", "--no-decontaminate", "--no-progress", "--batch", "--no-wait",
                "--batch-poll-seconds", "0.01", "--target-rows", "15"]
        statuses = []
        while len(statuses) < 20 and (not statuses or statuses[-1] == 3):  # 3: paused, batches still running
            statuses.append(main([str(arg) for arg in argv]))
        shown = capsys.readouterr()
        batches = [len(batch.lines) for batch in server.created_batches()]
        billed = server.billed
    assert statuses[-1] == 0 and 3 in statuses, shown.err[-2000:]
    assert batches == [2, 15]  # one seed per ten rows asked, then the measured yield plus a tenth
    assert max(billed.values()) == 1 and sum(billed.values()) == 17
    assert datasets.load_from_disk(str(out / "dataset"))["id"] == [f"s{i:04d}" for i in range(15)]
    assert "target reached: 15 rows from 17 of 40 seeds" in shown.out


def test_a_target_runs_time_is_every_waves_and_each_stage_has_its_own(tmp_path):
    result, _ = _run(tmp_path, 7)
    assert result.extra["target"].waves >= 2
    funnel = json.loads(result.outputs["summary"].read_text())["funnel"]
    stages = {stage["name"]: stage["seconds"] for stage in funnel["stages"]}
    assert set(stages) == {"expand", "solve", "verify", "filter"} and all(s > 0 for s in stages.values())
    assert funnel["seconds"] >= sum(stages.values())  # stages run one after another inside each wave


def test_adding_an_earlier_waves_funnel_adds_its_time_per_stage():
    from orca_math.engine.summary import Funnel, StageSummary

    last = Funnel(seeds=4, stages=[StageSummary("solve", seconds=1.5), StageSummary("verify", seconds=0.5)], seconds=2.5)
    last.add_time(Funnel(seeds=2, stages=[StageSummary("solve", seconds=1.0), StageSummary("verify", seconds=0.25)],
                         seconds=1.5))
    assert last.seconds == 4.0 and [s.seconds for s in last.stages] == [2.5, 0.75]
    assert last.to_dict()["stages"][0]["seconds"] == 2.5
