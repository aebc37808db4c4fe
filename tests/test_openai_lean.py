"""`LeanOpenAIChatCompletionClient` sends what autogen's client sends and returns what it returns.

Both clients talk to one loopback server that records every request (body and headers) and answers
with the completion JSON each test gives. Every case runs through both clients: the wire bodies,
the auth header and the `CreateResult` must be equal, and the lean client must have taken its direct
path exactly where a plain text chat allows it (so an autogen or openai upgrade that breaks the
direct path fails here instead of silently slowing every run).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import openai
import pytest
from aiohttp import web
from autogen_core import CancellationToken
from autogen_core.models import AssistantMessage, SystemMessage, UserMessage
from autogen_ext.models.openai import AzureOpenAIChatCompletionClient, OpenAIChatCompletionClient
from pydantic import BaseModel

from orca_math.models import load_model
from orca_math.models.openai_lean import LeanAzureOpenAIChatCompletionClient, LeanOpenAIChatCompletionClient
from orca_math.testing.loopback import LoopbackServer


class RecordingServer(LoopbackServer):
    """Answers ``POST /v1/chat/completions`` with `self.reply` (a completion dict, or (status, dict))."""

    thread_name = "lean-test-server"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.reply: Any = completion("Final answer: 42")
        self.delay = 0.0

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)  # Azure's route
        return app

    async def _chat(self, request: web.Request) -> web.Response:
        self.requests.append({"body": await request.json(), "headers": dict(request.headers),
                              "path": request.path, "query": dict(request.query)})
        if self.delay:
            await asyncio.sleep(self.delay)
        status, payload = self.reply if isinstance(self.reply, tuple) else (200, self.reply)
        return web.json_response(payload, status=status)


def completion(content: str | None, *, finish_reason: str = "stop", usage: dict | None = None, **message: Any) -> dict:
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": message.pop("logprobs", None),
                     "message": {"role": "assistant", "content": content, **message}}],
    }
    if usage is not False:
        body["usage"] = usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    return body


@pytest.fixture
def server():
    with RecordingServer() as running:
        yield running


def clients(server: RecordingServer, **kwargs: Any) -> tuple[LeanOpenAIChatCompletionClient, OpenAIChatCompletionClient]:
    common = {"model": "test-model", "base_url": server.base_url, "api_key": "sk-lean-test", "max_retries": 0,
              "model_info": {"vision": False, "function_calling": True, "json_output": True, "family": "unknown",
                             "structured_output": True}, **kwargs}
    return LeanOpenAIChatCompletionClient(**common), OpenAIChatCompletionClient(**common)


MESSAGES = [SystemMessage(content="You solve math word problems."),
            UserMessage(content="Ann has 3 boxes of 4 pens. How many pens?", source="user"),
            AssistantMessage(content="3 * 4 = 12.\nFinal answer: 12", source="teacher"),
            UserMessage(content="And with 2 more boxes?", source="user")]


async def both(server: RecordingServer, messages=MESSAGES, client_kwargs: dict | None = None, **create: Any):
    """Each client's result, the two request records and whether the lean client went direct."""
    lean, plain = clients(server, **(client_kwargs or {}))
    try:
        before = len(server.requests)
        lean_result = await lean.create(messages, **create)
        plain_result = await plain.create(messages, **create)
        lean_request, plain_request = server.requests[before:before + 2]
        return lean_result, plain_result, lean_request, plain_request, lean.lean_calls
    finally:
        await lean.close()
        await plain.close()


def same_request(a: dict, b: dict) -> None:
    assert a["body"] == b["body"]
    assert a["headers"]["Authorization"] == b["headers"]["Authorization"] == "Bearer sk-lean-test"
    assert a["headers"]["Content-Type"] == b["headers"]["Content-Type"]


