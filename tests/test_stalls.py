"""Every wait is capped, and a run that can make no progress stops with one sentence and resumes later.

A server that answers every call with ``429 Retry-After: 3600`` used to hang a run: the retry
waited the capped 600 s, but the adaptive limit paused every new call for the raw hour.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from orca_math.engine import (
    EngineConfig,
    ManagedClient,
    RateLimits,
    RetriesExhaustedError,
    RetryPolicy,
    RunStopped,
    StalledError,
)
from orca_math.models import load_model
from orca_math.models.errors import RateLimitError, ServerError
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._virtual_time import run_virtual


def _refuse_for_an_hour(messages):
    return RateLimitError("http://provider/v1 is rate limiting requests (429).", retry_after=3600.0)


def test_an_hour_long_retry_after_is_capped_and_the_calls_stop_with_one_sentence():
    policy = RetryPolicy(max_retry_after=60.0, max_wait=5.0, initial_wait=0.5, jitter=0.1)
    client = ManagedClient(ScriptedChatClient(responder=_refuse_for_an_hour, latency=0.05), retry=policy, concurrency=16)

    async def scenario():
        from autogen_core.models import UserMessage

        calls = [client.create([UserMessage(content=f"question {i}", source="user")]) for i in range(30)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        return outcomes, asyncio.get_running_loop().time()

    outcomes, ended = run_virtual(scenario())
    assert all(isinstance(o, StalledError) for o in outcomes), outcomes
    # Stopped once nothing had succeeded for the cap (60 s of virtual time), not after the hour
    # the server asked for: the pause on new calls is capped like the retry's own wait.
    assert 60.0 <= ended < 130.0
    message = str(outcomes[0])
    assert "has succeeded for" in message and "asked to wait 3600 s" in message and "capped at 60 s" in message
    assert "\n" not in message and message.count(". ") == 0


def test_a_call_that_succeeds_in_between_keeps_the_run_going():
    policy = RetryPolicy(max_retry_after=1.0, max_wait=1.0, initial_wait=0.5, jitter=0.0, max_attempts=50)
    replies = iter([_refuse_for_an_hour(None), "Final answer: 1"] * 40)
    client = ManagedClient(ScriptedChatClient(responder=lambda m: next(replies), latency=0.4), retry=policy, concurrency=1)

    async def scenario():
        from autogen_core.models import UserMessage

        return [await client.create([UserMessage(content=f"q{i}", source="user")]) for i in range(20)]

    results = run_virtual(scenario())  # 20 calls, each failing once: far longer than 1 s in all, never stalled
    assert [r.content for r in results] == ["Final answer: 1"] * 20


@pytest.mark.slow
def test_a_run_refused_for_an_hour_stops_and_the_rerun_resumes_it(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Sam has {i} marbles and finds 2 more. How many?"}) + "\n"
                             for i in range(30)))
    engine = EngineConfig(concurrency=16, progress=False, breaker=False,
                          retry=RetryPolicy(max_retry_after=0.5, max_wait=0.2, initial_wait=0.05, jitter=0.01))
    config = FaultConfig(rate_429=1.0, retry_after=3600.0)
    with FaultServer(config) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test", timeout=5.0)
        pipeline = Pipeline([Solve()], model=client, engine=engine)
        with pytest.raises(RunStopped, match="has succeeded for") as stopped:
            pipeline.run_sync(seeds, out=tmp_path / "out")
        assert "asked to wait 3600 s" in str(stopped.value)
        refused = len(server.chat_requests())
        assert refused <= 16 * 4  # each of the first calls tried a few times at most, then the run stopped

        config.rate_429 = 0.0  # the provider's quota is back
        result = pipeline.run_sync(seeds, out=tmp_path / "out")
        from orca_math._sync import run_sync

        run_sync(client.close())
    assert sorted(result.load_dataset()["id"]) == sorted(f"p{i}" for i in range(30))


class _RateLimitedForAnHour(Exception):
    """What an SDK raises on a 429 whose headers say the request quota resets in an hour."""

    status_code = 429

    def __init__(self) -> None:
        super().__init__("429 Too Many Requests")
        self.response = SimpleNamespace(headers={"x-ratelimit-limit-requests": "6000", "x-ratelimit-remaining-requests": "0",
                                                 "x-ratelimit-reset-requests": "1h"})


def test_a_rate_limit_reset_an_hour_away_is_capped_like_retry_after():
    policy = RetryPolicy(max_attempts=1, max_retry_after=60.0)
    limits = RateLimits()
    client = ManagedClient(ScriptedChatClient(responder=lambda m: _RateLimitedForAnHour()), retry=policy, rate_limits=limits)

    async def scenario():
        from autogen_core.models import UserMessage

        with pytest.raises(RetriesExhaustedError):
            await client.create([UserMessage(content="q", source="user")])

    asyncio.run(scenario())
    bucket = limits.requests
    assert bucket is not None and bucket.per_minute == 6000  # the cap was learned from the headers
    seconds_until_next = (1.0 - bucket.level) * 60.0 / bucket.per_minute
    assert 55.0 <= seconds_until_next <= 60.0  # held for the cap, not the hour the header named


def test_a_call_refused_again_and_again_waits_each_retry_after_not_a_growing_backoff():
    refusals = iter([_refuse_for_a_second() for _ in range(7)] + ["Final answer: 42"])
    policy = RetryPolicy(initial_wait=0.5, max_wait=60.0, jitter=0.0)
    client = ManagedClient(ScriptedChatClient(responder=lambda m: next(refusals), latency=0.05), retry=policy)

    async def scenario():
        from autogen_core.models import UserMessage

        result = await client.create([UserMessage(content="q", source="user")])
        return result, asyncio.get_running_loop().time()

    result, ended = run_virtual(scenario())
    assert result.content == "Final answer: 42"
    # Seven 429s with Retry-After 1 s: about 7 s of waiting. The exponential backoff it used to
    # take when longer (0.5, 1, 2, 4, 8, 16, 32 s) kept an unlucky call a minute.
    assert 7.0 <= ended < 10.0, ended


def _refuse_for_a_second():
    return RateLimitError("http://provider/v1 is rate limiting requests (429).", retry_after=1.0)


def test_a_server_error_after_random_429s_waits_the_first_backoff_not_a_grown_one():
    server_error = ServerError("http://provider/v1 answered 500; it is a server-side error and may pass.")
    replies = iter([_refuse_for_a_second() for _ in range(5)] + [server_error, "Final answer: 42"])
    policy = RetryPolicy(initial_wait=0.5, max_wait=60.0, jitter=0.0)
    client = ManagedClient(ScriptedChatClient(responder=lambda m: next(replies), latency=0.05), retry=policy)

    async def scenario():
        from autogen_core.models import UserMessage

        await client.create([UserMessage(content="q", source="user")])
        return asyncio.get_running_loop().time()

    ended = run_virtual(scenario())
    assert 5.5 <= ended < 7.0, ended  # 5 x 1 s, then 0.5 s; the attempt count would have made the last wait 16 s
