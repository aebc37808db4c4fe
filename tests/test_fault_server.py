"""The fault-injection server: real OpenAI-compatible replies, each fault on demand, a request log."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import openai
import pytest
from autogen_core.models import UserMessage

from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._engine_helpers import ask, openai_client, run


def _create(server: FaultServer, **kwargs):
    async def go():
        client = openai_client(server.base_url, **kwargs)
        try:
            return await client.create(ask())
        finally:
            await client.close()

    return run(go())


def test_healthy_server_answers_with_usage_and_logs_the_body():
    with FaultServer() as server:
        result = _create(server)
        models = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0).models.list()
    assert result.content.endswith("Final answer: 42")
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 5
    assert [m.id for m in models.data] == ["fault-model"]
    (chat,) = server.chat_requests()
    assert chat.outcome == "ok" and chat.body["messages"][0]["content"].startswith("How many apples")


@pytest.mark.parametrize(
    ("outcome", "error"),
    [("429", openai.RateLimitError), ("500", openai.InternalServerError), ("503", openai.InternalServerError),
     ("timeout", openai.APITimeoutError), ("drop", openai.APIConnectionError)],
)
def test_each_scripted_fault_reaches_the_client(outcome, error):
    with FaultServer(FaultConfig(outcomes=[outcome], timeout_hang=2.0, retry_after=3)) as server:
        with pytest.raises(error) as caught:
            _create(server, timeout=0.5)
        assert _create(server).content.endswith("42")  # scripted outcomes come first, then healthy replies
    if outcome in ("429", "503"):
        assert caught.value.response.headers["retry-after"] == "3"
    assert [r.outcome for r in server.chat_requests()] == [outcome, "ok"]


@pytest.mark.parametrize("outcome", ["truncated", "malformed"])
def test_broken_bodies_fail_to_parse(outcome):
    with FaultServer(FaultConfig(outcomes=[outcome])) as server, pytest.raises(json.JSONDecodeError):
        _create(server)


def test_bad_format_reply_has_no_final_answer():
    with FaultServer(FaultConfig(outcomes=["bad_format"])) as server:
        assert "Final answer" not in _create(server).content


def test_required_api_key_gives_401_otherwise():
    with FaultServer(FaultConfig(api_key="sk-right")) as server:
        with pytest.raises(openai.AuthenticationError):
            _create(server, api_key="sk-wrong")
        assert _create(server, api_key="sk-right").content.endswith("42")


def test_capacity_answers_429_above_the_rate():
    with FaultServer(FaultConfig(capacity_rps=3, retry_after=None)) as server:
        outcomes = []
        for _ in range(5):
            try:
                _create(server)
                outcomes.append("ok")
            except openai.RateLimitError as exc:
                outcomes.append(exc.response.headers.get("retry-after"))
    assert outcomes[:3] == ["ok", "ok", "ok"]
    assert all(o not in ("ok", None) and 0 < float(o) <= 1 for o in outcomes[3:])


def test_seeded_fault_mix_is_reproducible():
    def outcomes():
        config = FaultConfig(rate_429=0.3, rate_500=0.2, seed=7, retry_after=None)
        with FaultServer(config) as server:
            for _ in range(12):
                try:
                    _create(server)
                except openai.APIStatusError:
                    pass
        return [r.outcome for r in server.chat_requests()]

    first = outcomes()
    assert first == outcomes()
    assert {"ok", "429", "500"} <= set(first)


def test_latency_climbs_with_requests_in_flight():
    import asyncio

    async def burst(server, n):
        client = openai_client(server.base_url)
        start = time.monotonic()
        await asyncio.gather(*(client.create([UserMessage(content="q", source="u")]) for _ in range(n)))
        await client.close()
        return time.monotonic() - start

    with FaultServer(FaultConfig(base_latency=0.05, latency_per_in_flight=0.05)) as server:
        single = run(burst(server, 1))
        many = run(burst(server, 8))
    assert many > single + 0.2  # the 8th request waits 0.05 + 8 * 0.05 s


def test_bad_config_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultConfig(rate_429=0.7, rate_500=0.6)
    with pytest.raises(ValueError, match="Unknown outcome"):
        FaultConfig(outcomes=["teapot"])
    with pytest.raises(ValueError, match="rate_4299"):
        FaultConfig.from_dict({"rate_4299": 0.1})


def test_subprocess_prints_its_url_first():
    process = subprocess.Popen(
        [sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", '{"base_latency": 0.01}'],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        models = openai.OpenAI(base_url=url, api_key="x", max_retries=0).models.list()
        assert models.data[0].id == "fault-model"
    finally:
        process.terminate()
        process.wait(timeout=10)
