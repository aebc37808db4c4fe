"""ManagedClient over a real OpenAI client and the fault server: retries, flow control, cache, costs."""

from __future__ import annotations

import asyncio
import time

import pytest
from autogen_core.models import CreateResult, RequestUsage

from orca_math.engine import (
    AdaptiveConcurrency,
    Budget,
    BudgetExceededError,
    CircuitBreaker,
    CircuitOpenError,
    ManagedClient,
    PriceTable,
    RateLimits,
    ResponseCache,
    RetriesExhaustedError,
    RetryPolicy,
    UsageMeter,
    cache_key,
    estimate_cost,
)
from orca_math.models import describe_client
from orca_math.models.errors import AuthenticationError, BadRequestError, ModelNotFoundError, ServerError
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._engine_helpers import ask, openai_client, run

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05, jitter=0.0, timeout=2.0)


def _managed(server: FaultServer, *, api_key: str = "sk-test", aiohttp: bool = False, **options) -> ManagedClient:
    options.setdefault("retry", FAST)
    return ManagedClient(openai_client(server.base_url, api_key=api_key, aiohttp=aiohttp), **options)


def _calls(client: ManagedClient, n: int, **create_options):
    async def go():
        try:
            return await asyncio.gather(*(client.create(ask(), **create_options) for _ in range(n)))
        finally:
            await client.close()

    return run(go())


def test_429_is_retried_after_retry_after():
    with FaultServer(FaultConfig(outcomes=["429"], retry_after=0.5)) as server:
        client = _managed(server)
        (result,) = _calls(client, 1)
    first, second = server.chat_requests()
    assert result.content.endswith("42") and [first.outcome, second.outcome] == ["429", "ok"]
    assert second.time - first.time >= 0.48  # the backoff alone would be 0.01 s
    stats = client.stats()
    assert (stats["retries"], stats["rate_limited"], stats["requests"], stats["calls"]) == (1, 1, 2, 1)


@pytest.mark.parametrize(
    ("fault", "aiohttp"),
    [("500", False), ("503", False), ("timeout", False), ("drop", False), ("drop", True),
     ("truncated", False), ("malformed", True)],
)
def test_transient_faults_are_retried(fault, aiohttp):
    config = FaultConfig(outcomes=[fault, fault], retry_after=None, timeout_hang=3.0)
    policy = RetryPolicy(initial_wait=0.01, jitter=0.0, timeout=0.5)
    with FaultServer(config) as server:
        (result,) = _calls(_managed(server, aiohttp=aiohttp, retry=policy), 1)
    assert result.content.endswith("Final answer: 42")
    assert [r.outcome for r in server.chat_requests()] == [fault, fault, "ok"]


def test_401_fails_fast_with_one_request_and_names_the_key():
    with FaultServer(FaultConfig(api_key="sk-right")) as server:
        with pytest.raises(AuthenticationError, match="API key") as caught:
            _calls(_managed(server, api_key="sk-wrong"), 1)
    # The key is checked with one GET /models before any chat request (#12 item 14).
    assert [r.path for r in server.requests] == ["/v1/models"]
    assert "sk-wrong" not in str(caught.value)


def test_400_and_404_are_not_retried():
    with FaultServer() as server:
        client = _managed(server)
        wrong_model = ManagedClient(openai_client(server.base_url), retry=FAST)
        wrong_model.inner._create_args["model"] = "no-such-model"

        async def go():
            with pytest.raises(BadRequestError):
                await client.create([])
            with pytest.raises(ModelNotFoundError):
                await wrong_model.create(ask())
            await client.close()
            await wrong_model.close()

        run(go())
    assert [r.outcome for r in server.chat_requests()] == ["400", "404"]


