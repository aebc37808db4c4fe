"""The `ChatCompletionClient` boilerplate, once: a base for orca-math's own clients, and one for wrappers.

autogen's interface asks every client for usage totals, token counting, model info and
capabilities next to `create`. Clients that generate themselves (`hf:`, `vllm:`, the scripted
test client) subclass `OwnChatClient` and implement `create` only, calling `count_usage` for each
reply. Clients that wrap another (`ManagedClient`, the embedded llama.cpp client) subclass
`WrappingChatClient`, which hands everything but `create` to `inner`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)


class OwnChatClient(ChatCompletionClient):
    """Base of clients that generate replies themselves.

    Subclasses implement `create` (and call `count_usage` with each reply's tokens), and may
    override `close` and `count_text_tokens`.

    Args:
        model_info: what the client supports (JSON output, structured output, ...).
        context_tokens: the context window, for `remaining_tokens`.
    """

    def __init__(self, *, model_info: ModelInfo, context_tokens: int = 1_000_000) -> None:
        self._info = model_info
        self._context_tokens = context_tokens
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def count_usage(self, prompt_tokens: int, completion_tokens: int) -> RequestUsage:
        """Add one reply's tokens to the totals; returns that reply's `RequestUsage`."""
        self._usage = RequestUsage(prompt_tokens=self._usage.prompt_tokens + prompt_tokens,
                                   completion_tokens=self._usage.completion_tokens + completion_tokens)
        return RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def count_text_tokens(self, text: str) -> int:
        """Tokens in `text` (tiktoken's estimate; override with the model's own tokenizer)."""
        from orca_math.tokens import estimate_tokens

        return estimate_tokens(text)

    def create_stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        raise NotImplementedError(f"{type(self).__name__} does not stream; orca-math never asks it to")

    async def close(self) -> None:  # noqa: B027 -- nothing to release by default
        """Release the model (override when there is something to release)."""

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return sum(self.count_text_tokens(str(m.content)) for m in messages)

    def remaining_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return max(0, self._context_tokens - self.count_tokens(messages))

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]  # deprecated upstream
        return self._info  # type: ignore[return-value]

    @property
    def model_info(self) -> ModelInfo:
        return self._info


class WrappingChatClient(ChatCompletionClient):
    """Base of clients that wrap another: everything but `create` is the inner client's.

    Subclasses implement `create`.

    Args:
        inner: the wrapped client.
    """

    def __init__(self, inner: ChatCompletionClient) -> None:
        self.inner = inner

    def create_stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        """Streams straight from the inner client (nothing the wrapper adds applies to streams)."""
        return self.inner.create_stream(*args, **kwargs)

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self.inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self.inner.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return self.inner.count_tokens(messages, **kwargs)

    def remaining_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return self.inner.remaining_tokens(messages, **kwargs)

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        return self.inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info


__all__ = ["OwnChatClient", "WrappingChatClient"]
