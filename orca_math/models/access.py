"""Check an OpenAI-compatible client's key once, with one cheap request, before its first chat call.

A wrong key used to cost a whole wave of chat requests (`--concurrency` of them, 16 or 256) before
the first 401 came back. `verify_access` sends one ``GET /models`` per client instead; concurrent
callers wait for that one check, and a 401 or 403 is raised to all of them before any chat
request leaves. Anything else the check meets (no ``/models`` endpoint, a timeout, a 5xx) says
nothing about the key: the client is then used as it is, and its chat calls report their own errors.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from orca_math.models.errors import AuthenticationError, translate_error

#: Seconds the one check may take before it is given up (the client is then used unchecked).
CHECK_TIMEOUT = 10.0

_UNCHECKED, _OK = "unchecked", "ok"
# Per client: _OK, the AuthenticationError it met, or absent (unchecked); and the check in flight.
# Kept here, keyed by the client object, rather than written onto a third-party client.
_STATE: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_PENDING: weakref.WeakKeyDictionary[Any, tuple[asyncio.AbstractEventLoop, asyncio.Task]] = weakref.WeakKeyDictionary()


# Per client built by load_model: how to list its models with its own key (a coroutine factory).
_LISTERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def register_access_check(client: Any, list_models: Any) -> None:
    """Record how to check `client`'s key: `list_models()` returns an awaitable that lists the models.

    `load_model` registers one for every OpenAI-family client it builds (it knows the endpoint
    and key); clients built elsewhere are not checked.
    """
    _LISTERS[client] = list_models


def register_models_list_check(client: Any, *, api_key: Any, base_url: str | None = None,
                               azure_endpoint: str | None = None, api_version: str | None = None) -> None:
    """Register a check that lists the endpoint's models (``GET /models``) with `client`'s own key.

    An autogen OpenAI-family client lists them through its own openai SDK client (autogen keeps it
    as ``_client``): its connection pool and TLS settings, and the connection the listing opens then
    serves the first chat call. Only where this autogen version keeps it elsewhere is a listing SDK
    client built, from the endpoint given: an Azure endpoint with its API version, else `base_url`.
    """
    sdk = getattr(client, "_client", None)
    if callable(getattr(getattr(sdk, "models", None), "list", None)):
        register_access_check(client, lambda: sdk.models.list())
        return

    def list_models():
        import openai

        common = {"api_key": api_key, "max_retries": 0}
        if azure_endpoint:
            sdk = openai.AsyncAzureOpenAI(azure_endpoint=azure_endpoint, api_version=api_version, **common)
        else:
            sdk = openai.AsyncOpenAI(base_url=base_url, **common)

        async def check() -> None:
            async with sdk:
                await sdk.models.list()

        return check()

    register_access_check(client, list_models)


def mark_access_checked(client: Any) -> None:
    """Record that `client`'s key already worked (e.g. `load_model` listed the server's models with it)."""
    _STATE[client] = _OK


async def verify_access(client: Any, *, where: str = "the server") -> None:
    """Make sure `client`'s key is accepted, checking it at most once per client.

    Only clients `load_model` built for OpenAI-family endpoints (OpenAI, Azure, any OpenAI-compatible
    URL) are checked; others are used as they are.

    Raises:
        AuthenticationError: the server rejected the key (401) or its permissions (403).
    """
    state = _STATE.get(client)
    if state == _OK:
        return
    if isinstance(state, AuthenticationError):
        raise AuthenticationError(str(state))  # a fresh error per caller: one shared traceback would grow
    if state is None and client not in _LISTERS and not _register_from_component(client):
        _STATE[client] = _OK
        return
    loop = asyncio.get_running_loop()
    pending = _PENDING.get(client)
    if pending is None or pending[0] is not loop:  # tasks belong to one loop (sync twins, notebooks)
        pending = (loop, loop.create_task(_check(client, where)))
        _PENDING[client] = pending
    await asyncio.shield(pending[1])
    await verify_access(client, where=where)


async def _check(client: Any, where: str) -> None:
    try:
        await asyncio.wait_for(_LISTERS[client](), CHECK_TIMEOUT)
    except Exception as exc:  # only a rejected key matters here
        error = translate_error(exc, where=where)
        if isinstance(error, AuthenticationError):
            _STATE[client] = error
            return
    _STATE[client] = _OK


def _register_from_component(client: Any) -> bool:
    """A client built elsewhere (an autogen OpenAI-family client): check its key from its public config.

    `dump_component()` gives its ``base_url`` (or Azure endpoint and version) and ``api_key``.
    Returns whether a check could be registered.
    """
    try:
        from autogen_ext.models.openai import BaseOpenAIChatCompletionClient
    except ImportError:  # pragma: no cover - autogen-ext without its openai extra
        return False
    if not isinstance(client, BaseOpenAIChatCompletionClient):
        return False
    try:
        config = dict(client.dump_component().config or {})
    except Exception:  # a client that cannot describe itself is used unchecked
        return False
    key = config.get("api_key")
    key = key.get_secret_value() if hasattr(key, "get_secret_value") else key
    register_models_list_check(client, api_key=key, base_url=config.get("base_url"),
                               azure_endpoint=config.get("azure_endpoint"), api_version=config.get("api_version"))
    return True


__all__ = ["CHECK_TIMEOUT", "mark_access_checked", "register_access_check", "register_models_list_check", "verify_access"]
