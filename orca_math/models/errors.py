"""Typed model errors with one-sentence messages that say what to fix.

`translate_error` turns exceptions from openai / httpx / aiohttp into these, so users never see a
traceback from deep inside an HTTP client for an everyday mistake.

Secrets never reach an error text: `scrub` removes the API keys and URL passwords orca-math was
given (`register_secret`), any Authorization / api-key header value and any ``sk-...`` token. Every
`ModelError` message is scrubbed when it is made, and `translate_error` scrubs the client exception
it is given (a server may echo the request's headers in its error body), so neither failure rows,
logs nor a traceback under ``--verbose`` show one.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading

from orca_math.errors import OrcaMathError

REDACTED = "[REDACTED]"
#: Setting names that hold credentials, whose values a settings tree hides when it is shown or
#: published. "token" as a name (hf_token, access_token, accessToken), not a count of tokens
#: (max_tokens) nor a tokenizer.
SECRET_NAME = re.compile(r"(api[_-]?key|access[_-]?key|secret|token(?![a-z])|password|passwd|authori[sz]ation|credential)",
                         re.IGNORECASE)
#: Environment variables whose values are keys, scrubbed even when passed to another library directly.
_SECRET_ENV = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY")
_MIN_SECRET_CHARS = 6  # shorter values ("sk", "none") would blank out ordinary words
_NOT_SECRETS = frozenset({"not-needed", "EMPTY", "none", "dummy"})
_PATTERNS = (
    # Authorization: Bearer x / "authorization": "Basic x" / api-key=x / 'api_key': 'x' / x-api-key: x
    (re.compile(r"""((?:authorization|proxy-authorization|(?:x-)?api[-_]?key)["']?\s*[:=]\s*["']?(?:bearer\s+|basic\s+)?)[^\s"',;}]+""",
                re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"\b(sk-)[A-Za-z0-9_\-]{8,}"), r"\1" + REDACTED),  # OpenAI-style keys anywhere
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+@", re.IGNORECASE), r"\1" + REDACTED + "@"),  # user:password@
)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a key or password so `scrub` removes it from every error text (load_model does this)."""
    if value and len(value) >= _MIN_SECRET_CHARS and value not in _NOT_SECRETS:
        with _secrets_lock:
            _secrets.add(value)


def register_client_secrets(client: object) -> None:
    """Remember the key of a client built elsewhere, read from its public component config.

    autogen clients describe themselves with `dump_component()`; its ``api_key`` (a pydantic
    ``SecretStr``) is the key a server might echo back in an error body.
    """
    dump = getattr(client, "dump_component", None)
    if not callable(dump):
        return
    try:
        key = (dump().config or {}).get("api_key")
    except Exception:  # a client that cannot describe itself has nothing to register here
        return
    secret = getattr(key, "get_secret_value", None)
    register_secret(secret() if callable(secret) else key if isinstance(key, str) else None)


def scrub(text: str) -> str:
    """`text` with every known secret, header credential, ``sk-...`` token and URL password replaced by `REDACTED`."""
    if not text:
        return text
    with _secrets_lock:
        known = set(_secrets)
    known.update(v for name in _SECRET_ENV if (v := os.environ.get(name)) and len(v) >= _MIN_SECRET_CHARS and v not in _NOT_SECRETS)
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_exception(exc: BaseException) -> BaseException:
    """Scrub `exc`'s message in place (its args and a `message` attribute) and return it."""
    try:
        exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)
        message = getattr(exc, "message", None)
        if isinstance(message, str):
            exc.message = scrub(message)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type with read-only fields: leave it
        pass
    return exc


class ModelError(OrcaMathError, RuntimeError):
    """Base of errors about reaching or using a model. `retryable` says whether a retry may help.

    Its message is scrubbed of secrets (see `scrub`) when it is made. By default a model error
    stops a run (`stops_run`: a bad spec, key or model fails every item alike); errors that concern
    one request (a refused request, retries that ran out, transient ones) fail only their item.
    """

    retryable = False
    stops_run = True
    status_code: int | None = None

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(scrub(message))
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

    stops_run = False
    status_code = 400


class ServerUnreachableError(ModelError):
    """No connection could be made to the server."""

    retryable = True
    stops_run = False


class RateLimitError(ModelError):
    """429: too many requests or tokens. Honour `retry_after` when it is set."""

    retryable = True
    stops_run = False
    status_code = 429


class ServerError(ModelError):
    """5xx, 408, 409 or a dropped connection: transient on the server's side."""

    retryable = True
    stops_run = False


class ModelTimeoutError(ModelError):
    """The request timed out."""

    retryable = True
    stops_run = False
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


def _connection_failure(exc: BaseException) -> str | None:
    """"refused" or "dropped" when a connection error lies under `exc` (its causes), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, ConnectionResetError | BrokenPipeError) or type(current).__name__ == "ServerDisconnectedError":
            return "dropped"
        current = current.__cause__ or current.__context__
    return None


def _key_variable(where: str) -> str:
    """The environment variable that holds the key for the endpoint `where` names."""
    lowered = where.lower()
    if "anthropic" in lowered:
        return "ANTHROPIC_API_KEY"
    if "azure" in lowered:
        return "AZURE_OPENAI_API_KEY"
    return "OPENAI_API_KEY"


def translate_error(exc: BaseException, *, where: str) -> BaseException:
    """Map a client exception to a `ModelError`; returns `exc` unchanged when it is not one we know.

    Args:
        exc: the exception raised by the model client.
        where: a short description of the endpoint (e.g. "http://127.0.0.1:8000/v1"), never a key.
    """
    if isinstance(exc, ModelError):
        return exc
    # The raw error stays chained to what we raise (and is returned as is when unknown): a server
    # echoing the request's Authorization header would otherwise show the key in a traceback.
    scrub_exception(exc)
    import openai

    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.AuthenticationError) or status == 401:
        return AuthenticationError(
            f"The API key was rejected by {where} (401 Unauthorized): check the key you passed or {_key_variable(where)}."
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
        # The aiohttp transport reports a refused or dropped connection as a timeout: say what happened.
        cause = _connection_failure(exc)
        if cause == "refused":
            return ServerUnreachableError(f"Could not connect to {where} (connection refused): check that the server "
                                          "is running and the URL is right.")
        if cause == "dropped":
            err = ServerError(f"{where} closed the connection before answering; it is a server-side error and may pass.")
            return err
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
