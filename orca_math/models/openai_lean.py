"""autogen's OpenAI client with a direct path for plain text chats, which is every call orca-math makes.

`OpenAIChatCompletionClient.create` hands its arguments to the openai SDK's
``chat.completions.create``, which walks every parameter against the SDK's TypedDict annotations
(``async_maybe_transform``) before it posts them. For a chat of plain strings that walk changes
nothing, yet it was the largest single cost of a call on the client's side: about a quarter of the
CPU a `solve` run spent per problem at 64 in flight (docs/benchmarks.md). autogen adds its own
per-call work that a text chat does not need either: a runtime `Protocol` check of ``tool_choice``,
a `model_dump` of every response for a log event that is built even when no one listens, and an
extra task per call.

`LeanOpenAIChatCompletionClient.create` (and `LeanAzureOpenAIChatCompletionClient.create`) sends a plain text chat (system, user and assistant
messages whose content is a string, no tools, no output schema, and create arguments that are
plain JSON values; JSON mode is one) straight to ``POST /chat/completions`` with the SDK's own request machinery
(``AsyncOpenAI.post``: the same headers, authentication, error types and response parsing), and
builds the same `CreateResult` autogen would. Anything else goes through autogen unchanged. The
wire body and the result are the same on both paths (`tests/test_openai_lean.py` compares them on a
loopback server, so an upgrade of autogen or openai that changes either fails there, not silently).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_ext.models.openai import (
    AzureOpenAIChatCompletionClient,
    BaseOpenAIChatCompletionClient,
    OpenAIChatCompletionClient,
)
from autogen_ext.models.openai import _openai_client as _autogen

_MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage)
_PLAIN = (str, int, float, bool, type(None))
# Create arguments that are request options for the SDK, not fields of the JSON body.
_REQUEST_OPTIONS = frozenset({"timeout", "extra_body", "extra_headers", "extra_query", "stream"})


def _sdk_parts() -> tuple[Any, Any] | None:
    """The SDK's chat-completion type and request options, or None when this openai version lacks them."""
    try:
        from openai._base_client import make_request_options
        from openai.types.chat import ChatCompletion

        return ChatCompletion, make_request_options(security={"bearer_auth": True})
    except (ImportError, TypeError):  # an SDK without per-request security options: autogen's path only
        return None


