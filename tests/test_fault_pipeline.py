"""The production engine under faults, end to end: `Pipeline([Solve()])` against the fault server.

Each test runs a real pipeline (real autogen OpenAI client, aiohttp, loopback HTTP) and checks what
a user relies on: every problem ends as exactly one row or one failure, Retry-After is honoured,
a killed run resumes without paying twice, the breaker and a bad key stop the run, and a server
that only slows down makes the controller back off.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path

import pytest

from orca_math.engine import AdaptiveConcurrency, RetryPolicy
from orca_math.engine.checkpoint import CheckpointFile
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


def test_two_thousand_problems_under_mixed_faults_lose_and_duplicate_nothing(tmp_path):
    config = FaultConfig(rate_429=0.20, retry_after=0.02, rate_500=0.05, rate_timeout=0.02, timeout_hang=3.0,
                         rate_malformed=0.02, base_latency=0.002, seed=11)
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2000)
    with FaultServer(config) as server:
        # Backoff waits far below Retry-After, so a retry that ignored it would show in the log.
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
    """Report one finished call per latency (seconds), as ManagedClient does."""

    async def scenario() -> None:
        for latency in latencies:
            slot = await controller.acquire()
            slot.started -= latency
            slot.succeeded(10)
            controller.release(slot)

    asyncio.run(scenario())


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
    assert stats["concurrency_decreases"] > 0 and stats["lowest_limit"] < 32
    assert max(r.in_flight for r in requests[-40:]) <= 16
