"""A model call as a batch request line, and a batch result as the `CreateResult` the caller expects.

Batch mode changes how calls are sent, not what they are: an OpenAI-family client's own request
builder (autogen's, the one its online `create` uses) makes the body, so the messages, sampling
settings, JSON mode and structured-output schema are byte for byte what the online path sends.
Anthropic bodies follow autogen's Anthropic client (system prompt apart, `max_tokens` 4096 and
`temperature` 1.0 unless set). Results are stored in one small provider-neutral form
(`content`, `finish_reason`, token counts) and turned back into a `CreateResult` when served.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autogen_core.models import CreateResult, LLMMessage, RequestUsage

#: Keys orca-math's clients read from ``extra_create_args`` and never send (see `orca_math.engine.client`).
HINT_PREFIX = "orca_math_"
_FINISH = {"stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "length": "length", "max_tokens": "length",
           "tool_calls": "function_calls", "tool_use": "function_calls", "content_filter": "content_filter"}


@dataclass
class Call:
    """One model call as the agent made it."""

    messages: Sequence[LLMMessage]
    tools: Sequence[Any]
    tool_choice: Any
    json_output: Any
    create_args: Mapping[str, Any]  # without orca-math's hints


def sendable_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """The create args without orca-math's own hints (sample id, label), which never reach a provider."""
    return {k: v for k, v in args.items() if not k.startswith(HINT_PREFIX)}


def json_default(value: Any) -> Any:
    """For `json.dumps`: SDK TypedDicts are dicts already; pydantic objects are dumped, anything else named."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else str(value)


def _plain(value: Any) -> Any:
    """JSON-ready data (for bodies built here, not by an SDK: small, and rarely)."""
    return json.loads(json.dumps(value, default=json_default))


def openai_body(inner: Any, call: Call, *, model: str) -> dict[str, Any]:
    """The body of a ``/v1/chat/completions`` request, as `inner`'s online `create` would send it."""
    build = getattr(inner, "_process_create_args", None)
    if callable(build):  # autogen's OpenAI and Azure clients: their own builder, so nothing differs from online
        params = build(call.messages, call.tools, call.tool_choice, call.json_output, dict(call.create_args))
        body: dict[str, Any] = {"messages": params.messages, **params.create_args}
        if params.tools:
            body["tools"] = params.tools
        if params.response_format is not None:
            from openai.lib._parsing._completions import type_to_response_format_param

            body["response_format"] = type_to_response_format_param(params.response_format)
        return body  # dicts and TypedDicts: encoded once, with `json_default`, when the line is written
    # Any other client (a scripted one in tests): the plain chat format.
    body = {"model": model, "messages": [_openai_message(m) for m in call.messages], **call.create_args}
    if call.json_output is True:
        body["response_format"] = {"type": "json_object"}
    return _plain(body)


def _openai_message(message: LLMMessage) -> dict[str, Any]:
    role = {"SystemMessage": "system", "AssistantMessage": "assistant"}.get(type(message).__name__, "user")
    content = message.content if isinstance(message.content, str) else json.dumps(_plain(message.content))
    return {"role": role, "content": content}


def anthropic_params(inner: Any, call: Call, *, model: str) -> dict[str, Any]:
    """The ``params`` of one Message Batches request, as autogen's Anthropic client builds them online."""
    create_args = {**dict(getattr(inner, "_create_args", {}) or {}), **dict(call.create_args)}
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in call.messages:
        converted = _openai_message(message)
        if converted["role"] == "system":
            system.append(converted["content"])
        else:
            messages.append(converted)
    if messages and messages[-1]["role"] == "assistant":
        messages[-1]["content"] = messages[-1]["content"].rstrip()  # Anthropic refuses trailing whitespace there
    params: dict[str, Any] = {"model": create_args.get("model", model), "messages": messages,
                              "max_tokens": create_args.get("max_tokens", 4096), "temperature": create_args.get("temperature", 1.0)}
    if system:
        params["system"] = "\n".join(system)
    for name in ("top_p", "top_k", "stop_sequences", "metadata"):
        if name in create_args:
            params[name] = create_args[name]
    if "stop" in create_args:
        stop = create_args["stop"]
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return _plain(params)


def result_of_chat_completion(body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of an OpenAI ``chat.completion`` body."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = body.get("usage") or {}
    return {"content": message.get("content") or "", "finish_reason": choice.get("finish_reason") or "stop",
            "prompt_tokens": int(usage.get("prompt_tokens") or 0), "completion_tokens": int(usage.get("completion_tokens") or 0)}


def result_of_anthropic_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of an Anthropic ``message``."""
    text = "".join(block.get("text", "") for block in message.get("content") or [] if block.get("type") == "text")
    usage = message.get("usage") or {}
    return {"content": text, "finish_reason": message.get("stop_reason") or "stop",
            "prompt_tokens": int(usage.get("input_tokens") or 0), "completion_tokens": int(usage.get("output_tokens") or 0)}


def create_result(stored: Mapping[str, Any]) -> CreateResult:
    """The `CreateResult` a stored result stands for (what the online client would have returned).

    Built without validation: the fields come from `result_of_*`, already of the right types,
    and serving 200,000 of them is the batch driver's hottest loop.
    """
    usage = RequestUsage(prompt_tokens=int(stored.get("prompt_tokens") or 0),
                         completion_tokens=int(stored.get("completion_tokens") or 0))
    return CreateResult.model_construct(finish_reason=_FINISH.get(str(stored.get("finish_reason")), "unknown"),
                                        content=str(stored.get("content") or ""), cached=False, usage=usage,
                                        logprobs=None, thought=None)


__all__ = ["Call", "anthropic_params", "create_result", "openai_body", "result_of_anthropic_message",
           "result_of_chat_completion", "sendable_args"]