def test_exhausted_retries_say_the_last_error():
    with FaultServer(FaultConfig(rate_500=1.0)) as server:
        with pytest.raises(RetriesExhaustedError, match="after 3 attempt.*500") as caught:
            _calls(_managed(server, retry=RetryPolicy(max_attempts=3, initial_wait=0.01, jitter=0)), 1)
    assert caught.value.attempts == 3 and isinstance(caught.value.last_error, ServerError)
    assert len(server.chat_requests()) == 3


def test_random_429s_are_retried_without_collapsing_the_limit():
    # A 429 at random is a pacing signal for its own call (it waits the Retry-After), not a sign of
    # overload: the old controller halved the limit on each and ended at 1 to 4 here.
    with FaultServer(FaultConfig(rate_429=0.25, retry_after=0.05, base_latency=0.01, seed=3)) as server:
        # No per-attempt timeout: on a starved CPU a reply can take seconds, and timeouts are overload.
        client = ManagedClient(openai_client(server.base_url, timeout=300.0), retry=RetryPolicy(initial_wait=0.01, timeout=None),
                               concurrency=AdaptiveConcurrency(16, latency_factor=None))
        results = _calls(client, 96)
    stats = client.stats()
    assert len(results) == 96 and stats["rate_limited"] > 0
    assert stats["lowest_limit"] >= 12 and stats["concurrency_limit"] == 16


def test_a_server_that_only_slows_down_lowers_concurrency():
    # Made to hold on a starved CPU too: the slowdown (50 ms per request in flight, 1.65 s a reply at
    # 32) is large; three calls one at a time first set the baseline, so it does not include the
    # client's first-call start-up (which took 26 s on 2 cores with 6 busy loops, longer than any
    # reply); there is no per-attempt timeout to turn slow replies into errors; and a floor of 8
    # keeps a client that slows itself down from crawling at 1 in flight.
    config = FaultConfig(base_latency=0.05, latency_per_in_flight=0.05)
    with FaultServer(config) as server:
        client = ManagedClient(openai_client(server.base_url, timeout=300.0), concurrency=AdaptiveConcurrency(32, floor=8),
                               retry=RetryPolicy(initial_wait=0.01, jitter=0.0, timeout=None))

        async def go():
            for _ in range(3):
                await client.create(ask("warm-up"))
            await asyncio.gather(*(client.create(ask(f"problem {i}")) for i in range(120)))
            await client.close()

        run(go())
    stats = client.stats()
    assert stats["rate_limited"] == 0 and stats["errors"] == 0
    # At 32 in flight a reply takes 1.65 s; the baseline from the first replies is far lower.
    assert stats["concurrency_decreases"] >= 1 and stats["lowest_limit"] <= 16
    assert max(r.in_flight for r in server.chat_requests()[-20:]) < 32


def test_breaker_opens_under_total_failure_and_stops_the_run():
    breaker = CircuitBreaker(5, cooldown=0.05, max_failed_probes=2)
    with FaultServer(FaultConfig(rate_503=1.0, retry_after=None)) as server:
        client = _managed(server, concurrency=1, breaker=breaker,
                          retry=RetryPolicy(max_attempts=50, initial_wait=0.001, jitter=0))
        with pytest.raises(CircuitOpenError, match="failed 7 calls in a row.*rerun the same command"):
            _calls(client, 1)
    assert len(server.chat_requests()) == 5 + 2
    assert client.stats()["breaker"] == "failed"


def test_request_rate_cap_holds():
    limits = RateLimits(requests_per_minute=1200, burst_seconds=0.5)  # 20/s after a burst of 10
    sent: list[float] = []
    with FaultServer() as server:
        # No per-attempt timeout: on a starved CPU a timed-out attempt would be sent again.
        client = ManagedClient(openai_client(server.base_url, timeout=300.0), rate_limits=limits,
                               retry=RetryPolicy(initial_wait=0.01, timeout=None))
        inner_create = client.inner.create

        async def stamped_create(*args, **kwargs):
            # Stamped as the request leaves the ManagedClient, with no await since the cap let it go;
            # the server's arrival stamps also carry its own thread's delays, which grow under CPU load.
            sent.append(time.monotonic())
            return await inner_create(*args, **kwargs)

        client.inner.create = stamped_create
        _calls(client, 30)
    assert len(sent) == len(server.chat_requests()) == 30
    assert sent[-1] - sent[0] >= 0.9
    for i, t in enumerate(sent):  # 0.1 s of slack, as before; uncapped, all 30 leave within it
        assert i + 1 <= 10 + 20 * (t - sent[0] + 0.1) + 1