@pytest.mark.parametrize("extra", [
    {},
    {"temperature": 0.7, "max_tokens": 512, "seed": 3},
    {"top_p": 0.9, "stop": ["\n\n", "Question:"], "logit_bias": {"50256": -100}, "presence_penalty": 0.5},
])
def test_a_plain_chat_goes_direct_with_the_same_body_and_result(server, extra):
    lean, plain, lean_request, plain_request, direct = asyncio.run(both(server, extra_create_args=extra))
    assert direct == 1
    same_request(lean_request, plain_request)
    assert lean_request["body"]["messages"][1] == {"role": "user", "name": "user",
                                                   "content": "Ann has 3 boxes of 4 pens. How many pens?"}
    assert lean == plain
    assert lean.content == "Final answer: 42" and lean.usage.prompt_tokens == 11


def test_client_create_args_are_sent_as_autogen_sends_them(server):
    lean, plain, lean_request, plain_request, direct = asyncio.run(
        both(server, client_kwargs={"temperature": 0.2, "seed": 7}, extra_create_args={"temperature": 0.9}))
    assert direct == 1
    same_request(lean_request, plain_request)
    assert lean_request["body"]["temperature"] == 0.9 and lean_request["body"]["seed"] == 7


@pytest.mark.parametrize("reply", [
    completion("Thinking done.", finish_reason="length"),
    completion("", usage={"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}),
    completion(None),
    completion("The answer is 5.", usage=False),
    completion("5", reasoning_content="2 + 3 = 5"),
    completion("5", logprobs={"content": [{"token": "5", "logprob": -0.1, "bytes": [53],
                                           "top_logprobs": [{"token": "5", "logprob": -0.1, "bytes": [53]}]}]}),
    completion(None, finish_reason="tool_calls",
               tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}]),
])
def test_replies_become_the_same_create_result(server, reply):
    server.reply = reply
    lean, plain, lean_request, plain_request, direct = asyncio.run(both(server))
    assert direct == 1
    same_request(lean_request, plain_request)
    assert lean == plain


def test_an_r1_model_splits_its_thinking_as_autogen_does(server):
    server.reply = completion("<think>2 + 3</think> The answer is 5.")
    r1 = {"model_info": {"vision": False, "function_calling": False, "json_output": False, "family": "r1",
                         "structured_output": False}}
    lean, plain, *_ , direct = asyncio.run(both(server, client_kwargs=r1))
    assert direct == 1
    assert lean == plain and lean.thought == "2 + 3" and lean.content == "The answer is 5."


@pytest.mark.parametrize("json_output", [True, False])
def test_json_and_text_modes_go_direct_with_autogens_response_format(server, json_output):
    server.reply = completion('{"answer": 12}')
    lean, plain, lean_request, plain_request, direct = asyncio.run(both(server, json_output=json_output))
    assert direct == 1
    same_request(lean_request, plain_request)
    assert lean_request["body"]["response_format"] == {"type": "json_object" if json_output else "text"}
    assert lean == plain


def test_json_mode_on_a_model_without_it_is_refused_as_autogen_refuses_it(server):
    no_json = {"model_info": {"vision": False, "function_calling": False, "json_output": False, "family": "unknown",
                              "structured_output": False}}
    lean, _ = clients(server, **no_json)
    with pytest.raises(ValueError, match="does not support JSON output"):
        asyncio.run(lean.create(MESSAGES, json_output=True))
    assert server.requests == []


class Answer(BaseModel):
    answer: int


@pytest.mark.parametrize("create", [
    {"json_output": Answer},
    {"tools": [{"name": "add", "description": "adds", "parameters": {"type": "object", "properties": {}}}]},
    {"extra_create_args": {"extra_body": {"top_k": 5}}},
    {"extra_create_args": {"timeout": 30.0}},
])
def test_calls_that_need_autogen_go_through_it(server, create):
    server.reply = completion('{"answer": 12}')
    lean, plain, lean_request, plain_request, direct = asyncio.run(both(server, **create))
    assert direct == 0
    same_request(lean_request, plain_request)
    assert lean == plain


