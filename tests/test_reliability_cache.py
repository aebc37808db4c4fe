"""A reply an agent rejects is not served again from the response cache, so a rerun really retries.

Before, every reply was cached, parseable or not: a server that gave unusable replies for a while
left its failed items failing forever on resume, with zero requests made.
"""

from __future__ import annotations

import json

import pytest
from autogen_core.models import UserMessage

from orca_math._sync import run_sync
from orca_math.agents import AgentFailedError, Teacher
from orca_math.engine.cache import ResponseCache
from orca_math.engine.client import ManagedClient, RetryPolicy
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer

ITEMS = 5


def _seeds(path):
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Ann has {i} pens and buys 3 more. How many?"}) + "\n"
                            for i in range(ITEMS)))
    return path


def test_a_rerun_retries_items_whose_replies_did_not_parse(tmp_path):
    # Unusable replies for every attempt of run 1 (3 per item), good ones after.
    config = FaultConfig(outcomes=["bad_format"] * (3 * ITEMS))
    seeds = _seeds(tmp_path / "seeds.jsonl")
    with FaultServer(config) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        try:
            pipeline = Pipeline([Solve()], model=client, concurrency=2, progress=False)
            first = pipeline.run_sync(seeds, out=tmp_path / "out")
            first_requests = len(server.chat_requests())
            second = pipeline.run_sync(seeds, out=tmp_path / "out")
            second_requests = len(server.chat_requests()) - first_requests
            third = pipeline.run_sync(seeds, out=tmp_path / "out")
            third_requests = len(server.chat_requests()) - first_requests - second_requests
        finally:
            run_sync(client.close())
    assert first.funnel.final_rows == 0 and first_requests == 3 * ITEMS
    assert second.funnel.final_rows == ITEMS and second_requests == ITEMS  # asked again, once each
    assert third.funnel.final_rows == ITEMS and third_requests == 0  # good replies are still cached


def test_a_rejected_reply_leaves_the_cache_and_a_good_one_stays(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    inner = ScriptedChatClient(["I am not sure.", "3 + 4 = 7\nFinal answer: 7", "unused"])
    client = ManagedClient(inner, cache=cache, retry=RetryPolicy(max_attempts=1))
    teacher = Teacher(client, parse_retries=0)
    with pytest.raises(AgentFailedError, match="no 'Final answer: <value>' line"):  # the unusable reply fails the call ...
        run_sync(teacher.call(question="What is 3 + 4?"))
    assert len(cache) == 0  # ... and is not kept
    assert run_sync(teacher.call(question="What is 3 + 4?")).output.final_answer == "7"
    assert run_sync(teacher.call(question="What is 3 + 4?")).usage.cached_calls == 1
    assert len(inner.calls) == 2 and len(cache) == 1
    cache.close()


def test_reject_reply_is_keyed_like_create(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    client = ManagedClient(ScriptedChatClient(responder=lambda messages: "a reply"), cache=cache)
    messages = [UserMessage(content="hello", source="user")]
    args = {"temperature": 0.0, "orca_math_sample": 1}
    run_sync(client.create(messages, extra_create_args=args))
    run_sync(client.create(messages, extra_create_args={**args, "orca_math_sample": 2}))
    assert len(cache) == 2
    assert run_sync(client.reject_reply(messages, extra_create_args=args)) is True
    assert len(cache) == 1
    assert run_sync(client.reject_reply(messages, extra_create_args=args)) is False  # already gone
    assert run_sync(client.create(messages, extra_create_args={**args, "orca_math_sample": 2})).cached
    cache.close()
