"""Helpers for the engine and fault-server tests: a real OpenAI client pointed at a fault server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from autogen_core.models import ModelFamily, ModelInfo, UserMessage

T = TypeVar("T")

FAULT_MODEL_INFO = ModelInfo(
    vision=False, function_calling=False, json_output=True, family=ModelFamily.UNKNOWN, structured_output=False
)


def openai_client(base_url: str, *, api_key: str = "sk-test", timeout: float = 5.0, aiohttp: bool = False):
    """A real autogen OpenAIChatCompletionClient without its own retries."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    kwargs: dict[str, Any] = {}
    if aiohttp:
        from openai import DefaultAioHttpClient

        kwargs["http_client"] = DefaultAioHttpClient()
    return OpenAIChatCompletionClient(
        model="fault-model", base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout,
        model_info=FAULT_MODEL_INFO, **kwargs,
    )


def ask(text: str = "How many apples are in 7 boxes of 6?") -> list[UserMessage]:
    return [UserMessage(content=text, source="user")]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
