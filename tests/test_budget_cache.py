"""Replies served from the response cache cost nothing: the funnel reports what they saved instead."""

from __future__ import annotations

import json

import pytest

from orca_math._sync import run_sync
from orca_math.engine import PriceTable, UsageMeter
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.records import Usage
from orca_math.testing.fault_server import FaultServer

PRICES = {"fault-model": (1000.0, 1000.0)}  # $0.001 a token


def _seeds(tmp_path, n: int):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Sam has {i} marbles and finds 2 more. How many?"}) + "\n"
                            for i in range(n)))
    return path


def test_a_fresh_rerun_served_from_the_cache_costs_nothing_and_says_what_it_saved(tmp_path):
    seeds = _seeds(tmp_path, 12)
    with FaultServer() as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        first = Pipeline([Solve()], model=client, concurrency=4, progress=False, prices=PRICES).run_sync(seeds, out=tmp_path / "out")
        paid = len(server.chat_requests())
        # The same folder, --fresh: a new run, every reply from out/cache.sqlite; a budget below the
        # first run's cost must not stop it, since nothing is spent.
        again = Pipeline([Solve()], model=client, concurrency=4, progress=False, prices=PRICES,
                         budget_usd=first.funnel.cost_usd / 2).run_sync(seeds, out=tmp_path / "out", fresh=True)
        run_sync(client.close())
        assert len(server.chat_requests()) == paid == 12
    assert first.funnel.cost_usd > 0 and first.funnel.saved_usd == 0
    assert again.funnel.final_rows == 12 and again.funnel.stages[0].cached_calls == 12
    assert again.funnel.cost_usd == 0
    assert again.funnel.saved_usd == pytest.approx(first.funnel.cost_usd)
    assert again.funnel.prompt_tokens == first.funnel.prompt_tokens  # the tokens are still shown
    assert "saved by cache: $" in again.funnel.render()
    summary = json.loads(again.outputs["summary"].read_text())
    funnel = summary["funnel"]
    assert funnel["cost_usd"] == 0 and funnel["saved_by_cache_usd"] == pytest.approx(first.funnel.cost_usd, abs=1e-6)


def test_usage_keeps_cached_tokens_apart():
    paid = Usage(prompt_tokens=10, completion_tokens=20, calls=1)
    cached = Usage(prompt_tokens=10, completion_tokens=20, calls=1, cached_calls=1, cached_prompt_tokens=10,
                   cached_completion_tokens=20)
    total = paid + cached
    assert (total.prompt_tokens, total.cached_prompt_tokens, total.cached_completion_tokens, total.cached_calls) == (20, 10, 20, 1)


def test_the_meter_prices_cache_hits_as_saved_not_spent():
    meter = UsageMeter(PriceTable(PRICES))
    assert meter.record_cache_hit("fault-model", 100, 400) == pytest.approx(0.5)
    assert meter.cost_usd() == 0 and meter.summary()["saved_by_cache_usd"] == pytest.approx(0.5)
