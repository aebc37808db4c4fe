"""vLLM's offline engine as an autogen `ChatCompletionClient`: every concurrent `create` is batched.

Spec: ``load_model("vllm:<checkpoint folder or Hub id>", **options)``. Use it to sample and evaluate
a student checkpoint at throughput; the ``hf:`` client generates one reply at a time.

    client = VLLMChatCompletionClient("ckpt/m1", prompt_format="orca", max_model_len=2048)
    results = await asyncio.gather(*(client.create([UserMessage(content=q, source="user")])
                                     for q in questions))       # one engine batch
    samples = await client.create_many([UserMessage(content=q, source="user")], n=4)  # 4 samples, 1 request
    await client.close()   # shuts the engine down and frees its (GPU) memory

How calls are batched: a background thread owns the engine. Requests that arrive while it is idle
are collected for `batch_wait_s` (a few ms) and added together; requests that arrive while it is
generating join the running batch at the next decoding step (vLLM's continuous batching). Callers
therefore get throughput by keeping many calls in flight (e.g. ``concurrency=256``), never by
waiting on one another. `stats` counts what the engine saw.

The prompt is rendered exactly as the ``hf:`` client renders it (`prompt_format` "chat" or
"orca", see `orca_math.models.hf`). The engine runs in worker processes of its own (vLLM's engine
core): scripts that build this client need an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    CreateResult,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)

from orca_math.models._vllm_engine import INSTALL_HINT, EngineDeadError, EngineLoop, log_tail, start_engine
from orca_math.models.base import OwnChatClient
from orca_math.models.errors import ModelSpecError
from orca_math.models.hf import _ORCA_STOP, render_prompt
from orca_math.models.identity import (
    ModelIdentity,
    checkpoint_fingerprint,
    local_checkpoint,
    register_identity,
)

#: ``extra_create_args`` keys `create` accepts, mapped onto vLLM's `SamplingParams`.
CREATE_ARGS = frozenset({
    "temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "stop", "repetition_penalty",
    "presence_penalty", "frequency_penalty",
})
_ids = itertools.count()


class VLLMChatCompletionClient(OwnChatClient):
    """A `ChatCompletionClient` over an in-process vLLM engine that batches concurrent calls.

    Args:
        model: a checkpoint folder (config.json, weights, tokenizer) or a Hub id.
        prompt_format: ``"chat"`` (the tokenizer's chat template, the Orca format when it has none)
            or ``"orca"`` (``USER: {question}\\nASSISTANT:``, what our SFT preset trains on).
        max_new_tokens: the default completion budget; ``max_tokens`` in a call overrides it.
        tensor_parallel_size: GPUs one model is split over.
        gpu_memory_utilization: share of each GPU's memory vLLM may take (weights + KV cache);
            None keeps vLLM's default (0.92). Lower it when the GPU is shared.
        max_model_len: longest prompt + reply in tokens; None is the model's own. Lower it to
            shrink the KV cache it must be able to hold.
        dtype: weights and activations dtype; None is "float32" on CPU and "auto" on a GPU.
        enforce_eager: skip CUDA graphs / torch.compile; None is True on CPU (compiling costs
            minutes there) and False on a GPU.
        seed: the engine's sampling seed. On CPU vLLM has no per-request seed, so this is the
            only one; on a GPU ``seed`` in a call also works.
        kv_cache_space_gib: CPU only: GiB for the KV cache (sets ``VLLM_CPU_KVCACHE_SPACE``);
            None leaves vLLM's default or the variable you set.
        engine_args: further `vllm.EngineArgs` fields (e.g. ``{"max_num_seqs": 128}``); an unknown
            field is an error.
        log_dir: where the engine's log file goes (errors quote its last lines); defaults to
            ``~/.cache/orca-math/vllm-logs``.
        batch_wait_s: how long an idle engine waits for more calls before it starts a batch.

    `create` reads ``temperature`` (0 is greedy), ``top_p``, ``top_k``, ``min_p``, ``max_tokens``,
    ``seed`` (not on CPU), ``stop``, ``repetition_penalty``, ``presence_penalty`` and
    ``frequency_penalty`` from ``extra_create_args``; any other key is an error. ``json_output``
    is accepted and ignored (decoding is not constrained; `model_info` says so).

    Raises:
        ModelSpecError: vLLM is not installed, the folder is not a checkpoint vLLM can load, an
            option is invalid, or the engine ran out of memory (the message names the option to
            lower).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        prompt_format: str = "chat",
        max_new_tokens: int = 512,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        dtype: str | None = None,
        enforce_eager: bool | None = None,
        seed: int = 0,
        kv_cache_space_gib: int | None = None,
        engine_args: Mapping[str, Any] | None = None,
        log_dir: str | Path | None = None,
        batch_wait_s: float = 0.005,
    ) -> None:
        if prompt_format not in ("chat", "orca"):
            raise ModelSpecError(f"prompt_format={prompt_format!r}: use 'chat' or 'orca'.")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ModelSpecError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
        self._source = _check_checkpoint(model)
        self.max_new_tokens = max_new_tokens
        options = {"tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
                   "max_model_len": max_model_len, "dtype": dtype, "enforce_eager": enforce_eager, "seed": seed,
                   **dict(engine_args or {})}
        self._llm, self.log_path, self.on_cpu = start_engine(self._source, options, kv_cache_space_gib, log_dir)
        self.engine_options = {k: v for k, v in options.items() if v is not None}
        try:
            from transformers import AutoTokenizer

            # Our own tokenizer for rendering and counting in the caller's thread; the engine's is
            # busy detokenising in its thread, and HF tokenizers are not safe to share across threads.
            self._tokenizer = AutoTokenizer.from_pretrained(self._source)
        except Exception:
            self._llm.llm_engine.engine_core.shutdown()
            raise
        self._use_orca = prompt_format == "orca" or not getattr(self._tokenizer, "chat_template", None)
        self._context = int(self._llm.llm_engine.model_config.max_model_len)
        self._engine = EngineLoop(self._llm, batch_wait_s=batch_wait_s, log_path=self.log_path)
        super().__init__(model_info=ModelInfo(vision=False, function_calling=False, json_output=False,
                                              family=ModelFamily.UNKNOWN, structured_output=False),
                         context_tokens=self._context)
        source = local_checkpoint(self._source)
        register_identity(self, ModelIdentity(
            name=Path(str(model)).name or str(model), provider="vllm",
            endpoint=f"vLLM in-process ({'cpu' if self.on_cpu else 'gpu'})",
            checkpoint=checkpoint_fingerprint(source) if source is not None else None,
            # No per-request seed on CPU ("CPU Generator does not use offset"); calls queue in the engine.
            supports_seed=not self.on_cpu, samples_per_request=True, queues_calls=True,
        ))

    @property
    def prompt_format(self) -> str:
        """The format in use: ``"orca"`` or ``"chat"``."""
        return "orca" if self._use_orca else "chat"

    @property
    def stats(self) -> dict[str, int]:
        """What the engine saw: ``requests``, ``batches`` (calls that added requests to the engine),
        ``largest_batch``, ``peak_running`` (requests in the engine at once) and ``steps``."""
        return dict(self._engine.stats)

    def render(self, messages: Sequence[LLMMessage]) -> str:
        """The prompt text `messages` become, in this client's format (the same as ``hf:``'s)."""
        return render_prompt(messages, self._tokenizer, orca=self._use_orca)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = (),
        tool_choice: Any = "auto",
        json_output: Any = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """Generate one reply; it joins the engine's current batch. Usage counts are real token counts."""
        if "n" in extra_create_args:
            raise ValueError("create() makes one reply; for n samples of one prompt call create_many(messages, n=n).")
        results = await self.create_many(messages, n=1, tools=tools, extra_create_args=extra_create_args,
                                          cancellation_token=cancellation_token)
        return results[0]

    async def create_many(
        self,
        messages: Sequence[LLMMessage],
        *,
        n: int,
        tools: Sequence[Any] = (),
        json_output: Any = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> list[CreateResult]:
        """`n` samples of one prompt in one engine request (vLLM's ``SamplingParams(n=...)``).

        The prompt is prefilled once and shared by the `n` sequences. Usage: each result counts
        the prompt and its own reply; `total_usage` counts the prompt once per request.
        """
        if tools:
            raise ValueError("VLLMChatCompletionClient does not support tools.")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, not {n!r}.")
        params = self._sampling_params(dict(extra_create_args), n)
        prompt_ids = self._tokenizer(self.render(messages), add_special_tokens=self._use_orca)["input_ids"]
        request = self._engine.submit(f"orca-{next(_ids)}", prompt_ids, params)
        waiting = asyncio.wrap_future(request.future)  # cancelling it cancels the request's future too
        if cancellation_token is not None:
            cancellation_token.link_future(waiting)
        try:
            output = await waiting
        except asyncio.CancelledError:
            self._engine.abort(request)  # nobody waits for it: stop generating it
            raise
        prompt_tokens = len(output.prompt_token_ids or prompt_ids)
        results = [self._result(completion, prompt_tokens) for completion in output.outputs]
        self.count_usage(prompt_tokens, sum(r.usage.completion_tokens for r in results))
        return results

    def _result(self, completion: Any, prompt_tokens: int) -> CreateResult:
        finish = {"stop": "stop", "length": "length"}.get(str(completion.finish_reason), "unknown")
        text = completion.text.strip() if self._use_orca else completion.text
        usage = RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=len(completion.token_ids))
        return CreateResult(finish_reason=finish, content=text, usage=usage, cached=False)  # type: ignore[arg-type]

    def _sampling_params(self, args: dict[str, Any], n: int) -> Any:
        from vllm import SamplingParams

        unknown = sorted(set(args) - CREATE_ARGS)
        if unknown:
            raise ValueError(f"vLLM does not take extra_create_args {unknown}: use {sorted(CREATE_ARGS)}.")
        if args.get("seed") is not None and self.on_cpu:
            # vLLM on CPU fails such a request deep in the sampler ("CPU Generator does not use offset").
            raise ValueError("vLLM on CPU has no per-request seed: drop 'seed' from the call and seed the engine "
                             "with VLLMChatCompletionClient(..., seed=...).")
        stops = args.pop("stop", None) or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        if self._use_orca:
            stops.append(_ORCA_STOP)  # a model that did not learn to end would start the next turn here
        args["max_tokens"] = int(args.get("max_tokens") or self.max_new_tokens)
        if args.get("top_k") == 0:
            args.pop("top_k")  # 0 means "off" for hf:, and vLLM's default is off
        try:
            return SamplingParams(n=n, stop=stops or None, **args)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"vLLM refused the sampling arguments {args}: {exc}") from None

    async def create_stream(
        self, messages: Sequence[LLMMessage], **kwargs: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Not incremental: yields the whole reply once, then the `CreateResult`."""
        result = await self.create(messages, **kwargs)
        yield str(result.content)
        yield result

    async def close(self) -> None:
        """Stop the engine and its worker processes, freeing their (GPU) memory; idempotent."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        """The synchronous `close`: fails calls still in flight, then stops the engine processes."""
        self._engine.stop()
        llm, self._llm = self._llm, None
        if llm is None:
            return
        llm.llm_engine.engine_core.shutdown()
        del llm
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines of the engine's log file."""
        return log_tail(self.log_path, lines)

    def count_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return len(self._tokenizer(self.render(messages), add_special_tokens=self._use_orca)["input_ids"])


def _check_checkpoint(model: str | Path) -> str:
    """Fail fast, before vLLM starts worker processes, on a folder that is not a checkpoint."""
    if not isinstance(model, str | Path) or not str(model).strip():
        raise ModelSpecError(f"A vllm: model is a checkpoint folder or a Hub id, not {model!r}.")
    path = Path(model).expanduser()
    looks_local = path.exists() or str(model).startswith((".", "/", "~")) or os.sep + os.sep in str(model)
    if not looks_local:
        return str(model)  # a Hub id: vLLM resolves it (and needs the network or a warm cache)
    if not path.is_dir():
        raise ModelSpecError(f"vLLM cannot load {path}: it is not a folder (pass a checkpoint folder "
                             "with config.json and weights).")
    if not (path / "config.json").is_file():
        raise ModelSpecError(f"vLLM cannot load {path}: it has no config.json, so it is not a Hugging Face "
                             "checkpoint folder (a GGUF file needs orca_math.models.convert.gguf_to_hf first).")
    return str(path)


__all__ = ["CREATE_ARGS", "INSTALL_HINT", "EngineDeadError", "VLLMChatCompletionClient"]
