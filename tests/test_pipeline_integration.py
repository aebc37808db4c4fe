"""The whole pipeline through the real HTTP path: a llama.cpp server on 127.0.0.1 with the tiny model."""

from __future__ import annotations

import json

import pytest

from orca_math.agents import AskMeAnything, Editor, Suggester
from orca_math.engine.checkpoint import CheckpointFile
from orca_math.models import load_model
from orca_math.pipeline import Decontaminate, Dedup, Expand, Filter, Harden, Pipeline, Solve, Verify

pytestmark = pytest.mark.integration


def test_every_input_is_accounted_for_on_a_real_server(llama_server, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    rows = [
        {"id": "a", "question": "Sara has 5 pencils and buys 3 more. How many pencils does she have?", "answer": "#### 8"},
        {"id": "b", "question": "A book costs 4 dollars. How much do 2 books cost?", "answer": "#### 8"},
    ]
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = load_model(llama_server)
    # Short replies keep the tiny model's minutes down: the test is about accounting, not about quality.
    short = {"max_tokens": 160}
    stages = [Expand(max_problems_per_seed=2, ask_me_anything=AskMeAnything(model, sampling=short)),
              Harden(rounds=1, suggester=Suggester(model, sampling=short), editor=Editor(model, sampling=short)),
              Dedup(), Decontaminate(benchmarks=["svamp"]), Solve(max_tokens=120), Verify(), Filter()]
    result = Pipeline(stages, model=model, concurrency=2, progress=False).run_sync(seeds, out=tmp_path / "out")

    previous_outputs = result.funnel.seeds
    for stage in result.funnel.stages:
        # each stage saw exactly what the one before produced, and ended every input once
        assert stage.inputs == previous_outputs, stage.name
        keys = [r["key"] for r in CheckpointFile(result.run_dir / "stages" / f"{stage.name}.jsonl").latest()]
        assert len(keys) == len(set(keys)) == stage.inputs
        previous_outputs = stage.outputs
    failures = [json.loads(line) for line in result.outputs["failures"].read_text().splitlines()]
    assert len(failures) == sum(s.failed for s in result.funnel.stages)
    assert all(f["reason"] for f in failures)
    assert result.load_dataset().num_rows == result.funnel.final_rows
    # real usage counts came back from the server
    assert result.funnel.prompt_tokens > 0 and result.funnel.completion_tokens > 0
