"""A budget is spent up to its limit, not stopped far below it, and never passed, even when replies grow.

Calls in flight hold their worst case (prompt with a counting margin, and max_tokens); a call that
does not fit waits for the calls in flight to settle, and the run stops only when nothing is in
flight and the next call still would not fit, so it stops at most one call's worst case short.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from orca_math._sync import run_sync
from orca_math.engine import Budget, BudgetExceededError, ManagedClient, PriceTable, RetryPolicy, UsageMeter
from orca_math.engine.runner import RunStopped
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultServer
from tests._engine_helpers import ask, openai_client, run
from tests._virtual_time import run_virtual

PRICE = {"fault-model": (1000.0, 1000.0)}  # USD per million tokens: $0.001 a token, as in the issue


async def _spend_until_stopped(client: ManagedClient, calls: int, **create_options) -> list[object]:
    try:
        return await asyncio.gather(*(client.create(ask(f"Problem {i}: how many apples in 7 boxes of 6?"), **create_options)
                                      for i in range(calls)), return_exceptions=True)
    finally:
        await client.close()


def test_a_budget_at_concurrency_64_is_spent_to_at_least_90_percent_and_never_passed():
    meter = UsageMeter(PriceTable(PRICE), budget=Budget(5.0))
    with FaultServer() as server:
        client = ManagedClient(openai_client(server.base_url), concurrency=64, meter=meter,
                               retry=RetryPolicy(initial_wait=0.01, jitter=0))
        # max_tokens 128: the worst case of one call is about $0.15, 3% of the budget.
        outcomes = run(_spend_until_stopped(client, 400, extra_create_args={"max_tokens": 128}))
        paid = len(server.chat_requests())
    stopped = [o for o in outcomes if isinstance(o, BudgetExceededError)]
    assert stopped and all(isinstance(o, BudgetExceededError) or hasattr(o, "content") for o in outcomes)
    assert 0.9 * 5.0 <= meter.cost_usd() <= 5.0, meter.cost_usd()
    assert paid == len(outcomes) - len(stopped)  # every request sent was paid for and kept
    assert "would pass the $5.00 budget" in str(stopped[0])


def test_replies_of_varying_length_never_pass_the_budget():
    rng = random.Random(7)

    def reply(_messages) -> str:
        return " ".join(["word"] * rng.randint(5, 300)) + " Final answer: 42"

    async def scenario() -> tuple[UsageMeter, list[object]]:
        meter = UsageMeter(PriceTable({"scripted": (0.0, 1000.0)}), budget=Budget(30.0))  # about 190 mean replies
        inner = ScriptedChatClient(responder=reply, latency=0.5)
        client = ManagedClient(inner, concurrency=64, meter=meter)
        return meter, await _spend_until_stopped(client, 1000, extra_create_args={"max_tokens": 400})

    meter, outcomes = run_virtual(scenario())  # virtual time: the same interleaving on any CPU
    assert any(isinstance(o, BudgetExceededError) for o in outcomes)
    assert 0.9 * 30.0 <= meter.cost_usd() <= 30.0, meter.cost_usd()


def test_a_call_that_does_not_fit_waits_for_calls_in_flight_instead_of_stopping():
    async def scenario() -> tuple[float, float]:
        meter = UsageMeter(PriceTable({"m": (0.0, 1000.0)}), budget=Budget(1.0), default_completion_tokens=600)
        first = await meter.reserve_when_affordable("m", 0)  # nothing measured: 600 tokens, $0.60
        waiting = asyncio.ensure_future(meter.reserve_when_affordable("m", 0))
        await asyncio.sleep(0)
        assert not waiting.done()  # $0.60 + $0.60 would pass $1: it waits rather than stopping the run
        meter.record("m", 0, 100, reserved=first)  # the reply was 100 tokens: $0.10, and now the mean
        second = await asyncio.wait_for(waiting, 1)
        return first, second

    first, second = run_virtual(scenario())
    assert first == pytest.approx(0.6) and second == pytest.approx(0.6)  # no max_tokens: the default bound holds


def test_with_nothing_in_flight_a_call_that_does_not_fit_stops_at_once():
    meter = UsageMeter(PriceTable({"m": (0.0, 1000.0)}), budget=Budget(1.0))
    meter.record("m", 0, 900)
    with pytest.raises(BudgetExceededError, match=r"spent \$0.9000, and the next call could cost up to \$0.9000"):
        run_virtual(meter.reserve_when_affordable("m", 0))


def test_a_pipeline_at_concurrency_64_spends_most_of_its_budget(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Sam has {i} marbles and finds 2 more. How many?"}) + "\n"
                             for i in range(300)))
    with FaultServer() as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        pipeline = Pipeline([Solve()], model=client, concurrency=64, progress=False, budget_usd=5.0, prices=PRICE)
        with pytest.raises(RunStopped, match="budget"):
            pipeline.run_sync(seeds, out=tmp_path / "out")
        run_sync(client.close())
        paid = len(server.chat_requests())
    records = [json.loads(line) for line in next((tmp_path / "out" / "runs").iterdir()).joinpath("stages", "solve.jsonl")
               .read_text().splitlines()]
    spent = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in records) / 1000
    # The Teacher sends max_tokens 1024: one call's worst case is about $1.1 here, and the run
    # stops at most that far short of the budget (it never passes it).
    assert 5.0 - 1.2 <= spent <= 5.0, spent
    assert paid == len(records)  # every paid call was kept
