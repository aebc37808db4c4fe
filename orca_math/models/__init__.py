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
a spec is.
"""

from __future__ import annotations

import os
from typing import Any

from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo

from orca_math.models.errors import (
    MissingAPIKeyError,
    ModelError,
    ModelSpecError,
    ServerUnreachableError,
    register_secret,
    translate_error,
)
from orca_math.models.identity import (
    ModelIdentity,
    checkpoint_fingerprint,
    identity_of,
    local_checkpoint,
    register_identity,
)

ModelLike = str | ChatCompletionClient

__all__ = [
    "ModelLike",
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

_UNKNOWN_MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=True,
    family=ModelFamily.UNKNOWN,
    structured_output=False,
)

_SPEC_HELP = (
    "use 'local', 'local:<file.gguf>', 'openai:<model>', 'azure:<deployment>', 'hf:<path>', 'vllm:<path>', 'vllm-serve:<path>', "
    "an http(s):// URL of an OpenAI-compatible server, or pass a ChatCompletionClient"
)


def load_model(spec: str = "local", **options: Any) -> ChatCompletionClient:
    """Build a `ChatCompletionClient` from a spec string (see the module docstring).

    Args:
        spec: the model spec.
        **options: passed to the client: e.g. ``base_url``, ``api_key``, ``model``, ``timeout``,
            ``transport`` ("aiohttp", the default for OpenAI-compatible endpoints, or "httpx"),
            ``n_ctx`` / ``n_threads`` for local models.

    Raises:
        ModelSpecError: the spec is not understood.
        MissingAPIKeyError: an OpenAI or Azure spec without a key.
        ServerUnreachableError: a URL spec whose server does not answer.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"A model spec must be a non-empty string: {_SPEC_HELP}.")
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    if spec.startswith(("http://", "https://")):
        return _openai_compatible(base_url=spec, **options)
    if kind == "local":
        from orca_math.models.local import load_local_model

        return load_local_model(rest or None, **options)
    if kind == "openai":
        if not rest:
            raise ModelSpecError("The spec 'openai:' needs a model name, for example 'openai:gpt-4o'.")
        return _openai(rest, **options)
    if kind == "azure":
        if not rest:
            raise ModelSpecError("The spec 'azure:' needs a deployment name, for example 'azure:gpt-4o'.")
        return _azure(rest, **options)
    if kind == "hf":
        if not rest:
            raise ModelSpecError("The spec 'hf:' needs a model folder, for example 'hf:./checkpoints/m1'.")
        from orca_math.models.hf import TransformersChatCompletionClient

        return TransformersChatCompletionClient(rest, **options)
    if kind == "vllm":
        if not rest:
            raise ModelSpecError("The spec 'vllm:' needs a checkpoint folder, for example 'vllm:./checkpoints/m1'.")
        from orca_math.models.vllm import VLLMChatCompletionClient

        return VLLMChatCompletionClient(rest, **options)
    if kind == "vllm-serve":
        if not rest:
            raise ModelSpecError("The spec 'vllm-serve:' needs a checkpoint folder, for example 'vllm-serve:./checkpoints/m1'.")
        from orca_math.models.vllm_served import ServedVLLMClient

        return ServedVLLMClient(rest, **options)
    raise ModelSpecError(f"Unknown model spec {spec!r}: {_SPEC_HELP}.")


def resolve_model(model: ModelLike, **options: Any) -> ChatCompletionClient:
    """Return `model` itself when it is a client, else `load_model(model)`."""
    if isinstance(model, ChatCompletionClient):
        return model
    if hasattr(model, "create") and hasattr(model, "model_info"):  # duck-typed client
        return model  # type: ignore[return-value]
    return load_model(model, **options)


def _http_client(transport: str):
    if transport == "aiohttp":
        try:
            from openai import DefaultAioHttpClient

            return DefaultAioHttpClient()
        except (ImportError, RuntimeError):  # openai without its aiohttp extra
            return None
    if transport == "httpx":
        return None
    raise ModelSpecError(f"Unknown transport {transport!r}: use 'aiohttp' or 'httpx'.")