def test_cache_hits_repeat_calls_and_keeps_k_samples_apart(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with FaultServer() as server:
        client = _managed(server, cache=cache, api_key="sk-secret-never-stored")

        async def go():
            first = await client.create(ask(), extra_create_args={"temperature": 0.0})
            again = await client.create(ask(), extra_create_args={"temperature": 0.0})
            samples = [
                await client.create(ask(), extra_create_args={"temperature": 0.7, "orca_math_sample": k,
                                                              "orca_math_label": "sample"})
                for k in (0, 1, 2, 0)
            ]
            return first, again, samples

        first, again, samples = run(go())
    assert (first.cached, again.cached, again.content) == (False, True, first.content)
    assert [s.cached for s in samples] == [False, False, False, True]
    assert len(server.chat_requests()) == 4 and len(cache) == 4
    assert client.stats()["cache_hits"] == 2
    for request in server.chat_requests():
        assert not any(key.startswith("orca_math") for key in request.body)
    cache.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Final answer: 42" in stored and b"sk-secret-never-stored" not in stored


def test_budget_stops_before_the_call_that_could_exceed_it():
    meter = UsageMeter(PriceTable({"fault-model": (1000.0, 1000.0)}), budget=Budget(0.1))  # $0.001 a token
    with FaultServer() as server:
        client = _managed(server, meter=meter)

        async def go():
            done = 0
            with pytest.raises(BudgetExceededError, match="would pass the \\$0.10 budget"):
                while True:
                    await client.create(ask(), extra_create_args={"max_tokens": 40})
                    done += 1
            return done

        done = run(go())
    assert done == len(server.chat_requests()) >= 1
    assert meter.cost_usd() <= 0.1


def test_usage_is_estimated_when_the_server_sends_none():
    with FaultServer(FaultConfig(include_usage=False)) as server:
        client = _managed(server)
        _calls(client, 2, extra_create_args={"orca_math_label": "solve"})
    summary = client.meter.summary()
    solve = summary["by_label"]["solve"]
    assert solve["calls"] == 2 and solve["estimated_calls"] == 2
    assert solve["prompt_tokens"] > 0 and solve["completion_tokens"] >= 10


def test_wrapper_is_transparent_to_agents_and_strips_its_keys():
    inner = ScriptedChatClient(["Final answer: 7"], model="teacher-x")
    client = ManagedClient(inner, concurrency=4)
    result = run(client.create(ask(), json_output=True,
                               extra_create_args={"temperature": 0.2, "orca_math_sample": 3, "orca_math_label": "solve"}))
    assert result.content == "Final answer: 7"
    assert inner.calls[0]["extra_create_args"] == {"temperature": 0.2}
    assert describe_client(client) == "teacher-x" and client.model_info["json_output"] is True
    assert client.meter.summary()["by_label"]["solve"]["calls"] == 1


def test_unknown_exceptions_are_not_retried():
    inner = ScriptedChatClient([ValueError("bad argument"), "unused"])
    with pytest.raises(ValueError, match="bad argument"):
        run(ManagedClient(inner, retry=FAST).create(ask()))
    assert len(inner.calls) == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(TypeError, match="ChatCompletionClient"):
        ManagedClient("openai:gpt-4o")  # type: ignore[arg-type]


def test_rate_caps_are_learned_from_429_headers():
    config = FaultConfig(outcomes=["429"], retry_after=0.05,
                         headers_429={"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "90000"})
    limits = RateLimits()
    with FaultServer(config) as server:
        client = _managed(server, rate_limits=limits)
        _calls(client, 1)
    assert client.stats()["rpm_cap"] == 600 and client.stats()["tpm_cap"] == 90000


def test_error_messages_name_the_endpoint_not_the_key():
    with FaultServer(FaultConfig(api_key="sk-right")) as server:
        with pytest.raises(AuthenticationError) as caught:
            _calls(_managed(server, api_key="sk-wrong-key"), 1)
    assert server.base_url in str(caught.value) and "sk-wrong-key" not in str(caught.value)


def test_a_budget_needs_a_price_for_the_model():
    with pytest.raises(ValueError, match="price for model 'scripted'"):
        ManagedClient(ScriptedChatClient(), meter=UsageMeter(budget=Budget(1.0)))


def test_prices_match_by_prefix_and_estimate_dry_runs():
    table = PriceTable({"my-model": (1.0, 2.0)})
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini")  # longest prefix wins
    assert estimate_cost(1000, 500, 250, "my-model", table) == pytest.approx(1000 * (500 * 1 + 250 * 2) / 1e6)
    with pytest.raises(ValueError, match="No price for model 'mystery'"):
        estimate_cost(1, 1, 1, "mystery")
    with pytest.raises(ValueError, match="positive"):
        Budget(0)


def test_cache_is_shared_by_coroutines_and_by_other_connections(tmp_path):
    path = tmp_path / "shared.sqlite"
    writer, reader = ResponseCache(path), ResponseCache(path)  # two connections, as two processes would have
    results = [CreateResult(finish_reason="stop", content=f"reply {i}", usage=RequestUsage(prompt_tokens=1, completion_tokens=2),
                            cached=False) for i in range(40)]

    async def go():
        await asyncio.gather(*(writer.put(f"k{i}", r) for i, r in enumerate(results)))
        await writer.flush()  # written behind: another connection sees a batch once it is committed
        return await asyncio.gather(*(reader.get(f"k{i}") for i in range(41)))

    found = run(go())
    assert [f.content for f in found[:40]] == [f"reply {i}" for i in range(40)] and found[40] is None
    assert all(f.cached for f in found[:40])
    assert reader.hits == 40 and reader.misses == 1


def test_cache_key_changes_with_what_the_model_sees():
    base = cache_key("m at u", ask(), json_output=True, create_args={"temperature": 0.0})
    assert base == cache_key("m at u", ask(), json_output=True, create_args={"temperature": 0.0})
    assert len({base, cache_key("m2 at u", ask(), json_output=True, create_args={"temperature": 0.0}),
                cache_key("m at u", ask("other"), json_output=True, create_args={"temperature": 0.0}),
                cache_key("m at u", ask(), json_output=None, create_args={"temperature": 0.0}),
                cache_key("m at u", ask(), json_output=True, create_args={"temperature": 0.5}),
                cache_key("m at u", ask(), json_output=True, create_args={"temperature": 0.0}, sample=1)}) == 6


def test_rpm_and_tpm_count_the_replies_of_the_last_minute_only(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("orca_math.engine.client.time.monotonic", lambda: clock[0])
    client = ManagedClient(ScriptedChatClient(["Final answer: 7"] * 3), retry=FAST)

    async def one():
        return await client.create(ask())

    tokens = [run(one()).usage for _ in range(2)]
    per_reply = tokens[0].prompt_tokens + tokens[0].completion_tokens
    assert (client.stats()["rpm"], client.stats()["tpm"]) == (2, 2 * per_reply)
    clock[0] += 45.0
    run(one())
    assert (client.stats()["rpm"], client.stats()["tpm"]) == (3, 3 * per_reply)
    clock[0] += 30.0  # the first two are now 75 s old
    assert (client.stats()["rpm"], client.stats()["tpm"]) == (1, per_reply)
    clock[0] += 60.0
    assert (client.stats()["rpm"], client.stats()["tpm"]) == (0, 0)
