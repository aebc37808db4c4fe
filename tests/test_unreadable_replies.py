"""A 200 reply whose body is not a chat completion (an HTML error page, say) is retried like a 5xx.

Before, the openai SDK handed a ``text/html`` body back as a string and the autogen client failed
on ``'str' object has no attribute 'usage'``: the item failed at once, Harden lost the seed row,
and twenty such items in a row stopped the run as a "systematic" failure.
"""

from __future__ import annotations

import json

import pytest

from orca_math._sync import run_sync
from orca_math.engine import EngineConfig, ManagedClient, RetriesExhaustedError, RetryPolicy
from orca_math.models import load_model
from orca_math.pipeline import Harden, Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._engine_helpers import ask, openai_client, run
from tests._ray_helpers import agent_reply

FAST_RETRY = RetryPolicy(initial_wait=0.01, max_wait=0.05, jitter=0.01)


async def _create_and_close(client: ManagedClient, **create_args):
    try:
        return await client.create(ask(), **create_args)
    finally:
        await client.close()


def _seeds(tmp_path, n: int):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "question": f"Sam has {i} apples and finds 2 more. How many now?",
                                        "answer": str(i + 2)}) + "\n" for i in range(n)))
    return path


@pytest.mark.parametrize("aiohttp", [False, True], ids=["httpx", "aiohttp"])
def test_an_html_page_with_status_200_is_retried_and_the_call_succeeds(aiohttp):
    with FaultServer(FaultConfig(outcomes=["html", "html"])) as server:
        client = ManagedClient(openai_client(server.base_url, aiohttp=aiohttp), retry=FAST_RETRY)
        result = run(_create_and_close(client))
        outcomes = [r.outcome for r in server.chat_requests()]
    assert "Final answer: 42" in result.content
    assert outcomes == ["html", "html", "ok"]
    assert client.stats()["retries"] == 2


def test_html_replies_that_never_stop_end_as_retries_exhausted_naming_the_body():
    with FaultServer(FaultConfig(rate_html=1.0)) as server:
        client = ManagedClient(openai_client(server.base_url), retry=RetryPolicy(max_attempts=3, initial_wait=0.01,
                                                                                  max_wait=0.01, jitter=0.0))
        with pytest.raises(RetriesExhaustedError, match="not a valid chat completion") as caught:
            run(_create_and_close(client))
        assert len(server.chat_requests()) == 3
    assert "Traceback" not in str(caught.value)


def test_a_wrong_call_is_not_mistaken_for_an_unreadable_reply():
    with FaultServer(FaultConfig()) as server:
        client = ManagedClient(openai_client(server.base_url), retry=FAST_RETRY)
        with pytest.raises(ValueError, match="no_such_option"):
            run(_create_and_close(client, extra_create_args={"no_such_option": 1}))
        assert server.chat_requests() == []  # refused before sending, and never retried


def test_solve_retries_html_replies_and_the_first_twenty_items_do_not_stop_the_run(tmp_path):
    # The first 40 replies are HTML pages: each of the first 20 items gets one (or two) before a
    # good reply. Before the fix every one of them failed and the run stopped with "the first 20
    # items of solve all failed the same way".
    with FaultServer(FaultConfig(outcomes=["html"] * 40)) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test", timeout=5.0)
        # No breaker: 40 failures in a row would open it, which is right for a failing endpoint but not the subject here.
        engine = EngineConfig(concurrency=8, progress=False, retry=FAST_RETRY, breaker=False)
        pipeline = Pipeline([Solve()], model=client, engine=engine)
        result = pipeline.run_sync(_seeds(tmp_path, 30), out=tmp_path / "out")
        run_sync(client.close())
        outcomes = [r.outcome for r in server.chat_requests()]
    assert outcomes.count("html") == 40
    assert sorted(result.load_dataset()["id"]) == sorted(f"s{i}" for i in range(30))
    assert result.outputs["failures"].read_text() == ""


def test_harden_keeps_every_seed_row_when_some_replies_are_html(tmp_path):
    config = FaultConfig(reply=agent_reply, rate_html=0.3, seed=3)
    with FaultServer(config) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test", timeout=5.0)
        pipeline = Pipeline([Harden(rounds=1)], model=client, engine=EngineConfig(concurrency=4, progress=False, retry=FAST_RETRY))
        result = pipeline.run_sync(_seeds(tmp_path, 12), out=tmp_path / "out")
        run_sync(client.close())
        outcomes = [r.outcome for r in server.chat_requests()]
    assert outcomes.count("html") > 3
    ids = set(result.load_dataset()["id"])
    assert {f"s{i}" for i in range(12)} <= ids  # every seed row kept
    assert {f"s{i}-h1" for i in range(12)} <= ids  # and every hardened problem made
    assert result.outputs["failures"].read_text() == ""