def _split_credentials(base_url: str | None, api_key: str | None) -> tuple[str | None, str | None]:
    """Take `user:password@` out of a URL: it would be logged by the HTTP client, and aiohttp refuses
    it next to an API key. A password with no explicit key becomes the (bearer) API key."""
    if not base_url:
        return base_url, api_key
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if not (parts.username or parts.password):
        return base_url, api_key
    register_secret(parts.password)
    return without_credentials(base_url), api_key or parts.password


def _openai_client(model: str, *, base_url: str | None, api_key: str | None, transport: str, cls: Any = None,
                   provider: str = "openai", endpoint: str | None = None, **options: Any):
    """An autogen OpenAI-family client with orca-math's defaults (no retries of its own, aiohttp), registered."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    cls = cls or OpenAIChatCompletionClient
    base_url, api_key = _split_credentials(base_url, api_key)
    register_secret(api_key)  # a server may echo it in an error body: scrubbed from every error text
    kwargs: dict[str, Any] = {"model": model, "api_key": api_key, "max_retries": options.pop("max_retries", 0)}
    if base_url:
        kwargs["base_url"] = base_url
    http_client = _http_client(transport)
    if http_client is not None:
        kwargs["http_client"] = http_client
    kwargs.update(options)
    try:
        client = cls(**kwargs)
    except ValueError as exc:
        # autogen knows the capabilities of OpenAI's own model names only; any other model (a
        # self-hosted one, a new name) needs model_info, which it asks for with this ValueError.
        if "model_info" in kwargs or "model_info" not in str(exc):
            raise
        client = cls(**kwargs, model_info=_UNKNOWN_MODEL_INFO)
    where = endpoint or base_url or "https://api.openai.com/v1"
    _register_key_check(client, cls, kwargs)
    info = dict(client.model_info)
    return register_identity(client, ModelIdentity(
        name=model, provider=provider if (provider != "openai" or not base_url) else "openai-compatible",
        endpoint=normalize_endpoint(without_credentials(where)), supports_seed=True,
        structured_output=bool(info.get("structured_output", False)),
    ))


def _register_key_check(client: Any, cls: Any, kwargs: dict[str, Any]) -> None:
    """Let `verify_access` list the endpoint's models with this client's key, once, before its first chat call."""
    from orca_math.models.access import register_access_check

    def list_models():
        import openai

        common = {"api_key": kwargs.get("api_key"), "max_retries": 0}
        if "azure_endpoint" in kwargs:
            sdk = openai.AsyncAzureOpenAI(azure_endpoint=kwargs["azure_endpoint"], api_version=kwargs.get("api_version"), **common)
        else:
            sdk = openai.AsyncOpenAI(base_url=kwargs.get("base_url"), **common)

        async def check() -> None:
            async with sdk:
                await sdk.models.list()

        return check()

    register_access_check(client, list_models)


def _with_cli_message(error: ModelError, cli_message: str) -> ModelError:
    """Attach the command line's wording (flags and variables, not keyword arguments); `orca-math` prints it."""
    error.cli_message = cli_message  # type: ignore[attr-defined]
    return error


def _openai(model: str, *, base_url: str | None = None, api_key: str | None = None, transport: str = "aiohttp", **options: Any):
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = api_key or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if base_url:
            api_key = "not-needed"  # self-hosted servers usually accept any key
        else:
            raise _with_cli_message(
                MissingAPIKeyError(f"No API key for 'openai:{model}': set OPENAI_API_KEY or pass api_key=..."),
                f"No API key for 'openai:{model}': set OPENAI_API_KEY, or pass --base-url for a self-hosted server.",
            )
    return _openai_client(model, base_url=base_url, api_key=api_key, transport=transport, **options)


def _openai_compatible(*, base_url: str, model: str | None = None, api_key: str | None = None, transport: str = "aiohttp", **options: Any):
    base_url, api_key = _split_credentials(base_url, api_key)
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
    listed = model is None
    if listed:
        model = _first_served_model(base_url, api_key)
    client = _openai_client(model, base_url=base_url, api_key=api_key, transport=transport, **options)
    if listed:  # listing the models was the key check (see orca_math.models.access)
        from orca_math.models.access import mark_access_checked

        mark_access_checked(client)
    return client


