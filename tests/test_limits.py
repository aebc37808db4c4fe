"""Flow-control pieces on their own: AIMD concurrency, the circuit breaker, token-bucket rate caps."""

from __future__ import annotations

import asyncio
import time

import pytest

from orca_math.engine import AdaptiveConcurrency, CircuitBreaker, CircuitOpenError, RateLimits
from orca_math.engine.limits import TokenBucket, parse_reset
from tests._engine_helpers import run


def test_aimd_halves_once_per_window_and_recovers_additively():
    async def scenario():
        controller = AdaptiveConcurrency(8, increase_after=2, latency_factor=None)
        first, second = await controller.acquire(), await controller.acquire()
        first.overloaded()
        second.overloaded()  # started before the cut: must not cut again
        controller.release(first)
        controller.release(second)
        after_cut = controller.limit
        for _ in range(8):
            async with controller.slot() as slot:
                slot.succeeded()
        return after_cut, controller.limit, controller.decreases

    after_cut, recovered, decreases = run(scenario())
    assert (after_cut, decreases) == (4, 1)
    assert recovered == 8  # +1 per 2 successes, capped at the ceiling


def test_limit_bounds_calls_in_flight_and_floor_holds():
    async def scenario():
        controller = AdaptiveConcurrency(3, latency_factor=None)
        peak = 0

        async def call():
            nonlocal peak
            async with controller.slot():
                peak = max(peak, controller.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(call() for _ in range(20)))
        for _ in range(5):
            async with controller.slot() as slot:
                slot.overloaded()
        return peak, controller.limit, controller.in_flight

    assert run(scenario()) == (3, 1, 0)


def test_retry_after_pauses_new_calls():
    async def scenario():
        controller = AdaptiveConcurrency(4, latency_factor=None)
        async with controller.slot() as slot:
            slot.overloaded(retry_after=0.3)
        start = time.monotonic()
        async with controller.slot():
            return time.monotonic() - start

    assert run(scenario()) >= 0.28


def test_latency_well_above_baseline_lowers_the_limit():
    async def scenario():
        controller = AdaptiveConcurrency(16, latency_factor=2.0, latency_smoothing=1.0, latency_floor=0.0, latency_window=1)
        for latency in (0.01, 0.012, 0.011):
            slot = await controller.acquire()
            slot.started -= latency
            slot.succeeded()
            controller.release(slot)
        steady = controller.limit
        slot = await controller.acquire()
        slot.started -= 0.1  # ten times the baseline
        slot.succeeded()
        controller.release(slot)
        return steady, controller.limit

    assert run(scenario()) == (16, 8)


def test_bad_concurrency_settings_are_refused():
    with pytest.raises(ValueError, match="floor"):
        AdaptiveConcurrency(2, floor=3)
    with pytest.raises(ValueError, match="decrease_factor"):
        AdaptiveConcurrency(4, decrease_factor=1.5)


def test_breaker_opens_probes_and_closes_on_success():
    async def scenario():
        breaker = CircuitBreaker(3, cooldown=0.2, max_failed_probes=2, where="http://x/v1")
        for _ in range(3):
            assert await breaker.before_call() is False
            breaker.record("failure", probe=False)
        opened = breaker.state
        start = time.monotonic()
        probe = await breaker.before_call()
        waited = time.monotonic() - start
        breaker.record("success", probe=probe)
        return opened, probe, waited, breaker.state

    opened, probe, waited, state = run(scenario())
    assert (opened, probe, state) == ("open", True, "closed")
    assert waited >= 0.18


def test_breaker_gives_up_after_failed_probes_and_says_how_to_resume():
    async def scenario():
        breaker = CircuitBreaker(2, cooldown=0.01, max_failed_probes=2, where="http://x/v1")
        probes = 0

        async def caller_against_a_dead_endpoint():
            nonlocal probes
            while True:
                probe = await breaker.before_call()
                probes += probe
                await asyncio.sleep(0.001)
                breaker.record("failure", probe=probe)

        results = await asyncio.wait_for(
            asyncio.gather(*(caller_against_a_dead_endpoint() for _ in range(3)), return_exceptions=True), 5
        )
        return results, probes, breaker.state

    results, probes, state = run(scenario())
    assert all(isinstance(r, CircuitOpenError) for r in results)
    assert (probes, state) == (2, "failed")
    message = str(results[0])
    assert "http://x/v1 failed" in message and "rerun the same command to resume" in message


def test_non_retryable_outcomes_do_not_open_the_breaker():
    breaker = CircuitBreaker(2)
    for _ in range(5):
        breaker.record("neutral", probe=False)
    assert breaker.state == "closed"


def test_token_bucket_holds_the_rate_after_its_burst():
    async def scenario():
        bucket = TokenBucket(1200, burst_seconds=0.5)  # 20/s, 10 at once
        start = time.monotonic()
        for _ in range(30):
            await bucket.take(1)
        return time.monotonic() - start

    elapsed = run(scenario())
    assert 0.9 <= elapsed < 2.0  # 20 beyond the burst at 20/s


def test_token_cap_waits_for_big_requests_and_settles_usage():
    async def scenario():
        limits = RateLimits(tokens_per_minute=6000, burst_seconds=1.0)  # 100 tokens/s
        await limits.acquire(100)
        limits.settle(100, 20)  # the reply was smaller than estimated: 80 tokens come back
        start = time.monotonic()
        await limits.acquire(80)
        return time.monotonic() - start

    assert run(scenario()) < 0.1


def test_rate_limits_learn_from_headers():
    limits = RateLimits(requests_per_minute=1000)
    limits.observe_headers({"X-RateLimit-Limit-Requests": "500", "x-ratelimit-limit-tokens": "30000",
                            "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "2s"})
    assert limits.stats() == {"rpm_cap": 500, "tpm_cap": 30000}
    assert limits.tokens.level < -900  # about 2 s of tokens owed before the next request
    fixed = RateLimits(learn_from_headers=False)
    fixed.observe_headers({"x-ratelimit-limit-requests": "5"})
    assert fixed.stats() == {"rpm_cap": None, "tpm_cap": None}


def test_parse_reset_reads_openai_durations():
    assert parse_reset("6m0s") == 360
    assert parse_reset("20ms") == pytest.approx(0.02)
    assert parse_reset("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_reset("1.5") == 1.5
    assert parse_reset("soon") is None


def test_controllers_keep_working_in_a_new_event_loop():
    breaker = CircuitBreaker(1, cooldown=0.02, max_failed_probes=5)
    controller = AdaptiveConcurrency(1, latency_factor=None)

    async def calls_against_a_failing_endpoint():
        async def call():
            async with controller.slot() as slot:  # two callers: one queues for the slot
                await asyncio.sleep(0.01)
                slot.failed()

        await asyncio.gather(call(), call())
        for _ in range(2):
            probe = await breaker.before_call()  # the second waits out the cooldown in this loop
            breaker.record("failure", probe=probe)

    run(calls_against_a_failing_endpoint())
    run(calls_against_a_failing_endpoint())  # as run_sync or a notebook cell would, later
    assert breaker.failed_probes == 3 and controller.in_flight == 0
