"""``vllm-serve:<checkpoint>``: a client that serves its checkpoint with ``vllm serve`` while in use.

The learning loop builds one sampler per checkpoint and the engine closes it when the step ends.
Behind this spec that lifecycle is served mode: the first call starts ``vllm serve CKPT`` on a
free local port (`orca_math.models.vllm_server.VLLMServer`), every call goes to it through the
OpenAI-compatible client, and `close` stops the server and everything it started, so the GPUs
are free before the next training step. An error or Ctrl-C in the step closes the client too.

    learner = IterativeLearner(..., sampler_model_factory=lambda ckpt: f"vllm-serve:{ckpt}")
    client = load_model("vllm-serve:ckpt/m1", data_parallel_size=8, max_model_len=2048)

Options are `VLLMServer`'s (``data_parallel_size``, ``tensor_parallel_size``, ``max_model_len``,
``gpu_memory_utilization``, ``dtype``, ``python`` for vLLM in its own venv, ...). A server that
dies mid-step fails the calls still waiting with its last log lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage, ModelFamily, ModelInfo

from orca_math.models.base import OwnChatClient
from orca_math.models.identity import ModelIdentity, register_identity

#: The name the server gives the model (the OpenAI client asks for it by this name).
SERVED_NAME = "student"


class ServedVLLMClient(OwnChatClient):
    """Serves `checkpoint` with ``vllm serve`` from the first call until `close`; see the module docstring.

    Args:
        checkpoint: an HF checkpoint folder (what the SFT adapter saves).
        transport: the HTTP transport of the OpenAI-compatible client ("aiohttp" or "httpx").
        **server_options: `VLLMServer` options.
    """

    def __init__(self, checkpoint: str | Path, *, transport: str = "aiohttp", **server_options: Any) -> None:
        from orca_math.models.vllm_server import VLLMServer

        super().__init__(model_info=ModelInfo(vision=False, function_calling=False, json_output=False,
                                              family=ModelFamily.UNKNOWN, structured_output=False))
        self.checkpoint = str(checkpoint)
        self.server = VLLMServer(checkpoint, served_model_name=SERVED_NAME, **server_options)
        self._transport = transport
        self._inner: Any = None
        self._starting = asyncio.Lock()
        register_identity(self, ModelIdentity(name=Path(self.checkpoint).name or self.checkpoint, provider="vllm",
                                              endpoint="vllm serve (local)", supports_seed=True,
                                              samples_per_request=True))

    async def _client(self) -> Any:
        async with self._starting:  # concurrent first calls start one server
            if self._inner is None:
                from orca_math.models.openai_family import load_openai_compatible

                url = await self.server.astart()
                self._inner = load_openai_compatible(base_url=url, model=SERVED_NAME, transport=self._transport)
            elif not self.server.running():
                raise self.server.died_error()
        return self._inner

    async def create(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = (), tool_choice: Any = "auto",
                     json_output: bool | type | None = None, extra_create_args: Mapping[str, Any] = {},
                     cancellation_token: CancellationToken | None = None) -> CreateResult:
        """One reply from the served checkpoint (the server starts on the first call)."""
        inner = await self._client()
        result = await inner.create(messages, json_output=json_output, extra_create_args=extra_create_args,
                                    cancellation_token=cancellation_token)
        self.count_usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        return result

    async def close(self) -> None:
        """Close the HTTP client and stop the server (idempotent)."""
        if self._inner is not None:
            await self._inner.close()
            self._inner = None
        await asyncio.to_thread(self.server.stop)

    def __repr__(self) -> str:
        return f"ServedVLLMClient({self.checkpoint!r}, url={self.server.url!r})"


__all__ = ["SERVED_NAME", "ServedVLLMClient"]