def _first_served_model(base_url: str, api_key: str) -> str:
    """Ask an OpenAI-compatible server which model it serves (GET /models)."""
    import openai

    try:
        with openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=10) as client:
            models = client.models.list().data
    except Exception as exc:
        translated = translate_error(exc, where=base_url)
        if isinstance(translated, ModelError):
            raise translated from None
        raise ServerUnreachableError(f"Could not list the models served at {base_url}: {exc}") from None
    if not models:
        raise _with_cli_message(ModelSpecError(f"{base_url} serves no models; pass model=... explicitly."),
                                f"{base_url} serves no models; name one with --model-name.")
    return models[0].id


def _azure(deployment: str, *, api_key: str | None = None, endpoint: str | None = None, api_version: str | None = None, model: str | None = None, transport: str = "aiohttp", **options: Any):
    from autogen_ext.models.openai import AzureOpenAIChatCompletionClient

    endpoint = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
    api_key = api_key or os.environ.get("AZURE_OPENAI_API_KEY")
    if not endpoint:
        raise _with_cli_message(
            ModelSpecError(f"No endpoint for 'azure:{deployment}': set AZURE_OPENAI_ENDPOINT or pass endpoint=..."),
            f"No endpoint for 'azure:{deployment}': set AZURE_OPENAI_ENDPOINT.",
        )
    if not api_key and "azure_ad_token_provider" not in options:
        raise _with_cli_message(
            MissingAPIKeyError(f"No API key for 'azure:{deployment}': set AZURE_OPENAI_API_KEY or pass api_key=..."),
            f"No API key for 'azure:{deployment}': set AZURE_OPENAI_API_KEY.",
        )
    options = {"azure_deployment": deployment, "azure_endpoint": endpoint,
               "api_version": api_version or os.environ.get("OPENAI_API_VERSION", "2024-10-21"), **options}
    return _openai_client(model or deployment, base_url=None, api_key=api_key, transport=transport,
                          cls=AzureOpenAIChatCompletionClient, provider="azure", endpoint=endpoint, **options)


def without_credentials(url: str) -> str:
    """Strip `user:password@` from a URL: descriptions end up in manifests, logs and cards."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def normalize_endpoint(url: str) -> str:
    """One spelling per endpoint, for run keys and cache keys (not for connecting).

    The scheme and host are lower-cased, a default port (80, 443) and trailing slashes are dropped:
    ``HTTP://127.0.0.1:8000/v1/`` and ``http://127.0.0.1:8000/v1`` are one endpoint. ``localhost`` is
    kept as written: it may resolve to ``::1`` as well as ``127.0.0.1``, which can be two servers, so
    the host's spelling stays part of the key. Text that is not a URL comes back unchanged.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # not a number: leave the text alone
        return url
    if not parts.scheme or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # hostname is lower-case already
    if (scheme, port) in (("http", 80), ("https", 443)):
        port = None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))


_without_credentials = without_credentials  # the name other releases imported


def describe_client(client: ChatCompletionClient, *, with_url: bool = True) -> str:
    """A short, key-free description of a client: its model name and, optionally, its endpoint.

    Read from the client's `ModelIdentity` (see `orca_math.models.identity`).
    """
    return identity_of(client).describe(with_url=with_url)


#: Specs whose rest is a local checkpoint (folder or weight file), identified by its weights.
_CHECKPOINT_SPECS = ("hf", "local", "vllm", "vllm-serve")


def describe_spec(model: ModelLike) -> str:
    """A key-free string naming a model, for manifests and run keys.

    A spec naming a local checkpoint (``hf:<folder>``, ``local:<file.gguf>``) carries the
    checkpoint's `checkpoint_fingerprint`, so the run key changes when its weights do.
    """
    if isinstance(model, str):
        spec = normalize_endpoint(without_credentials(model))
        kind, _, rest = spec.partition(":")
        path = local_checkpoint(rest) if kind in _CHECKPOINT_SPECS and rest else None
        return f"{spec} (checkpoint {checkpoint_fingerprint(path)})" if path is not None else spec
    return describe_client(model)