def _plain_json(value: Any) -> bool:
    """Whether `value` is made of JSON scalars, lists and string-keyed dicts only (what the SDK sends as is)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


class _LeanCreate(BaseOpenAIChatCompletionClient):
    """The direct path, for any autogen OpenAI-family client class it is mixed into (see the module docstring).

    A subclass lists this class first and an autogen client class second; it overrides nothing.
    `lean_calls` counts the calls that took the direct path.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sdk = _sdk_parts()
        self.lean_calls = 0

    def _plain_body(self, messages: Sequence[LLMMessage], tools: Sequence[Any], tool_choice: Any,
                    json_output: Any, extra_create_args: Mapping[str, Any]) -> dict[str, Any] | None:
        """The JSON body autogen would send for this call, or None when the call needs autogen's own path."""
        if (self._sdk is None or tools or not isinstance(tool_choice, str) or json_output not in (None, True, False)
                or (json_output is True and self.model_info["json_output"] is False)):
            return None  # a schema (autogen's beta parse path), tools, or a JSON mode autogen refuses
        create_args = {**self._create_args, **extra_create_args}
        if (not extra_create_args.keys() <= _autogen.create_kwargs or create_args.keys() & _REQUEST_OPTIONS
                or "response_format" in create_args or not all(_plain_json(v) for v in create_args.values())):
            return None  # autogen validates, refuses or converts these
        if json_output is not None:  # JSON or text mode: the response_format autogen sets for it
            create_args["response_format"] = {"type": "json_object" if json_output else "text"}
        model = str(create_args.get("model", "unknown"))
        systems = 0
        for message in messages:
            if type(message) not in _MESSAGE_TYPES or not isinstance(message.content, str):
                return None
            if type(message) is SystemMessage:
                systems += 1
            elif type(message) is AssistantMessage and message.thought is not None:
                return None
        if model.startswith("claude-") or (systems > 1 and not self.model_info.get("multiple_system_messages", False)):
            return None  # autogen rewrites these message lists
        family = self._model_info["family"]
        oai_messages = [item for message in messages for item in _autogen.to_oai_type(
            message, prepend_name=self._add_name_prefixes, model=model, model_family=family,
            include_name_in_message=self._include_name_in_message)]
        return {"model": model, "stream": False, "messages": oai_messages,
                **{k: v for k, v in create_args.items() if k != "model"}}

    async def create(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = [],  # noqa: B006 (autogen's signature)
                     tool_choice: Any = "auto", json_output: Any = None, extra_create_args: Mapping[str, Any] = {},  # noqa: B006
                     cancellation_token: CancellationToken | None = None) -> CreateResult:
        body = self._plain_body(messages, tools, tool_choice, json_output, extra_create_args)
        if body is None:
            return await super().create(messages, tools=tools, tool_choice=tool_choice, json_output=json_output,
                                        extra_create_args=extra_create_args, cancellation_token=cancellation_token)
        completion_type, options = self._sdk
        request = self._client.post("/chat/completions", body=body, cast_to=completion_type, options=options)
        if cancellation_token is not None:
            import asyncio

            future = asyncio.ensure_future(request)
            cancellation_token.link_future(future)
            completion = await future
        else:
            completion = await request
        self.lean_calls += 1
        return self._result(body, completion)

    def _result(self, body: dict[str, Any], completion: Any) -> CreateResult:
        """The `CreateResult` autogen builds from a chat completion, with the same usage totals and log event."""
        usage = completion.usage
        usage = RequestUsage(prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0 if usage is not None else 0,
                             completion_tokens=getattr(usage, "completion_tokens", 0) or 0 if usage is not None else 0)
        if _autogen.logger.isEnabledFor(logging.INFO):  # autogen builds this event for every call; we only when heard
            _autogen.logger.info(_autogen.LLMCallEvent(
                messages=body["messages"], response=completion.model_dump(), prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, tools=[]))
        if self._resolved_model is not None and self._resolved_model != completion.model:
            warnings.warn(f"Resolved model mismatch: {self._resolved_model} != {completion.model}. "
                          "Model mapping in autogen_ext.models.openai may be incorrect. "
                          f"Set the model to {completion.model} to enhance token/cost estimation and suppress this warning.",
                          stacklevel=3)
        choice = completion.choices[0]
        message = choice.message
        thought: str | None = None
        content: Any
        if message.function_call is not None:
            raise ValueError("function_call is deprecated and is not supported by this model client.")
        if message.tool_calls:  # none were offered, but a server may still send some: as autogen reads them
            thought = message.content or None
            content = []
            for call in message.tool_calls:
                arguments = call.function.arguments
                if isinstance(arguments, dict):
                    arguments = json.dumps(arguments)
                content.append(_autogen.FunctionCall(id=call.id, arguments=arguments,
                                                     name=_autogen.normalize_name(call.function.name)))
            finish_reason = "tool_calls"
        else:
            finish_reason = choice.finish_reason
            content = message.content or ""
            if message.model_extra is not None and message.model_extra.get("reasoning_content") is not None:
                thought = message.model_extra["reasoning_content"]
        logprobs = None
        if choice.logprobs and choice.logprobs.content:
            logprobs = [_autogen.ChatCompletionTokenLogprob(
                token=x.token, logprob=x.logprob, bytes=x.bytes,
                top_logprobs=[_autogen.TopLogprob(logprob=y.logprob, bytes=y.bytes) for y in x.top_logprobs])
                for x in choice.logprobs.content]
        if isinstance(content, str) and self._model_info["family"] == _autogen.ModelFamily.R1 and thought is None:
            thought, content = _autogen.parse_r1_content(content)
        result = CreateResult(finish_reason=_autogen.normalize_stop_reason(finish_reason), content=content,
                              usage=usage, cached=False, logprobs=logprobs, thought=thought)
        self._total_usage = _autogen._add_usage(self._total_usage, usage)
        self._actual_usage = _autogen._add_usage(self._actual_usage, usage)
        return result


class LeanOpenAIChatCompletionClient(_LeanCreate, OpenAIChatCompletionClient):
    """`OpenAIChatCompletionClient` with the direct path: what ``openai:`` and URL specs load."""


class LeanAzureOpenAIChatCompletionClient(_LeanCreate, AzureOpenAIChatCompletionClient):
    """`AzureOpenAIChatCompletionClient` with the direct path: what ``azure:`` specs load.

    The SDK's Azure client maps ``/chat/completions`` to the deployment's URL and sends the
    ``api-key`` header (or the Entra token) on the direct path as it does on its own.
    """


__all__ = ["LeanAzureOpenAIChatCompletionClient", "LeanOpenAIChatCompletionClient"]
