"""Check an OpenAI-compatible client's key once, with one cheap request, before its first chat call.

A wrong key used to cost a whole wave of chat requests (`--concurrency` of them, 16 or 256) before
the first 401 came back. `verify_access` sends one ``GET /models`` per client instead; concurrent
callers wait for that one check, and a 401 or 403 is raised to all of them before any chat
request leaves. Anything else the check meets (no ``/models`` endpoint, a timeout, a 5xx) says
nothing about the key: the client is then used as it is, and its chat calls report their own errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

from orca_math.models.errors import AuthenticationError, translate_error

#: Seconds the one check may take before it is given up (the client is then used unchecked).
CHECK_TIMEOUT = 10.0

_UNCHECKED, _OK = "unchecked", "ok"


def mark_access_checked(client: Any) -> None:
    """Record that `client`'s key already worked (e.g. `load_model` listed the server's models with it)."""
    client._orca_math_access = _OK  # noqa: SLF001 -- orca-math's own marker on the client


async def verify_access(client: Any, *, where: str = "the server") -> None:
    """Make sure `client`'s key is accepted, checking it at most once per client.

    Clients other than autogen's OpenAI-family clients (OpenAI, Azure, any OpenAI-compatible URL)
    are not checked.

    Raises:
        AuthenticationError: the server rejected the key (401) or its permissions (403).
    """
    state = getattr(client, "_orca_math_access", None)
    if state == _OK:
        return
    if isinstance(state, AuthenticationError):
        raise AuthenticationError(str(state))  # a fresh error per caller: one shared traceback would grow
    if state is None and not _is_openai_family(client):
        client._orca_math_access = _OK  # noqa: SLF001
        return
    loop = asyncio.get_running_loop()
    pending = getattr(client, "_orca_math_access_check", None)
    if pending is None or pending[0] is not loop:  # tasks belong to one loop (sync twins, notebooks)
        pending = (loop, loop.create_task(_check(client, where)))
        client._orca_math_access_check = pending  # noqa: SLF001
    await asyncio.shield(pending[1])
    await verify_access(client, where=where)


async def _check(client: Any, where: str) -> None:
    try:
        # The AsyncOpenAI inside autogen's client, with its own transport and key.
        await asyncio.wait_for(client._client.models.list(), CHECK_TIMEOUT)  # noqa: SLF001
    except Exception as exc:  # only a rejected key matters here
        error = translate_error(exc, where=where)
        if isinstance(error, AuthenticationError):
            client._orca_math_access = error  # noqa: SLF001
            return
    client._orca_math_access = _OK  # noqa: SLF001


def _is_openai_family(client: Any) -> bool:
    try:
        from autogen_ext.models.openai import BaseOpenAIChatCompletionClient
    except ImportError:  # pragma: no cover - autogen-ext without its openai extra
        return False
    models = getattr(getattr(client, "_client", None), "models", None)
    return isinstance(client, BaseOpenAIChatCompletionClient) and models is not None


__all__ = ["CHECK_TIMEOUT", "mark_access_checked", "verify_access"]
