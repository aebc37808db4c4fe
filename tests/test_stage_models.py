"""A stage built with its own model gets the same engine as the pipeline's model: retries, cache, budget."""

from __future__ import annotations

import json

import pytest

from orca_math.engine.client import RetryPolicy
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer
from orca_math.testing.responders import pipeline_responder

SEEDS = [
    {"id": "a", "question": "Ann has 2 cats and gets 3 more. How many cats does she have?"},
    {"id": "b", "question": "Bo has 4 pens and buys 6 more. How many pens does he have?"},
]


def _seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in SEEDS))
    return path


def test_a_stage_model_from_a_spec_is_resolved_once_retried_and_cached(tmp_path):
    pipeline_model = ScriptedChatClient(responder=pipeline_responder)
    with FaultServer(FaultConfig(outcomes=["500"])) as server:
        pipeline = Pipeline(
            [Solve(model=server.base_url)], model=pipeline_model, progress=False, concurrency=1,
            client_options={"retry": RetryPolicy(initial_wait=0.01, jitter=0.0)},
        )
        result = pipeline.run_sync(_seeds(tmp_path), out=tmp_path / "out")
        chats = len(server.chat_requests())
        model_lookups = [r for r in server.requests if r.path.endswith("/models")]
        rerun = pipeline.run_sync(_seeds(tmp_path), out=tmp_path / "out", fresh=True)
        assert len(server.chat_requests()) == chats, "the fresh rerun must be answered from the shared cache"
        # The first run closed the client it built, so the rerun builds (and looks up) a fresh one.
        assert len([r for r in server.requests if r.path.endswith("/models")]) == 2

    assert chats == 3  # one 500, retried, then one reply per problem
    assert len(model_lookups) == 1, "the stage's model spec is resolved once per run, not once per bind"
    assert result.funnel.final_rows == rerun.funnel.final_rows == 2
    assert set(result.load_dataset()["teacher_model"]) == {"fault-model"}
    assert pipeline_model.calls == []


def test_stage_costs_use_the_stage_models_price(tmp_path):
    pricey = ScriptedChatClient(responder=pipeline_responder, model="pricey")
    pipeline = Pipeline([Solve(model=pricey)], model=ScriptedChatClient(model="cheap"), progress=False,
                        prices={"cheap": (0.0, 0.0), "pricey": (1000.0, 2000.0)})
    result = pipeline.run_sync(_seeds(tmp_path), out=tmp_path / "out")
    solve = result.funnel.stages[0]
    assert solve.prompt_tokens > 0
    assert solve.cost_usd == pytest.approx((solve.prompt_tokens * 1000.0 + solve.completion_tokens * 2000.0) / 1e6)


def test_a_budget_needs_a_price_for_every_stage_model(tmp_path):
    pipeline = Pipeline([Solve(model=ScriptedChatClient(model="unpriced"))], model=ScriptedChatClient(model="cheap"),
                        progress=False, budget_usd=1.0, prices={"cheap": (1.0, 1.0)})
    with pytest.raises(ValueError, match="A budget needs a price for model 'unpriced'"):
        pipeline.run_sync(_seeds(tmp_path), out=tmp_path / "out")


def test_one_budget_covers_the_pipeline_and_stage_models(tmp_path):
    pricey = ScriptedChatClient(responder=pipeline_responder, model="pricey")
    pipeline = Pipeline([Solve(model=pricey)], model=ScriptedChatClient(model="cheap"), progress=False, concurrency=1,
                        budget_usd=1e-9, prices={"cheap": (0.0, 0.0), "pricey": (1000.0, 1000.0)})
    from orca_math.engine.runner import RunStopped

    with pytest.raises(RunStopped, match="budget"):
        pipeline.run_sync(_seeds(tmp_path), out=tmp_path / "out")
    assert pricey.calls == [], "the budget stops the stage's model before its first call"
