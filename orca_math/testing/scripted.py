"""A scripted `ChatCompletionClient` for unit tests: replies come from a queue or a function.

    client = ScriptedChatClient()
    client.enqueue('{"suggestions": ["add a discount"]}')
    await Suggester(client).run(question="...")

or, for many calls, a responder that sees the messages:

    client = ScriptedChatClient(responder=lambda messages: "Final answer: 4")
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)

Responder = Callable[[Sequence[LLMMessage]], "str | BaseException"]


class ScriptedChatClient(ChatCompletionClient):
    """Replies with queued strings (or raises queued exceptions), else asks `responder`.

    Args:
        replies: initial queue of replies; an exception instance in the queue is raised instead.
        responder: called with the messages when the queue is empty.
        latency: seconds to sleep per call (for concurrency and kill tests).
        model: the name the client reports.

    Attributes:
        calls: every call's messages and extra_create_args, in order.
    """

    def __init__(
        self,
        replies: Sequence[str | BaseException] = (),
        *,
        responder: Responder | None = None,
        latency: float = 0.0,
        model: str = "scripted",
        json_output: bool = True,
    ) -> None:
        self._queue: deque[str | BaseException] = deque(replies)
        self._responder = responder
        self.latency = latency
        self.calls: list[dict[str, Any]] = []
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._info = ModelInfo(vision=False, function_calling=False, json_output=json_output, family=ModelFamily.UNKNOWN, structured_output=False)
        self._orca_math_name = model

    def enqueue(self, *replies: str | BaseException) -> None:
        """Add replies to the queue."""
        self._queue.extend(replies)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = (),
        tool_choice: Any = "auto",
        json_output: bool | type | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        self.calls.append({"messages": list(messages), "extra_create_args": dict(extra_create_args), "json_output": json_output})
        if self.latency:
            await asyncio.sleep(self.latency)
        if self._queue:
            reply = self._queue.popleft()
        elif self._responder is not None:
            reply = self._responder(messages)
        else:
            raise RuntimeError("ScriptedChatClient has no reply queued and no responder")
        if isinstance(reply, BaseException):
            raise reply
        prompt_tokens = sum(len(str(m.content).split()) for m in messages)
        completion_tokens = len(reply.split())
        self._usage = RequestUsage(
            prompt_tokens=self._usage.prompt_tokens + prompt_tokens,
            completion_tokens=self._usage.completion_tokens + completion_tokens,
        )
        return CreateResult(
            finish_reason="stop",
            content=reply,
            usage=RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
            cached=False,
        )

    def create_stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        raise NotImplementedError("ScriptedChatClient does not stream")

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return sum(len(str(m.content).split()) for m in messages)

    def remaining_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return 1_000_000

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        return self._info  # type: ignore[return-value]

    @property
    def model_info(self) -> ModelInfo:
        return self._info
