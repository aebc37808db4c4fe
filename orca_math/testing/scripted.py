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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    CreateResult,
    LLMMessage,
    ModelFamily,
    ModelInfo,
)

from orca_math.models.base import OwnChatClient
from orca_math.models.identity import ModelIdentity, register_identity

Responder = Callable[[Sequence[LLMMessage]], "str | BaseException"]


class ScriptedChatClient(OwnChatClient):
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
        super().__init__(model_info=ModelInfo(vision=False, function_calling=False, json_output=json_output,
                                              family=ModelFamily.UNKNOWN, structured_output=False))
        self._queue: deque[str | BaseException] = deque(replies)
        self._responder = responder
        self.latency = latency
        self.calls: list[dict[str, Any]] = []
        register_identity(self, ModelIdentity(name=model, provider="scripted"))

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
        usage = self.count_usage(self.count_tokens(messages), self.count_text_tokens(reply))
        return CreateResult(finish_reason="stop", content=reply, usage=usage, cached=False)

    def count_text_tokens(self, text: str) -> int:
        """Words, not tokens: cheap, and exact enough for tests that check token accounting."""
        return len(text.split())
