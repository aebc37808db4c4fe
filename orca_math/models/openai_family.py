"""The OpenAI-family clients behind ``openai:``, ``azure:`` and URL specs: autogen's OpenAI clients with orca-math's defaults.

``openai:`` and URL specs load `LeanOpenAIChatCompletionClient`, ``azure:`` specs
`LeanAzureOpenAIChatCompletionClient`: autogen's clients with a direct path for plain text chats
(`orca_math.models.openai_lean`).

Every client is built with no retries of its own (the engine retries), the aiohttp transport by
default, its key registered for scrubbing, an access check for `orca_math.models.access`, and a
`ModelIdentity` for run keys and descriptions.
"""

from __future__ import annotations

import os
from typing import Any

from autogen_core.models import ModelFamily, ModelInfo

from orca_math.models.endpoints import normalize_endpoint, without_credentials
from orca_math.models.errors import (
    MissingAPIKeyError,
    ModelError,
    ModelSpecError,
    ServerUnreachableError,
    register_secret,
    translate_error,
)
from orca_math.models.identity import ModelIdentity, register_identity

_UNKNOWN_MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=True,
    family=ModelFamily.UNKNOWN,
    structured_output=False,
)

# The TLS context of the first aiohttp client this process built, given to every later one. Each
# client would otherwise build its own and load the CA bundle again (about 25 ms), and a command
# builds several: the model check's, the engine's, one per model role. The context holds settings
# and trusted certificates only, and is safe to share between clients, threads and event loops.
_shared_tls: list[Any] = []


def _http_client(transport: str):
    if transport == "aiohttp":
        try:
            from openai import DefaultAioHttpClient

            if _shared_tls:
                return DefaultAioHttpClient(verify=_shared_tls[0])
            client = DefaultAioHttpClient()
        except (ImportError, RuntimeError):  # openai without its aiohttp extra
            return None
        import ssl

        context = getattr(getattr(client, "_transport", None), "ssl_context", None)  # the SDK's own, as it built it
        if isinstance(context, ssl.SSLContext):
            _shared_tls.append(context)
        return client
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
    from orca_math.models.access import register_models_list_check
    from orca_math.models.openai_lean import LeanOpenAIChatCompletionClient

    cls = cls or LeanOpenAIChatCompletionClient
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
    # `verify_access` lists the endpoint's models with this client's key, once, before its first chat call.
    register_models_list_check(client, api_key=kwargs.get("api_key"), base_url=kwargs.get("base_url"),
                               azure_endpoint=kwargs.get("azure_endpoint"), api_version=kwargs.get("api_version"))
    info = dict(client.model_info)
    return register_identity(client, ModelIdentity(
        name=model, provider=provider if (provider != "openai" or not base_url) else "openai-compatible",
        endpoint=normalize_endpoint(without_credentials(where)), supports_seed=True,
        structured_output=bool(info.get("structured_output", False)),
    ))


def _with_cli_message(error: ModelError, cli_message: str) -> ModelError:
    """Attach the command line's wording (flags and variables, not keyword arguments); `orca-math` prints it."""
    error.cli_message = cli_message  # type: ignore[attr-defined]
    return error


def load_openai(model: str, *, base_url: str | None = None, api_key: str | None = None, transport: str = "aiohttp", **options: Any):
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


def load_openai_compatible(*, base_url: str, model: str | None = None, api_key: str | None = None, transport: str = "aiohttp", **options: Any):
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


def load_azure(deployment: str, *, api_key: str | None = None, endpoint: str | None = None, api_version: str | None = None, model: str | None = None, transport: str = "aiohttp", **options: Any):
    from orca_math.models.openai_lean import LeanAzureOpenAIChatCompletionClient

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
                          cls=LeanAzureOpenAIChatCompletionClient, provider="azure", endpoint=endpoint, **options)


__all__ = ["load_azure", "load_openai", "load_openai_compatible"]
