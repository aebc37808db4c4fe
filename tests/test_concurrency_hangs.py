"""A server that accepts requests and never answers: bounded time, a clear message, failure rows.

Also: `--timeout` reaches every command that calls a model, and hung requests do not hold the
concurrency limit's slots until their timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from orca_math.cli import build_parser
from orca_math.cli.common import engine_from_args
from orca_math.engine import (
    AdaptiveConcurrency,
    CircuitBreaker,
    ManagedClient,
    RetriesExhaustedError,
    RetryPolicy,
)
from orca_math.engine.runner import RunStopped
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._engine_helpers import ask, openai_client, run

NEVER_ANSWERS = FaultConfig(rate_timeout=1.0, timeout_hang=120.0)


def _seeds(tmp_path, n: int):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Sam has {i} marbles and finds 2 more. How many?"}) + "\n"
                            for i in range(n)))
    return path


def _close(client) -> None:
    from orca_math._sync import run_sync

    run_sync(client.close())


def test_a_hung_request_gives_up_after_timeout_x_attempts_and_says_so(caplog):
    with FaultServer(NEVER_ANSWERS) as server:
        client = ManagedClient(openai_client(server.base_url, timeout=300.0),
                               retry=RetryPolicy(max_attempts=3, initial_wait=0.01, jitter=0.0, timeout=0.3))

        async def go():
            try:
                await client.create(ask())
            finally:
                await client.close()

        with caplog.at_level(logging.WARNING, logger="orca_math.engine.client"):
            with pytest.raises(RetriesExhaustedError, match=r"after 3 attempt.*did not answer within 0\.3 s") as caught:
                run(go())
        requests = server.chat_requests()
    assert caught.value.attempts == 3 and len(requests) == 3
    warnings = [r for r in caplog.records if "has not answered a request within 0.3 s" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per attempt


def test_a_pipeline_on_a_server_that_never_answers_writes_failure_rows(tmp_path):
    with FaultServer(NEVER_ANSWERS) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test", timeout=300.0)
        pipeline = Pipeline([Solve()], model=client, concurrency=4, progress=False, cache=False,
                            client_options={"breaker": None,
                                            "retry": RetryPolicy(max_attempts=2, initial_wait=0.01, jitter=0.0, timeout=0.3)})
        result = pipeline.run_sync(_seeds(tmp_path, 4), out=tmp_path / "out")
        _close(client)
        requests = len(server.chat_requests())
    failures = [json.loads(line) for line in result.outputs["failures"].read_text().splitlines()]
    assert len(failures) == 4 and requests == 8
    assert all("did not answer within 0.3 s" in f["reason"] for f in failures)


def test_with_the_breaker_the_run_stops_and_names_the_hang(tmp_path):
    with FaultServer(NEVER_ANSWERS) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test", timeout=300.0)
        pipeline = Pipeline([Solve()], model=client, concurrency=4, progress=False, cache=False,
                            client_options={"breaker": CircuitBreaker(4, cooldown=0.05, max_failed_probes=1),
                                            "retry": RetryPolicy(max_attempts=8, initial_wait=0.01, jitter=0.0, timeout=0.3)})
        with pytest.raises(RunStopped, match=r"failed \d+ calls in a row.*last error.*did not answer within 0\.3 s"):
            pipeline.run_sync(_seeds(tmp_path, 20), out=tmp_path / "out")
        _close(client)
        assert len(server.chat_requests()) <= 4 * 2 + 1  # a wave, its retries and one probe: no storm


def test_hung_requests_do_not_hold_the_last_slots():
    config = FaultConfig(outcomes=["timeout", "timeout"], timeout_hang=8.0)
    with FaultServer(config) as server:
        controller = AdaptiveConcurrency(2, latency_factor=None, hang_floor=0.5)
        client = ManagedClient(openai_client(server.base_url, timeout=300.0), concurrency=controller,
                               retry=RetryPolicy(timeout=None))

        async def go():
            hung = [asyncio.ensure_future(client.create(ask(f"hangs {i}"))) for i in range(2)]
            await asyncio.sleep(0.1)
            answered = await asyncio.gather(*(client.create(ask(f"answered {i}")) for i in range(2)))
            for task in hung:
                task.cancel()
            await asyncio.gather(*hung, return_exceptions=True)
            await client.close()
            return answered

        answered = run(go())
        requests = server.chat_requests()
    assert len(answered) == 2 and [r.outcome for r in requests] == ["timeout", "timeout", "ok", "ok"]
    # Both slots were held by hung requests; the next two went out after about hang_floor, not 8 s.
    assert requests[-1].time - requests[0].time < 4.0


@pytest.mark.parametrize("command", ["solve", "generate", "eval", "sample", "preferences", "learn"])
def test_every_command_that_calls_a_model_takes_timeout(command):
    required = {"solve": ["--seeds", "s.jsonl", "--out", "o.jsonl"], "generate": ["--seeds", "s.jsonl", "--out", "o"],
                "eval": ["--model", "http://x/v1", "--out", "o"], "sample": ["--model", "m", "--data", "d", "--out", "o"],
                "preferences": ["--attempts", "a.jsonl", "--out", "o"], "learn": ["--model", "m", "--data", "d", "--out", "o"]}
    args = build_parser().parse_args([command, *required[command], "--timeout", "45"])
    assert args.timeout == 45.0
    if command in ("solve", "generate"):
        assert engine_from_args(args).retry_policy().timeout == 45.0


def test_eval_and_sample_pass_timeout_on(monkeypatch, tmp_path):
    seen = {}

    def fake_sample_responses(*_args, **kwargs):
        seen["sample"] = kwargs.get("timeout")
        raise ValueError("stop here")

    monkeypatch.setattr("orca_math.learn.sampling.sample_responses", fake_sample_responses)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "a", "question": "1+1?", "answer": "Final answer: 2"}) + "\n")
    from orca_math.cli import main

    main(["sample", "--model", "http://127.0.0.1:9/v1", "--model-name", "m", "--data", str(data), "--out", str(tmp_path / "o"),
          "--timeout", "12"])

    def fake_evaluate_sync(*_args, **kwargs):
        seen["eval"] = kwargs.get("timeout")
        raise ValueError("stop here")

    monkeypatch.setattr("orca_math.evaluate.harness.evaluate_sync", fake_evaluate_sync)
    main(["eval", "--model", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "e"), "--grader", "exact", "--timeout", "13"])
    assert seen == {"sample": 12.0, "eval": 13.0}
