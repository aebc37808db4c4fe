"""Model clients. The one model interface is autogen_core's `ChatCompletionClient`.

`load_model(spec, **options)` builds one from a short spec:

* ``"local"`` — the embedded SmolLM2-135M-Instruct GGUF, run in-process by llama.cpp;
  ``"local:/path/model.gguf"`` for another GGUF file;
* ``"openai:<model>"`` — OpenAI, or any OpenAI-compatible server with ``base_url=``; reads
  ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``;
* ``"http://host:port/v1"`` — an OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp
  server); the model is ``model=`` or, when left out, the first model the server lists;
* ``"azure:<deployment>"`` — Azure OpenAI; reads ``AZURE_OPENAI_ENDPOINT``,
  ``AZURE_OPENAI_API_KEY`` and ``OPENAI_API_VERSION``;
* ``"hf:<path>"`` — a local Hugging Face transformers model, for small students;
* ``"vllm:<path>"`` — the same checkpoint in vLLM's offline engine, which batches concurrent calls;
* ``"vllm-serve:<path>"`` — the checkpoint served by ``vllm serve`` on a local port from the first
  call until the client is closed (served mode: data parallelism on a multi-GPU node).

Anything that already is a `ChatCompletionClient` (any autogen-ext client) is accepted wherever
a spec is (on the local executor; Ray workers build their own, from a spec). A spec with options
travels as a `ModelRef` (``ModelRef("http://127.0.0.1:8000/v1", model="qwen")``): plain data that
is turned into a client only where calls are made (see `orca_math.models.ref` for the walk). The spec kinds are registered once, in `orca_math.models.specs` (``SPEC_KINDS``), which
other packages extend through the ``orca_math.model_specs`` entry-point group.
"""

from __future__ import annotations

from typing import Any

from orca_math.models.endpoints import normalize_endpoint, without_credentials
from orca_math.models.errors import ModelError
from orca_math.models.identity import ModelIdentity, identity_of
from orca_math.models.ref import ModelRef, as_model
from orca_math.models.specs import describe_client, describe_spec, load_model, resolve_model

__all__ = [
    "ModelLike",
    "ModelRef",
    "as_model",
    "load_model",
    "resolve_model",
    "describe_client",
    "describe_spec",
    "identity_of",
    "ModelIdentity",
    "normalize_endpoint",
    "without_credentials",
    "bundled_gguf_path",
    "ModelError",
]

_without_credentials = without_credentials  # the name other releases imported


def __getattr__(name: str) -> Any:
    # Loaded on first use: autogen (and llama.cpp's helpers) are not needed to read the spec registry,
    # which `orca-math --help` does.
    if name == "ModelLike":
        from autogen_core.models import ChatCompletionClient

        globals()["ModelLike"] = model_like = str | ModelRef | ChatCompletionClient
        return model_like
    if name == "bundled_gguf_path":
        from orca_math.models.local import bundled_gguf_path

        return bundled_gguf_path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