def test_two_system_messages_are_merged_by_autogen(server):
    messages = [SystemMessage(content="Be brief."), SystemMessage(content="Use digits."),
                UserMessage(content="2 + 2?", source="user")]
    lean, plain, lean_request, plain_request, direct = asyncio.run(both(server, messages=messages))
    assert direct == 0
    same_request(lean_request, plain_request)
    assert [m["role"] for m in lean_request["body"]["messages"]] == ["system", "user"]


def test_invalid_create_args_are_refused_as_autogen_refuses_them(server):
    lean, _ = clients(server)
    with pytest.raises(ValueError, match="Extra create args are invalid"):
        asyncio.run(lean.create(MESSAGES, extra_create_args={"not_a_field": 1}))
    assert server.requests == []


@pytest.mark.parametrize("status, error", [(400, openai.BadRequestError), (401, openai.AuthenticationError),
                                           (429, openai.RateLimitError), (500, openai.InternalServerError)])
def test_http_errors_raise_the_sdks_exceptions(server, status, error):
    server.reply = (status, {"error": {"message": "no", "type": "x", "code": None}})
    lean, _ = clients(server)

    async def call():
        try:
            await lean.create(MESSAGES)
        finally:
            await lean.close()

    with pytest.raises(error):
        asyncio.run(call())


def test_usage_totals_and_the_call_event_match_autogen(server, caplog):
    async def run():
        lean, plain = clients(server)
        for _ in range(2):
            await lean.create(MESSAGES)
            await plain.create(MESSAGES)
        await lean.close(), await plain.close()
        return lean, plain

    from autogen_core import EVENT_LOGGER_NAME

    with caplog.at_level(logging.INFO, logger=EVENT_LOGGER_NAME):
        lean, plain = asyncio.run(run())
    assert lean.total_usage() == plain.total_usage() and lean.total_usage().prompt_tokens == 22
    assert lean.actual_usage() == plain.actual_usage()
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENT_LOGGER_NAME]
    assert len(events) == 4
    lean_event, plain_event = events[0], events[1]
    assert lean_event == plain_event


def test_a_cancelled_token_cancels_the_call(server):
    server.delay = 5.0

    async def run():
        lean, _ = clients(server)
        token = CancellationToken()
        task = asyncio.ensure_future(lean.create(MESSAGES, cancellation_token=token))
        await asyncio.sleep(0.2)
        token.cancel()
        try:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 2)
        finally:
            await lean.close()

    asyncio.run(run())


def test_openai_and_url_specs_load_the_lean_client(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-lean-test")
    for client in (load_model(server.base_url, model="test-model"), load_model("openai:gpt-4o-mini")):
        assert isinstance(client, LeanOpenAIChatCompletionClient)
        asyncio.run(client.close())


def test_azure_goes_direct_to_the_deployment_with_its_api_key(server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-lean-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{server.port}")
    lean = load_model("azure:my-deployment")
    assert isinstance(lean, LeanAzureOpenAIChatCompletionClient)
    plain = AzureOpenAIChatCompletionClient(model="my-deployment", azure_deployment="my-deployment", api_key="azure-lean-key",
                                            azure_endpoint=f"http://127.0.0.1:{server.port}", api_version="2024-10-21",
                                            max_retries=0, model_info=lean.model_info)

    async def run():
        try:
            return await lean.create(MESSAGES, extra_create_args={"temperature": 0.3}), \
                await plain.create(MESSAGES, extra_create_args={"temperature": 0.3})
        finally:
            await lean.close(), await plain.close()

    lean_result, plain_result = asyncio.run(run())
    assert lean.lean_calls == 1 and lean_result == plain_result
    lean_request, plain_request = server.requests
    assert lean_request["body"] == plain_request["body"]
    assert lean_request["path"] == plain_request["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert lean_request["query"] == plain_request["query"] == {"api-version": "2024-10-21"}
    assert lean_request["headers"]["api-key"] == plain_request["headers"]["api-key"] == "azure-lean-key"
    assert "Authorization" not in lean_request["headers"]
