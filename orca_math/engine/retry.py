"""How `ManagedClient` retries a call: the policy, which errors are retried, per-attempt timeouts.

Kept apart from the client so the batch and Ray paths can classify errors and read policies
without building a client.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import traceback
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autogen_core.models import CreateResult

from orca_math.engine.slots import now as loop_now
from orca_math.models.errors import ModelError, ServerError, translate_error

if TYPE_CHECKING:  # tenacity (with tornado) is imported by the first retry, not by every run
    import tenacity


class RetriesExhaustedError(ModelError):
    """Every attempt failed with a retryable error; `last_error` is the final one. Fails only its item."""

    stops_run = False

    def __init__(self, message: str, *, attempts: int, last_error: BaseException) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_error = last_error


class StalledError(ModelError):
    """No call has succeeded for longer than the longest wait the policy allows: stop, resume later.

    Raised on a retryable failure when every call since the first failure of this streak has
    failed for `RetryPolicy.stall_limit` seconds (a server that answers every call with
    ``429 Retry-After: 3600``, say). It stops the run; finished work is saved.
    """

    stops_run = True


@dataclass(frozen=True)
class RetryPolicy:
    """How calls are retried: the server's Retry-After when it sends one, else exponential backoff with jitter.

    Attributes:
        max_attempts: attempts per call, the first included (1 disables retries).
        initial_wait: seconds before the first retry, doubling after each.
        max_wait: cap on the backoff (Retry-After may ask for longer, up to `max_retry_after`).
        jitter: up to this many random seconds added to each wait, to spread retries.
        timeout: seconds allowed per attempt; None leaves it to the inner client.
        max_retry_after: cap on an honoured Retry-After, against bogus huge values; every wait
            (the retry's, and the pause the adaptive limit puts on new calls) is capped by it.

    A run whose calls all keep failing for longer than `stall_limit` stops with `StalledError`
    instead of waiting on: rerun it later to resume.
    """

    max_attempts: int = 8
    initial_wait: float = 0.5
    max_wait: float = 60.0
    jitter: float = 1.0
    timeout: float | None = 300.0
    max_retry_after: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be at least 1; got {self.max_attempts}.")
        if min(self.initial_wait, self.max_wait, self.jitter, self.max_retry_after) < 0:
            raise ValueError("RetryPolicy waits and jitter cannot be negative.")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"RetryPolicy.timeout must be positive or None; got {self.timeout}.")

    @property
    def stall_limit(self) -> float:
        """Seconds of failures with no success in between after which the run stops (the longest wait allowed)."""
        return max(self.max_retry_after, self.max_wait)

    def capped(self, retry_after: float | None) -> float | None:
        """A server's Retry-After, capped at `max_retry_after`."""
        return None if retry_after is None else min(retry_after, self.max_retry_after)

    def wait(self, retry_state: tenacity.RetryCallState) -> float:
        """Seconds before the next attempt (a tenacity `wait` callable).

        When the server said when to come back (Retry-After), that is the wait (capped at
        `max_retry_after`, at least `initial_wait`, plus jitter): an exponential backoff that grew
        with every earlier refusal would leave an unlucky call waiting half a minute after random
        429s, and real overload is the adaptive limit's job. Otherwise the backoff is exponential in
        the failures of this call that came without a Retry-After (a 500 after three random 429s
        waits `initial_wait`, not eight times it).
        """
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            return max(self.initial_wait, min(retry_after, self.max_retry_after)) + random.uniform(0, self.jitter)
        backoffs = getattr(retry_state, "orca_math_backoffs", 0) + 1
        retry_state.orca_math_backoffs = backoffs  # type: ignore[attr-defined]
        return min(self.max_wait, self.initial_wait * 2 ** (backoffs - 1)) + random.uniform(0, self.jitter)


class StallWatch:
    """Notices when calls keep failing and none has succeeded for longer than `policy.stall_limit`.

    Once stalled, `check` raises `StalledError` for every call (those waiting included) until one
    succeeds. Time is the running event loop's (virtual in tests).

    Args:
        policy: the retry policy (its `stall_limit` and `max_retry_after`).
        where: the endpoint, for the message.
    """

    def __init__(self, policy: RetryPolicy, where: str) -> None:
        self.policy, self.where = policy, where
        self.failing_since: float | None = None  # the first retryable failure since the last success
        self.reason: str | None = None

    def succeeded(self) -> None:
        self.failing_since = self.reason = None

    def failed(self, error: ModelError) -> bool:
        """Count a retryable failure; returns whether the calls are now stalled."""
        now = loop_now()
        if self.failing_since is None:
            self.failing_since = now
        stalled = now - self.failing_since
        if self.reason is None and stalled >= self.policy.stall_limit:
            asked = getattr(error, "retry_after", None)
            cap = self.policy.max_retry_after
            asked_text = (f" (it asked to wait {asked:g} s; waits are capped at {cap:g} s, RetryPolicy.max_retry_after)"
                          if asked and asked > cap else "")
            self.reason = (f"No call to {self.where} has succeeded for {stalled:.0f} s, and the last one failed: "
                           f"{str(error).rstrip('.')}{asked_text}; finished work is saved: run the same command again "
                           "later to resume.")
        return self.reason is not None

    def check(self, cause: BaseException | None = None) -> None:
        """Raise `StalledError` when stalled (a fresh one per call: one instance in many tasks piles up tracebacks)."""
        if self.reason is not None:
            raise StalledError(self.reason) from cause


def is_retryable(exc: BaseException) -> bool:
    """Whether `exc` is a model error worth another attempt (429, 5xx, a timeout, a dropped connection)."""
    return isinstance(exc, ModelError) and exc.retryable


def classify(exc: BaseException, *, where: str) -> BaseException:
    """`translate_error`, plus: a reply body that is not a valid completion counts as a retryable server error.

    That covers bodies that are not JSON, bodies that do not follow the API schema, and bodies the
    SDK hands back undecoded: the openai SDK returns a ``text/html`` 200 reply (a proxy's error
    page) as a plain string, and the autogen client then fails reading ``.usage`` off it.
    """
    translated = translate_error(exc, where=where)
    if translated is not exc:
        return translated
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return ServerError(f"{where} sent a malformed response body ({type(exc).__name__}); it may pass.")
    import openai

    if isinstance(exc, openai.APIResponseValidationError):
        return ServerError(f"{where} sent a response that does not follow the API schema; it may pass.")
    if _unreadable_reply(exc):
        return ServerError(f"{where} sent a reply that is not a valid chat completion ({type(exc).__name__}: {exc}; "
                           "for example an HTML error page with status 200); it may pass.")
    return translated


# Where a reply is decoded: an error raised in these packages while reading a reply means the body
# was not a completion. Errors raised in orca-math or the caller's own code are bugs, not retried.
_READERS = tuple(f"{os.sep}{name}{os.sep}" for name in ("openai", "autogen_ext", "autogen_core", "pydantic"))
_SHAPE_ERRORS = (AttributeError, KeyError, IndexError, TypeError)


def _unreadable_reply(exc: BaseException) -> bool:
    """Whether `exc` is the client failing to read a reply's shape (not a wrong call, not our own bug)."""
    import pydantic

    if not isinstance(exc, _SHAPE_ERRORS + (pydantic.ValidationError,)):
        return False
    if isinstance(exc, TypeError) and "argument" in str(exc):
        return False  # a wrong call (an unexpected or missing argument) fails the same way every time
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and any(part in frames[-1].filename for part in _READERS)


async def with_timeout(call: Awaitable[CreateResult], timeout: float | None) -> CreateResult:
    """Await `call`, raising `TimeoutError` after `timeout` seconds (None: no limit).

    `asyncio.timeout` (3.11+) cancels the request in place; `wait_for` wraps it in a task of its
    own, which costs a measurable share of the CPU at hundreds of requests in flight.
    """
    if timeout is None:
        return await call
    if _asyncio_timeout is None:  # Python 3.10
        return await asyncio.wait_for(call, timeout)
    async with _asyncio_timeout(timeout):
        return await call


_asyncio_timeout = getattr(asyncio, "timeout", None)


def headers_of(exc: BaseException) -> Mapping[str, str] | None:
    """The HTTP response headers an SDK error carries, or None."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers if isinstance(headers, Mapping) or hasattr(headers, "items") else None


__all__ = ["RetriesExhaustedError", "RetryPolicy", "StallWatch", "StalledError", "classify", "headers_of", "is_retryable", "with_timeout"]
