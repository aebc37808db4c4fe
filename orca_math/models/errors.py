"""Typed model errors with one-sentence messages that say what to fix.

`translate_error` turns exceptions from openai / httpx / aiohttp into these, so users never see a
traceback from deep inside an HTTP client for an everyday mistake.
"""

from __future__ import annotations

import asyncio


class ModelError(RuntimeError):
    """Base of errors about reaching or using a model. `retryable` says whether a retry may help."""

    retryable = False
    status_code: int | None = None

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelSpecError(ModelError, ValueError):
    """The model spec is not one `load_model` understands, or is missing a required option."""


class MissingAPIKeyError(ModelError):
    """No API key was given and none is in the environment."""


class AuthenticationError(ModelError):
    """The server rejected the API key (401) or its permissions (403)."""

    status_code = 401


class ModelNotFoundError(ModelError):
    """The server does not serve the requested model (404)."""

    status_code = 404


class BadRequestError(ModelError):
    """The server refused the request as malformed (400, 422): retrying the same request won't help."""

    status_code = 400


class ServerUnreachableError(ModelError):
    """No connection could be made to the server."""

    retryable = True


class RateLimitError(ModelError):
    """429: too many requests or tokens. Honour `retry_after` when it is set."""

    retryable = True
    status_code = 429


class ServerError(ModelError):
    """5xx, 408, 409 or a dropped connection: transient on the server's side."""

    retryable = True


class ModelTimeoutError(ModelError):
    """The request timed out."""

    retryable = True
    status_code = 408


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds / 1000 if name.endswith("-ms") else seconds
    return None


def translate_error(exc: BaseException, *, where: str) -> BaseException:
    """Map a client exception to a `ModelError`; returns `exc` unchanged when it is not one we know.

    Args:
        exc: the exception raised by the model client.
        where: a short description of the endpoint (e.g. "http://127.0.0.1:8000/v1"), never a key.
    """
    if isinstance(exc, ModelError):
        return exc
    import openai

    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.AuthenticationError) or status == 401:
        return AuthenticationError(
            f"The API key was rejected by {where} (401 Unauthorized): check the key you passed or OPENAI_API_KEY."
        )
    if isinstance(exc, openai.PermissionDeniedError) or status == 403:
        err = AuthenticationError(
            f"The API key has no permission for this request at {where} (403 Forbidden): check the key's access."
        )
        err.status_code = 403
        return err
    if isinstance(exc, openai.NotFoundError) or status == 404:
        return ModelNotFoundError(f"{where} answered 404 Not Found: check the model name and the base URL (it usually ends in /v1).")
    if isinstance(exc, openai.RateLimitError) or status == 429:
        return RateLimitError(f"{where} is rate limiting requests (429).", retry_after=_retry_after(exc))
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return ModelTimeoutError(f"A request to {where} timed out.")
    if isinstance(exc, openai.APIConnectionError):
        return ServerUnreachableError(f"Could not connect to {where}: check that the server is running and the URL is right.")
    if isinstance(exc, openai.BadRequestError) or status in (400, 422):
        message = getattr(exc, "message", str(exc))
        return BadRequestError(f"{where} refused the request (400): {message}")
    if isinstance(status, int) and (status >= 500 or status in (408, 409)):
        err = ServerError(f"{where} answered {status}; it is a server-side error and may pass.", retry_after=_retry_after(exc))
        err.status_code = status
        return err
    if isinstance(exc, ConnectionError | OSError):
        return ServerUnreachableError(f"The connection to {where} failed: {exc}.")
    return exc
