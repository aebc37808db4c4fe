"""Flow-control pieces on their own: adaptive concurrency, the circuit breaker, token-bucket rate caps.

The concurrency tests that play a server run on a virtual clock, so they do not depend on CPU speed.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from orca_math.engine import AdaptiveConcurrency, CircuitBreaker, CircuitOpenError, RateLimits
from orca_math.engine.limits import TokenBucket, parse_reset
from tests._engine_helpers import run
from tests._simulated_servers import RandomFaults, SlotCapacity, SlowsDownUnderLoad, SometimesHangs, drive
from tests._virtual_time import run_virtual


def test_an_overloaded_window_cuts_once_and_the_limit_grows_back_one_per_window():
    async def scenario():
        controller = AdaptiveConcurrency(8, latency_factor=None)
        slots = [await controller.acquire() for _ in range(8)]
        for slot in slots:  # every call refused: a window of 8 overloads
            slot.overloaded()
            controller.release(slot)
        late = await controller.acquire()
        after_cut = controller.limit
        grown = []
        for _ in range(2):
            for _ in range(8):  # one window of successes each
                async with controller.slot() as slot:
                    slot.succeeded()
            grown.append(controller.limit)
        return after_cut, grown, controller.decreases, late

    after_cut, grown, decreases, _ = run(scenario())
    assert (after_cut, decreases) == (6, 1)
    assert grown == [7, 8]  # +1 per window of completions, up to the ceiling


def test_calls_started_before_a_cut_do_not_cut_again():
    async def scenario():
        controller = AdaptiveConcurrency(16, latency_factor=None)
        slots = [await controller.acquire() for _ in range(16)]
        for slot in slots[:8]:  # half the calls come back refused, then the window of 16 closes
            slot.overloaded()
        for slot in slots[8:]:
            slot.overloaded()
        return controller.limit, controller.decreases

    assert run(scenario()) == (12, 1)


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
        for _ in range(40):  # five windows of refusals
            async with controller.slot() as slot:
                slot.overloaded()
        return peak, controller.limit, controller.in_flight

    assert run(scenario()) == (3, 1, 0)


def test_a_lone_429_delays_only_its_own_call():
    async def scenario():
        controller = AdaptiveConcurrency(4, latency_factor=None)
        async with controller.slot() as slot:
            slot.overloaded(retry_after=30.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with controller.slot():
            return loop.time() - start, controller.limit

    assert run_virtual(scenario()) == (0.0, 4)


def test_when_most_calls_are_refused_new_calls_wait_out_the_retry_after():
    async def scenario():
        controller = AdaptiveConcurrency(8, latency_factor=None)
        slots = [await controller.acquire() for _ in range(3)]
        for slot in slots:
            slot.overloaded(retry_after=0.3)
            controller.release(slot)
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with controller.slot():
            return loop.time() - start

    assert run_virtual(scenario()) == pytest.approx(0.3)


@pytest.mark.parametrize(("rate_429", "kept"), [(0.05, 0.8), (0.2, 0.5)])
def test_random_429s_keep_most_of_the_fault_free_throughput(rate_429, kept):
    # 429s with Retry-After 1 s at random, whatever the load. The old controller (halve on each 429,
    # +1 after 10 successes in a row) kept 4% of the throughput at 5% and 1% at 20%.
    fault_free = run_virtual(drive(AdaptiveConcurrency(16), RandomFaults(0.0), 3000)).rate()
    controller = AdaptiveConcurrency(16)
    seen = run_virtual(drive(controller, RandomFaults(rate_429, seed=1), 3000))
    assert seen.rate() >= kept * fault_free
    assert statistics.median(seen.limits) == 16 and controller.limit == 16
    assert rate_429 / 2 <= controller.background <= rate_429 * 1.5  # learned: they do not fall with the limit


def test_429s_above_a_capacity_bring_the_limit_down_to_it():
    controller = AdaptiveConcurrency(64)
    server = SlotCapacity(12)  # 12 at a time, 50 ms each: 240 calls/s; the 13th is refused at once
    seen = run_virtual(drive(controller, server, 3000))
    assert controller.decreases >= 3 and controller.background < 0.1
    assert 9 <= statistics.median(seen.limits[-1000:]) <= 14
    assert seen.rate() >= 0.75 * 240


def test_a_server_that_slows_down_under_load_makes_the_limit_fall():
    controller = AdaptiveConcurrency(32)
    seen = run_virtual(drive(controller, SlowsDownUnderLoad(0.05, 0.05), 600))
    assert controller.decreases >= 1 and controller.lowest_limit <= 16
    assert max(seen.server_in_flight[-100:]) < 32


def test_hung_calls_stop_holding_slots():
    async def scenario():
        controller = AdaptiveConcurrency(2, latency_factor=None, hang_factor=10.0, hang_floor=5.0)
        for _ in range(8):  # typical replies take 0.1 s
            async with controller.slot() as slot:
                await asyncio.sleep(0.1)
                slot.succeeded()
        hung = [await controller.acquire() for _ in range(2)]  # two calls that never come back
        loop = asyncio.get_running_loop()
        start = loop.time()
        third = await controller.acquire()
        waited = loop.time() - start
        stats = controller.stats()
        for slot in hung:  # when they finally end, they do not free a slot twice
            controller.release(slot)
        controller.release(third)
        return waited, stats, controller.in_flight

    waited, stats, in_flight = run_virtual(scenario())
    assert waited == pytest.approx(5.0)  # max(hang_floor, 10 x 0.1 s), not forever
    assert stats["hung"] == 2 and stats["in_flight"] == 1 and in_flight == 0


def test_hangs_that_pile_up_keep_most_of_the_rate():
    # Issue #21's mix has 2% of requests hanging 20 s on 50 ms replies: at the ceiling's rate that
    # keeps about 8 x ceiling calls hung at once (Little's law). Let go of only 4 x ceiling, the
    # rest held the regular slots and the rate fell to 0.54 of the fault-free 320/s; with that fixed,
    # each hang's first second (the hang threshold's floor, then 1 s) on a slot kept it at 0.70, and
    # with a 0.5 s floor it is 0.83.
    controller = AdaptiveConcurrency(16)
    seen = run_virtual(drive(controller, SometimesHangs(0.02, hang=20.0), 12_000))
    assert seen.outcomes["ok"] == 12_000
    assert seen.rate() >= 0.8 * 16 / 0.05, seen.rate()
    assert controller.stats()["hung"] == 0  # every hung call came back and was counted once


def test_max_hung_bounds_the_calls_let_go_and_reaching_it_does_not_spin():
    # At max_hung the hang watch used to re-arm for a moment already past: the loop spun without
    # letting the clock move (here: forever on the virtual clock; in a real run, a core at 100%).
    controller = AdaptiveConcurrency(16, max_hung=4)
    seen = run_virtual(drive(controller, SometimesHangs(0.05, hang=20.0), 4_000))
    assert seen.outcomes["ok"] == 4_000 and max(seen.server_in_flight) <= 16 + 4
    with pytest.raises(ValueError, match="max_hung"):
        AdaptiveConcurrency(4, max_hung=-1)


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
