"""The production engine under faults, end to end: `Pipeline([Solve()])` against the fault server.

Each test runs a real pipeline (real autogen OpenAI client, aiohttp, loopback HTTP) and checks what
a user relies on: every problem ends as exactly one row or one failure, Retry-After is honoured,
a killed run resumes without paying twice, the breaker, a bad key and a spent budget stop the run
with finished work kept, the dry-run estimate is close, a rate cap keeps 429s rare, and the AIMD
controller backs off from a server that slows down but not from a healthy, instant one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import datasets
import pytest

from orca_math.cli import main as cli_main
from orca_math.engine import AdaptiveConcurrency, CircuitBreaker, RateLimits, RetryPolicy
from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.runner import RunStopped
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer

FAST_RETRY = RetryPolicy(initial_wait=0.01, max_wait=0.2, jitter=0.01)
REPO = Path(__file__).resolve().parents[1]


def write_seeds(path: Path, n: int, *, start: int = 0) -> Path:
    with open(path, "w") as handle:
        for i in range(start, start + n):
            handle.write(json.dumps({"id": f"p{i:05d}", "question": f"Sam has {i} marbles and finds 2 more. How many now?"}) + "\n")
    return path


def solve_pipeline(base_url: str, *, concurrency: int = 32, timeout: float = 5.0, api_key: str = "sk-test",
                   controller: AdaptiveConcurrency | None = None, **options):
    """`Pipeline([Solve()])` on a real OpenAI client; `options` are ManagedClient options."""
    client = load_model(base_url, model="fault-model", api_key=api_key, timeout=timeout)
    options.setdefault("retry", FAST_RETRY)
    if controller is not None:
        options["concurrency"] = controller
    return Pipeline([Solve()], model=client, concurrency=concurrency, progress=False, client_options=options), client


def close(client) -> None:
    """Close a client we built (the pipeline closes only clients it built from a spec)."""
    from orca_math._sync import run_sync

    run_sync(client.close())


def checkpoint_records(result_or_dir) -> list[dict]:
    run_dir = getattr(result_or_dir, "run_dir", result_or_dir)
    return list(CheckpointFile(Path(run_dir) / "stages" / "solve.jsonl").records())


def request_key(record) -> str:
    """The same logical request has the same messages: retries resend them unchanged."""
    return json.dumps(record.body["messages"], sort_keys=True)


@pytest.mark.slow
def test_two_thousand_problems_under_mixed_faults_lose_and_duplicate_nothing(tmp_path):
    config = FaultConfig(rate_429=0.20, retry_after=0.02, rate_500=0.05, rate_timeout=0.02, timeout_hang=3.0,
                         rate_malformed=0.02, base_latency=0.002, seed=11)
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2000)
    with FaultServer(config) as server:
        # Backoff waits far below Retry-After, so a retry that ignored it would show in the log;
        # a floor of 16 keeps 20% 429s from pinning the limit at 1, which only makes the test slow.
        pipeline, client = solve_pipeline(server.base_url, concurrency=48, timeout=0.4,
                                          retry=RetryPolicy(initial_wait=0.002, max_wait=0.05, jitter=0.002),
                                          controller=AdaptiveConcurrency(48, floor=16))
        result = pipeline.run_sync(seeds, out=tmp_path / "out")
        close(client)
        requests = server.chat_requests()

    expected = {f"p{i:05d}" for i in range(2000)}
    records = checkpoint_records(result)
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == 2000 and set(keys) == expected
    ok = {r["key"] for r in records if r["status"] == "ok"}
    failed = [json.loads(line)["id"] for line in result.outputs["failures"].read_text().splitlines()]
    dataset_ids = result.load_dataset()["id"]
    assert len(dataset_ids) == len(set(dataset_ids)) and set(dataset_ids) == ok
    assert len(failed) == len(set(failed)) and not set(failed) & ok and set(failed) | ok == expected

    outcomes = defaultdict(int)
    for record in requests:
        outcomes[record.outcome] += 1
    assert min(outcomes["429"], outcomes["500"], outcomes["timeout"], outcomes["malformed"]) > 0, outcomes
    by_request = defaultdict(list)
    for record in requests:
        by_request[request_key(record)].append(record)
    assert len(by_request) == 2000
    retried_after_429 = 0
    for attempts in by_request.values():
        for earlier, later in zip(attempts, attempts[1:], strict=False):
            if earlier.outcome == "429":
                retried_after_429 += 1
                assert later.time - earlier.time >= config.retry_after - 1e-3, (earlier, later)
    assert retried_after_429 > 200


# --- adaptive concurrency: back off from a server that slows down, never from a healthy one ---


def _feed(controller: AdaptiveConcurrency, latencies: list[float]) -> None:
    """Report one finished call per latency (seconds), one after another, as ManagedClient does (virtual time)."""
    from tests._virtual_time import run_virtual

    async def scenario() -> None:
        for latency in latencies:
            slot = await controller.acquire()
            await asyncio.sleep(latency)
            slot.succeeded(10)
            controller.release(slot)

    run_virtual(scenario())


def test_millisecond_latency_jitter_never_cuts_the_limit():
    controller = AdaptiveConcurrency(64)
    _feed(controller, [0.0005] * 5 + [0.02, 0.001] * 200)  # 40x the baseline, but only 20 ms
    assert controller.limit == controller.lowest_limit == 64 and controller.decreases == 0


def test_one_slow_reply_is_not_overload_but_a_lasting_climb_is():
    controller = AdaptiveConcurrency(64)
    _feed(controller, [0.1] * 5 + [2.0] + [0.1] * 20)
    assert controller.decreases == 0
    _feed(controller, [2.0] * 12)
    assert controller.decreases == 1 and controller.limit == 32


def test_bad_latency_settings_are_refused():
    with pytest.raises(ValueError, match="latency_floor"):
        AdaptiveConcurrency(8, latency_floor=-1)
    with pytest.raises(ValueError, match="latency_window"):
        AdaptiveConcurrency(8, latency_window=0)


def test_instant_healthy_server_keeps_full_concurrency(tmp_path):
    from orca_math.testing import ScriptedChatClient
    from orca_math.testing.responders import pipeline_responder

    controller = AdaptiveConcurrency(64)
    pipeline = Pipeline([Solve()], model=ScriptedChatClient(responder=pipeline_responder), concurrency=64,
                        progress=False, cache=False, client_options={"concurrency": controller})
    result = pipeline.run_sync(write_seeds(tmp_path / "seeds.jsonl", 400), out=tmp_path / "out")
    assert result.funnel.final_rows == 400
    assert controller.stats()["concurrency_decreases"] == 0 and controller.stats()["lowest_limit"] == 64


def test_a_server_that_only_slows_down_makes_the_pipeline_back_off(tmp_path):
    controller = AdaptiveConcurrency(32)
    config = FaultConfig(base_latency=0.02, latency_per_in_flight=0.02)  # 0.66 s a reply at 32 in flight
    with FaultServer(config) as server:
        pipeline, client = solve_pipeline(server.base_url, concurrency=32, controller=controller)
        result = pipeline.run_sync(write_seeds(tmp_path / "seeds.jsonl", 160), out=tmp_path / "out")
        close(client)
        requests = server.chat_requests()
    stats = controller.stats()
    assert result.funnel.final_rows == 160
    assert {r.outcome for r in requests} == {"ok"}
    assert stats["concurrency_decreases"] > 0 and stats["lowest_limit"] <= 16
    assert max(r.in_flight for r in requests[-40:]) < 32  # it stayed below the ceiling to the end



def test_a_rate_cap_starts_paced_and_allows_no_burst_after_a_429():
    limits = RateLimits(requests_per_minute=6000)  # 100/s, bursts of 0.1 s worth (10) after idling

    async def scenario() -> tuple[float, float, float]:
        start = time.monotonic()
        for _ in range(11):
            await limits.acquire(1)
        opening = time.monotonic() - start  # paced from the first request, not a burst of 10
        await asyncio.sleep(0.3)  # idle: the bucket refills to its burst
        start = time.monotonic()
        for _ in range(10):
            await limits.acquire(1)
        burst = time.monotonic() - start
        limits.on_rate_limited(0.2)  # the server said 429, Retry-After 0.2 s
        start = time.monotonic()
        await limits.acquire(1)
        return opening, burst, time.monotonic() - start

    opening, burst, after_429 = asyncio.run(scenario())
    assert opening >= 0.09 and burst < 0.05 and after_429 >= 0.18

def test_a_rate_cap_just_under_capacity_keeps_429s_rare(tmp_path):
    # The server takes 40 requests in any one-second window; the client paces at 39/s from the first
    # request (no opening burst) and right before the wire (no burst after a Retry-After pause).
    with FaultServer(FaultConfig(capacity_rps=40, base_latency=0.01)) as server:
        pipeline, client = solve_pipeline(server.base_url, concurrency=32, rate_limits=RateLimits(requests_per_minute=39 * 60))
        result = pipeline.run_sync(write_seeds(tmp_path / "seeds.jsonl", 160), out=tmp_path / "out")
        close(client)
        requests = server.chat_requests()
    assert result.funnel.final_rows == 160
    rate_limited = sum(r.outcome == "429" for r in requests)
    assert rate_limited <= 0.05 * len(requests), rate_limited
    assert 160 / (requests[-1].time - requests[0].time) >= 0.8 * 40  # and it still uses most of the capacity

# --- SIGKILL at random moments, resume each time: same ids, nothing paid twice ---

KILLABLE_RUN = textwrap.dedent(
    """
    import sys
    from orca_math.engine import RetryPolicy
    from orca_math.models import load_model
    from orca_math.pipeline import Pipeline, Solve
    client = load_model(sys.argv[1], model="fault-model", api_key="sk-test")
    pipeline = Pipeline([Solve()], model=client, concurrency=8, progress=False,
                        client_options={"retry": RetryPolicy(initial_wait=0.01, max_wait=0.2, jitter=0.01)})
    pipeline.run_sync(sys.argv[2], out=sys.argv[3])
    print("finished", flush=True)
    """
)


def _solve_lines(out: Path) -> int:
    found = list(out.glob("runs/*/stages/solve.jsonl"))
    return len(found[0].read_bytes().splitlines()) if found else 0


@pytest.mark.slow
def test_five_sigkills_with_resumes_match_an_uninterrupted_run_and_pay_once(tmp_path):
    n, latency = 240, 0.04
    seeds = write_seeds(tmp_path / "seeds.jsonl", n)
    script = tmp_path / "run.py"
    script.write_text(KILLABLE_RUN)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "killed"
    rng = random.Random(5)
    kill_times: list[float] = []
    with FaultServer(FaultConfig(base_latency=latency)) as server:
        command = [sys.executable, str(script), server.base_url, str(seeds), str(out)]
        for _ in range(5):
            target = _solve_lines(out) + rng.randint(5, 35)
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while _solve_lines(out) < target and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, latency))  # not always right after a checkpoint line
            os.kill(process.pid, signal.SIGKILL)
            kill_times.append(time.monotonic())
            assert process.wait() == -signal.SIGKILL
        assert 0 < _solve_lines(out) < n, "the kills should all land mid-run"
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert "finished" in done.stdout, done.stderr
        resumed_requests = server.chat_requests()
        records = checkpoint_records(next((out / "runs").iterdir()))
        resumed_ids = datasets.load_from_disk(str(out / "dataset"))["id"]
        pipeline, client = solve_pipeline(server.base_url, concurrency=8)
        # A fresh run in the same folder starts a new run but shares out/cache.sqlite: no new calls,
        # but for replies a kill caught in the cache's write buffer (see the check below).
        rerun = pipeline.run_sync(seeds, out=out, fresh=True)
        asked_again = server.chat_requests()[len(resumed_requests):]
        assert rerun.funnel.final_rows == n
        clean = pipeline.run_sync(seeds, out=tmp_path / "clean")
        close(client)

    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == n and all(r["status"] == "ok" for r in records)
    assert len(resumed_ids) == len(set(resumed_ids)) == n
    assert sorted(resumed_ids) == sorted(clean.load_dataset()["id"])
    # The cache keeps every answered call, so a prompt is answered twice only when its first
    # answer was still on the wire (or not yet cached) at a kill.
    answered = defaultdict(list)
    for record in resumed_requests:
        assert record.outcome == "ok"
        answered[request_key(record)].append(record.time)
    assert len(answered) == n
    paid_twice = [times for times in answered.values() if len(times) > 1]
    for times in paid_twice:
        # The server stamps a request when its thread gets to it, which under load can be a few
        # milliseconds after the parent has recorded the kill of the process that sent it.
        assert len(times) == 2 and any(kill - 1.0 < times[0] < kill + 0.25 for kill in kill_times), (times, kill_times)
    assert len(paid_twice) <= 5 * 8
    # The cache writes behind, one batch at a time: a kill loses the replies of its last batch
    # (those that came within about 50 ms of it), and only those are asked again by a fresh run.
    first_answer = {key: min(times) for key, times in answered.items()}
    for record in asked_again:
        answered_at = first_answer[request_key(record)]
        assert any(kill - 1.0 < answered_at < kill + 0.25 for kill in kill_times), (answered_at, kill_times)
    assert len(asked_again) <= 5 * 256


# --- runs that must stop: a dead endpoint, a bad key, a spent budget ---


def test_sustained_failure_opens_the_breaker_stops_the_run_and_keeps_finished_work(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 200)
    # 40 good replies, then the endpoint dies: every later request is a 500.
    config = FaultConfig(outcomes=["ok"] * 40, rate_500=1.0, base_latency=0.002)
    with FaultServer(config) as server:
        breaker = CircuitBreaker(5, cooldown=0.05, max_failed_probes=2)
        pipeline, client = solve_pipeline(server.base_url, concurrency=4, breaker=breaker,
                                          retry=RetryPolicy(max_attempts=50, initial_wait=0.005, jitter=0.001))
        with pytest.raises(RunStopped, match=r"failed \d+ calls in a row.*rerun the same command to resume"):
            pipeline.run_sync(seeds, out=tmp_path / "out")
        failing_requests = len(server.chat_requests())
        assert breaker.state == "failed" and failing_requests < 40 + 20  # it stopped hammering soon
        records = checkpoint_records(next((tmp_path / "out" / "runs").iterdir()))
        assert len(records) == 40 and {r["status"] for r in records} == {"ok"}  # finished work intact

        server.config.rate_500 = 0.0  # the endpoint recovers; the same command resumes
        pipeline, client2 = solve_pipeline(server.base_url, concurrency=4)
        result = pipeline.run_sync(seeds, out=tmp_path / "out")
        close(client)
        close(client2)
        resumed_ok = [r for r in server.chat_requests()[failing_requests:] if r.outcome == "ok"]
    assert result.resumed and result.funnel.final_rows == 200
    assert len(resumed_ok) == 160  # the 40 finished problems were not asked again
    assert {r["key"] for r in records} <= set(result.load_dataset()["id"])


def test_a_rejected_key_stops_at_once_without_a_retry_storm(tmp_path, capsys, monkeypatch):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 100)
    with FaultServer(FaultConfig(api_key="sk-right-key")) as server:
        pipeline, client = solve_pipeline(server.base_url, concurrency=4, api_key="sk-wrong-key")
        with pytest.raises(RunStopped, match="API key was rejected.*401.*check the key"):
            pipeline.run_sync(seeds, out=tmp_path / "api")
        close(client)
        # The key is checked once (GET /models) before any chat request (#12 item 14).
        assert [(r.path, r.outcome) for r in server.requests] == [("/v1/models", "models")]

        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
        before = len(server.requests)
        code = cli_main(["solve", "--seeds", str(seeds), "--model", server.base_url, "--model-name", "fault-model",
                         "--concurrency", "4", "--no-progress", "--out", str(tmp_path / "cli" / "solved.jsonl")])
        assert len(server.requests) - before == 1 and not server.chat_requests()
    assert code == 2
    err = capsys.readouterr().err
    assert "API key was rejected" in err and "Traceback" not in err


def _price_per_call(tmp_path: Path, base_url: str) -> tuple[dict, float]:
    """Prices that make one solve call cost about a cent, measured on one real call."""
    prices = {"fault-model": (10_000.0, 10_000.0)}  # USD per million tokens: absurd, on purpose
    pipeline, client = solve_pipeline(base_url, concurrency=1)
    pipeline.prices = prices
    probe = pipeline.run_sync(write_seeds(tmp_path / "probe.jsonl", 1, start=10_000), out=tmp_path / "probe")
    close(client)
    return prices, probe.funnel.cost_usd


def test_budget_stops_cleanly_before_overspending_and_a_bigger_budget_finishes(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 60)
    with FaultServer(FaultConfig(base_latency=0.002)) as server:
        prices, per_call = _price_per_call(tmp_path, server.base_url)
        assert per_call > 0
        budget = 20.5 * per_call
        before = len(server.chat_requests())
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        pipeline = Pipeline([Solve()], model=client, concurrency=4, progress=False, budget_usd=budget, prices=prices,
                            client_options={"retry": FAST_RETRY})
        with pytest.raises(RunStopped, match="budget"):
            pipeline.run_sync(seeds, out=tmp_path / "out")
        records = checkpoint_records(next((tmp_path / "out" / "runs").iterdir()))
        done = len(records)
        spent = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in records) * 10_000 / 1e6
        assert {r["status"] for r in records} == {"ok"} and 5 <= done < 60
        assert spent <= budget
        assert len(server.chat_requests()) - before == done  # every call that was paid for was kept

        pipeline.budget_usd = 100 * budget
        result = pipeline.run_sync(seeds, out=tmp_path / "out")
        close(client)
        requests = server.chat_requests()[before:]
    assert result.funnel.final_rows == 60
    assert len(requests) == 60 and len({request_key(r) for r in requests}) == 60  # nothing paid twice


def test_dry_run_estimate_of_tokens_is_within_20_percent_of_the_real_run(tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 200)
    with FaultServer(FaultConfig()) as server:
        # Calibrate the typical reply length with a 5-problem run, as docs advise, then estimate 200.
        pipeline, client = solve_pipeline(server.base_url, concurrency=8)
        calibration = pipeline.run_sync(write_seeds(tmp_path / "five.jsonl", 5, start=50_000), out=tmp_path / "five")
        reply_tokens = round(calibration.funnel.completion_tokens / 5)
        estimate = pipeline.estimate(seeds, completion_tokens={"teacher": reply_tokens})
        result = pipeline.run_sync(seeds, out=tmp_path / "out")
        close(client)
        code = cli_main(["solve", "--seeds", str(seeds), "--model", server.base_url, "--model-name", "fault-model", "--dry-run",
                         "--completion-tokens", f"teacher={reply_tokens}", "--out", str(tmp_path / "dry" / "x.jsonl")])
        assert len(server.chat_requests()) == 205  # the dry run called nothing
    actual_prompt, actual_completion = result.funnel.prompt_tokens, result.funnel.completion_tokens
    assert estimate.calls == 200
    assert abs(estimate.prompt_tokens - actual_prompt) <= 0.2 * actual_prompt
    total = actual_prompt + actual_completion
    assert abs(estimate.prompt_tokens + estimate.completion_tokens - total) <= 0.2 * total
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["calls"] == 200 and abs(printed["prompt_tokens"] - actual_prompt) <= 0.2 * actual_prompt
