"""Batch mode beyond the pipeline, and its price: sampling, evaluation, half price, the budget.

`sample_responses` and `evaluate` take `calls=` like every job on the one engine; the funnel and
the dataset card price batch calls at the batch price; a budget stops a run before it submits a
batch that could pass it.
"""

from __future__ import annotations

import json
import os

import pytest

from orca_math.engine.batch import BatchCalls, BatchStopped
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.batch_server import BatchServer, responder_reply
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._batch_helpers import MODEL, client_for, close_clients, options, solve_pipeline, write_seeds

PRICES = {MODEL: (1000.0, 2000.0)}  # USD per million tokens: a few requests cost dollars, easy to compare


@pytest.fixture(autouse=True)
def _closed_clients():
    yield
    close_clients()


def test_sample_responses_in_batch_mode_sends_k_distinct_seeded_requests(tmp_path):
    from orca_math._sync import run_sync
    from orca_math.learn.sampling import sample_responses

    problems = [{"id": f"p{i}", "question": f"What is {i} plus 2?", "answer": str(i + 2)} for i in range(3)]
    with BatchServer() as server:
        calls = BatchCalls(tmp_path / "out", options())
        run_sync(sample_responses(client_for(server), problems, k=2, out=tmp_path / "out", progress=False, calls=calls))
        (batch,) = server.created_batches()
    seeds = sorted((line["body"]["messages"][-1]["content"], line["body"].get("seed")) for line in batch.lines)
    assert len(batch.lines) == 6 and len(set(seeds)) == 6  # k samples are k requests, told apart by their seed
    assert all(line["body"]["temperature"] == 0.7 and line["body"]["top_p"] == 0.95 for line in batch.lines)
    attempts = [json.loads(line) for line in (tmp_path / "out" / "attempts.jsonl").read_text().splitlines()]
    assert sorted((a["problem_id"], a["sample_index"]) for a in attempts) == [(f"p{i}", k) for i in range(3) for k in range(2)]


def test_evaluate_in_batch_mode_answers_then_grades_in_batches(tmp_path):
    from orca_math.evaluate import evaluate_sync

    with BatchServer() as server:
        result = evaluate_sync(client_for(server), "gsm8k", limit=3, grading="llm", out=tmp_path / "eval",
                               path=os.environ["ORCA_MATH_BENCHMARKS_DIR"], progress=False,
                               calls=BatchCalls(tmp_path / "eval", options()))
        created = server.created_batches()
    assert len(result.dataset) == 3
    assert len(created) == 2 and [len(b.lines) for b in created] == [3, 3]  # answers first, then the grader's calls
    assert all("Final Verdict" in json.dumps(line["body"]) for line in created[1].lines)


def test_batch_calls_cost_half_the_online_price_in_the_funnel_and_the_card(tmp_path):
    from orca_math.dataset_card import build_card

    seeds = write_seeds(tmp_path / "seeds.jsonl", 4)
    with FaultServer(FaultConfig(reply=responder_reply, model=MODEL)) as online_server:
        online = Pipeline([Solve()], model=client_for(online_server), prices=PRICES, progress=False).run_sync(seeds, out=tmp_path / "on")
    with BatchServer() as server:
        batch = solve_pipeline(server, prices=PRICES).run_sync(seeds, out=tmp_path / "batch")
    on, off = online.funnel.to_dict(), batch.funnel.to_dict()
    assert on["prompt_tokens"] == off["prompt_tokens"] and on["completion_tokens"] == off["completion_tokens"]
    assert off["cost_usd"] == pytest.approx(on["cost_usd"] * 0.5, rel=1e-6) and off["cost_usd"] > 0
    card = build_card(tmp_path / "batch")
    assert f"${off['cost_usd']:.4f}" in card and "batch price" in card


def test_a_model_can_have_its_own_batch_price_multiplier(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    with BatchServer() as server:
        full = solve_pipeline(server, prices=PRICES, batch=options(price_multiplier=1.0)).run_sync(seeds, out=tmp_path / "a")
        own = solve_pipeline(server, prices=PRICES, batch=options(model_price_multipliers={MODEL: 0.25})).run_sync(seeds, out=tmp_path / "b")
    assert own.funnel.to_dict()["cost_usd"] == pytest.approx(full.funnel.to_dict()["cost_usd"] * 0.25, rel=1e-6)


def test_a_budget_stops_before_submitting_a_batch_that_could_pass_it(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 6)
    with BatchServer() as server:
        # ~100 prompt tokens + 1,024 (the teacher's max_tokens) at the batch price: about $1.07 a request.
        with pytest.raises(BatchStopped) as stopped:
            solve_pipeline(server, prices=PRICES, budget_usd=3.0).run_sync(seeds, out=tmp_path / "a")
        assert not server.created_batches() and ("POST", "/v1/files") not in server.state.requests
        assert "budget" in str(stopped.value) and "6 request(s)" in str(stopped.value)
        # Batches of 2 fit: the first goes, the second would pass $2.50 with the first in flight.
        with pytest.raises(BatchStopped):
            solve_pipeline(server, prices=PRICES, budget_usd=2.5, batch=options(max_requests=2)).run_sync(seeds, out=tmp_path / "b")
        assert len(server.created_batches()) == 1


def test_a_budget_stop_leaves_no_spool_behind_after_the_rerun(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with BatchServer() as server:
        with pytest.raises(BatchStopped):
            solve_pipeline(server, prices=PRICES, budget_usd=1.0).run_sync(seeds, out=tmp_path / "out")
    spools = list((tmp_path / "out" / "batches").glob("waiting-*.spool"))
    assert len(spools) == 1  # this process still holds it
    dead = spools[0].with_name("waiting-openai-999999999.spool")
    spools[0].rename(dead)  # as if written by a run that has exited
    with BatchServer() as server:
        solve_pipeline(server, prices=PRICES).run_sync(seeds, out=tmp_path / "out")
    assert not dead.exists()
