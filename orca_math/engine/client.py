"""`ManagedClient`: a `ChatCompletionClient` wrapper that makes model calls safe at scale.

It adds retries with backoff, adaptive concurrency, a circuit breaker, rate caps, a response
cache and usage/cost metering around any autogen client. Agents call it like any other client::

    client = ManagedClient(load_model("openai:gpt-4o-mini"), concurrency=64,
                           cache=ResponseCache("run/cache.sqlite"), breaker=CircuitBreaker())

Two extra keys in ``extra_create_args`` are read and removed before the inner call:
``orca_math_sample`` (a sample id: k ids give k distinct cached replies) and ``orca_math_label``
(a label for usage accounting, e.g. "solve").

A caller that cannot use a reply (it does not parse) calls ``reject_reply`` with the same
arguments it gave ``create``: the cached reply is dropped, so a rerun asks the model again instead
of failing on the same reply forever. Agents do this for every reply they reject.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
)

from orca_math.engine.cache import ResponseCache, cache_key
from orca_math.engine.costs import UsageMeter
from orca_math.engine.limits import AdaptiveConcurrency, CircuitBreaker, RateLimits
from orca_math.engine.parking import park_after, sleep_parked
from orca_math.engine.retry import (
    RetriesExhaustedError,
    RetryPolicy,
    StallWatch,
    classify,
    headers_of,
    is_retryable,
    with_timeout,
)
from orca_math.errors import ConfigError
from orca_math.models.access import verify_access
from orca_math.models.base import WrappingChatClient
from orca_math.models.errors import (
    ModelError,
    ModelTimeoutError,
    register_client_secrets,
)
from orca_math.models.identity import identity_of, register_identity
from orca_math.tokens import estimate_tokens

logger = logging.getLogger(__name__)

SAMPLE_KEY = "orca_math_sample"
LABEL_KEY = "orca_math_label"


def request_cache_key(identity: str, messages: Sequence[LLMMessage], json_output: Any, args: Mapping[str, Any],
                      tools: Sequence[Any]) -> str:
    """The response-cache key of a request to the model `identity` describes.

    `args` are the create arguments; they may hold the sample id (`SAMPLE_KEY`), which is part of
    the key and never sent.
    """
    create_args = {k: v for k, v in args.items() if k != SAMPLE_KEY}
    return cache_key(identity, messages, json_output=json_output, create_args=create_args,
                     sample=args.get(SAMPLE_KEY), tools=tools)


class ManagedClient(WrappingChatClient):
    """Wraps a `ChatCompletionClient` with retries, flow control, a cache and metering.

    Args:
        inner: the client that talks to the model (build it with ``max_retries=0``: retries
            happen here, where they are counted and coordinated).
        retry: the retry policy; None uses `RetryPolicy()`.
        concurrency: an `AdaptiveConcurrency`, or an int ceiling for one; None for no limit.
        breaker: a `CircuitBreaker`; None for none.
        rate_limits: `RateLimits` caps; None for none.
        cache: a `ResponseCache`; None to always call the model.
        meter: a `UsageMeter` (with an optional budget); None creates one without a budget.
        where: the endpoint for messages; defaults to the inner client's description.
    """

    component_type = "model"

    def __init__(self, inner: ChatCompletionClient, *, retry: RetryPolicy | None = None,
                 concurrency: AdaptiveConcurrency | int | None = None, breaker: CircuitBreaker | None = None,
                 rate_limits: RateLimits | None = None, cache: ResponseCache | None = None,
                 meter: UsageMeter | None = None, where: str | None = None) -> None:
        if not isinstance(inner, ChatCompletionClient) and not hasattr(inner, "create"):
            raise TypeError(f"ManagedClient wraps a ChatCompletionClient; got {type(inner).__name__}.")
        super().__init__(inner)
        register_client_secrets(inner)  # a client built elsewhere carries a key load_model never saw
        self.retry = retry or RetryPolicy()
        self.concurrency = AdaptiveConcurrency(concurrency) if isinstance(concurrency, int) else concurrency
        self.breaker = breaker
        self.rate_limits = rate_limits
        self.cache = cache
        self.meter = meter or UsageMeter()
        identity = identity_of(inner)
        self.model_name = identity.name
        # Messages quote the endpoint (failure rows, logs); identities never hold credentials.
        self.where = where or identity.endpoint or identity.describe()
        if self.meter.budget is not None and self.meter.prices.price(self.model_name) is None:
            raise ConfigError(
                f"A budget needs a price for model {self.model_name!r}: give one (--price {self.model_name}=IN,OUT, "
                f"or prices={{{self.model_name!r}: (input_usd, output_usd)}})."
            )
        if breaker is not None and breaker.where == "the endpoint":
            breaker.where = self.where
        # Agents, manifests and caches name the inner model, not the wrapper.
        register_identity(self, identity)
        self._identity = identity.describe()
        self._warned_timeout = False  # the first attempt that runs out of time is logged, not every one
        self._stall = StallWatch(self.retry, self.where)  # stops the calls when none has succeeded for too long
        self._counts = dict.fromkeys(("calls", "requests", "retries", "rate_limited", "errors", "cache_hits"), 0)
        self._window: deque[tuple[float, int]] = deque()  # (time, tokens) of replies in the last minute
        self._window_tokens = 0  # their sum, kept as they come and go: at 2,000 replies/s the window holds 120,000

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = (),
        tool_choice: Any = "auto",
        json_output: bool | type | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """Like the inner `create`, with cache, budget, flow control and retries.

        Raises:
            RetriesExhaustedError: every attempt failed with a retryable error.
            CircuitOpenError: the breaker gave up on the endpoint.
            BudgetExceededError: the next call could exceed the meter's budget.
            ModelError: a non-retryable error (401, 403, 404, 400), with `.attempts` set.
        """
        args = dict(extra_create_args)
        label = args.pop(LABEL_KEY, None)
        self._counts["calls"] += 1
        key = None
        if self.cache is not None:
            key = self._cache_key(messages, json_output, args, tools)
            hit = await self.cache.get(key)
            if hit is not None:
                self._counts["cache_hits"] += 1
                usage = hit.usage
                self.meter.record_cache_hit(self.model_name, usage.prompt_tokens if usage else 0,
                                            usage.completion_tokens if usage else 0)  # nothing spent; priced as saved
                return hit
        args.pop(SAMPLE_KEY, None)
        # One GET /models per client before its first chat request: a rejected key then costs one
        # request, not a wave of `concurrency` chat requests that all come back 401.
        await verify_access(self.inner, where=self.where)
        request = dict(tools=tools, tool_choice=tool_choice, json_output=json_output, extra_create_args=args,
                       cancellation_token=cancellation_token)
        result = await self._with_retries(messages, request, label)
        if key is not None and self.cache is not None:
            self.cache.add(key, result, model=self.model_name)  # buffered: committed with its batch, off the event loop
        return result

    async def reject_reply(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = (),
                           json_output: bool | type | None = None, extra_create_args: Mapping[str, Any] = {}) -> bool:
        """Tell the cache that the reply to this request was unusable, so it is never served again.

        Pass the arguments given to `create`. Returns whether a cached reply was dropped.
        """
        if self.cache is None:
            return False
        args = {k: v for k, v in extra_create_args.items() if k != LABEL_KEY}
        return self.cache.remove(self._cache_key(messages, json_output, args, tools))

    async def close(self) -> None:
        """Write the replies the cache still buffers, then close the inner client."""
        if self.cache is not None:
            await self.cache.flush()
        await super().close()

    def _cache_key(self, messages: Sequence[LLMMessage], json_output: Any, args: Mapping[str, Any], tools: Sequence[Any]) -> str:
        return request_cache_key(self._identity, messages, json_output, args, tools)

    async def _with_retries(self, messages: Sequence[LLMMessage], request: dict[str, Any], label: str | None) -> CreateResult:
        # The first attempt runs outside tenacity: nearly every call succeeds at once, and building
        # a retry loop per call cost more CPU than the rest of this wrapper at 256 calls in flight.
        try:
            return await self._attempt(messages, request, label)
        except ModelError as exc:
            if not exc.retryable:
                exc.attempts = 1  # type: ignore[attr-defined]
                raise
            first_error = exc
        return await self._retry(messages, request, label, first_error)

    async def _retry(self, messages: Sequence[LLMMessage], request: dict[str, Any], label: str | None,
                     first_error: ModelError) -> CreateResult:
        """Attempts 2..max_attempts under tenacity; attempt 1 (already failed) is replayed as its first."""
        import tenacity  # here, not at start: most runs never retry, and tenacity (with tornado) costs 15 ms to import

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=self.retry.wait,
            retry=tenacity.retry_if_exception(is_retryable),
            before_sleep=lambda _state: self._count("retries"),
            sleep=sleep_parked,  # a retry's wait parks its item: another item can use the free slot
        )
        replay: list[ModelError] = [first_error]
        try:
            async for attempt in retrying:
                with attempt:
                    if replay:
                        raise replay.pop()
                    return await self._attempt(messages, request, label)
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            attempts = exc.last_attempt.attempt_number
            raise RetriesExhaustedError(
                f"Gave up on {self.where} after {attempts} attempt(s); the last error was: {last}",
                attempts=attempts, last_error=last,
            ) from last
        except ModelError as exc:
            exc.attempts = retrying.statistics.get("attempt_number", 1)  # type: ignore[attr-defined]
            raise
        raise AssertionError("unreachable: tenacity either returns, retries or raises")

    def _count(self, name: str) -> None:
        self._counts[name] += 1

    async def _attempt(self, messages: Sequence[LLMMessage], request: dict[str, Any], label: str | None) -> CreateResult:
        self._stall.check()
        probe = await self.breaker.before_call() if self.breaker is not None else False
        outcome, error = "neutral", None
        try:
            prompt_estimate = self._prompt_estimate(messages)
            args = request["extra_create_args"]
            max_tokens = args.get("max_tokens") or args.get("max_completion_tokens")
            # Rate caps count max_tokens, as providers do; the budget holds each call's worst case
            # (prompt and max_tokens) while it is in flight, settled when the reply comes.
            completion_estimate = int(max_tokens or self.meter.expected_completion_tokens(self.model_name))
            reserved = await self.meter.reserve_when_affordable(self.model_name, prompt_estimate,
                                                                max_tokens=int(max_tokens) if max_tokens else None)
            try:
                result = await self._send(messages, request, prompt_estimate + completion_estimate)
            except BaseException:
                self.meter.release(reserved)
                raise
            outcome = "success"
            self._stall.succeeded()
            prompt_tokens, completion_tokens, estimated = self._usage(result, messages)
            self.meter.record(self.model_name, prompt_tokens, completion_tokens, label=label, estimated=estimated,
                              reserved=reserved, prompt_estimate=prompt_estimate)
            if self.rate_limits is not None:
                self.rate_limits.settle(prompt_estimate + completion_estimate, prompt_tokens + completion_tokens)
            self._window.append((time.monotonic(), prompt_tokens + completion_tokens))
            self._window_tokens += prompt_tokens + completion_tokens
            return result
        except ModelError as exc:
            outcome = "failure" if exc.retryable else "neutral"
            error = exc
            if exc.retryable:
                self._stall.check(exc)
            raise
        finally:
            if self.breaker is not None:
                self.breaker.record(outcome, probe=probe, error=error)

    async def _send(self, messages: Sequence[LLMMessage], request: dict[str, Any], estimated_tokens: int) -> CreateResult:
        """One HTTP request under the concurrency limit and rate caps; errors come out translated."""
        slot = await self.concurrency.acquire() if self.concurrency is not None else None
        try:
            self._stall.check()  # it stalled while this call waited for a slot: send nothing more
            if self.rate_limits is not None:
                # Paced after the slot is taken, right before the wire: requests that took rate
                # tokens and then queued for a slot (or sat out a Retry-After pause) would
                # otherwise leave together, as a burst that trips the server's window.
                await self.rate_limits.acquire(estimated_tokens)
                if slot is not None:
                    slot.restart_clock()  # waiting for the cap is not server latency
            self._counts["requests"] += 1
            # A request still running at the limit's hang threshold parks its item, as the limit
            # lets go of its slot: another item works meanwhile.
            late = park_after(self.concurrency.hang_threshold()) if self.concurrency is not None else None
            try:
                result = await with_timeout(self.inner.create(messages, **request), self.retry.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as raw:
                error = classify(raw, where=self.where)
                if isinstance(raw, TimeoutError) and self.retry.timeout is not None:
                    error = self._timed_out()
                self._on_error(raw, error, slot)
                if error is raw:
                    raise
                raise error from raw
            finally:
                if late is not None:
                    late.done()
            if slot is not None:
                slot.succeeded(result.usage.completion_tokens if result.usage else None)
            return result
        finally:
            if slot is not None and self.concurrency is not None:
                self.concurrency.release(slot)

    def _timed_out(self) -> ModelTimeoutError:
        """Our own per-attempt timeout fired: say how long we waited, and warn once that the server hangs."""
        seconds = f"{self.retry.timeout:g}"
        timed_out = ModelTimeoutError(f"{self.where} did not answer within {seconds} s (the per-attempt timeout, "
                                      "--timeout or RetryPolicy.timeout).")
        if not self._warned_timeout:
            self._warned_timeout = True
            logger.warning("%s has not answered a request within %s s; it is retried, up to %d attempts in all. "
                           "A server that accepts requests and never answers ends the run or fails its items after "
                           "about timeout x attempts; --timeout sets the per-attempt limit.",
                           self.where, seconds, self.retry.max_attempts)
        return timed_out

    def _on_error(self, raw: BaseException, error: BaseException, slot: Any) -> None:
        status = getattr(error, "status_code", None)
        headers = headers_of(raw)
        if headers is not None and self.rate_limits is not None:
            self.rate_limits.observe_headers(headers, max_wait=self.retry.max_retry_after)
        self._counts["errors"] += 1
        # Every wait is capped: a bogus "Retry-After: 3600" must not pause the whole run for an hour.
        retry_after = self.retry.capped(getattr(error, "retry_after", None))
        stalled = isinstance(error, ModelError) and error.retryable and self._stall.failed(error)
        if status == 429:
            self._counts["rate_limited"] += 1
            if self.rate_limits is not None:
                self.rate_limits.on_rate_limited(retry_after)
        if slot is None:
            return
        if not stalled and (status in (429, 503) or (isinstance(error, ModelError) and status == 408)):
            slot.overloaded(retry_after)  # (a stalled client pauses nothing: its waiting calls should stop now)
        else:
            slot.failed()

    def _prompt_estimate(self, messages: Sequence[LLMMessage]) -> int:
        """Prompt tokens before the call: counted exactly when a budget or a token cap depends on it.

        Otherwise (the common case) characters / 4 is enough: it only paces nothing and is corrected
        by the reply's usage, and tiktoken would cost more CPU per call than everything else here.
        """
        texts = [m.content if isinstance(m.content, str) else str(m.content) for m in messages]
        precise = self.meter.budget is not None or (self.rate_limits is not None and self.rate_limits.tokens is not None)
        if precise:
            return sum(estimate_tokens(text) for text in texts)
        return sum(len(text) for text in texts) // 4 + 1

    def _usage(self, result: CreateResult, messages: Sequence[LLMMessage]) -> tuple[int, int, bool]:
        usage = result.usage
        if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
            return usage.prompt_tokens, usage.completion_tokens, False
        # No usage in the reply: count both sides with tiktoken (or its fallback).
        content = result.content if isinstance(result.content, str) else str(result.content)
        prompt = sum(estimate_tokens(m.content if isinstance(m.content, str) else str(m.content)) for m in messages)
        return prompt, estimate_tokens(content), True

    def stats(self) -> dict[str, Any]:
        """A snapshot for progress displays and logs; see docs/scale.md for each field."""
        now = time.monotonic()
        while self._window and now - self._window[0][0] > 60.0:
            self._window_tokens -= self._window.popleft()[1]
        stats: dict[str, Any] = dict(self._counts)
        stats.update(rpm=len(self._window), tpm=self._window_tokens)
        if self.concurrency is not None:
            stats.update(self.concurrency.stats())
        else:
            stats.update(concurrency_limit=None, in_flight=None)
        stats["breaker"] = self.breaker.state if self.breaker is not None else None
        if self.rate_limits is not None:
            stats.update(self.rate_limits.stats())
        summary = self.meter.summary()
        stats.update(prompt_tokens=summary["prompt_tokens"], completion_tokens=summary["completion_tokens"],
                     cost_usd=summary["cost_usd"])
        return stats


__all__ = ["LABEL_KEY", "SAMPLE_KEY", "ManagedClient", "RetriesExhaustedError", "RetryPolicy", "classify", "request_cache_key"]
