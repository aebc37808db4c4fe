"""Flow control for model calls: adaptive concurrency, a circuit breaker and rate caps.

Each piece is independent of HTTP: `ManagedClient` feeds them the outcome of every request.
All of them bind to the running event loop lazily, so one instance can outlive an event loop.
`AdaptiveConcurrency` lives in `orca_math.engine.concurrency` and is re-exported here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

from orca_math.engine.concurrency import AdaptiveConcurrency, ConcurrencySlot
from orca_math.models.errors import ModelError

__all__ = ["AdaptiveConcurrency", "CircuitBreaker", "CircuitOpenError", "ConcurrencySlot", "RateLimits", "TokenBucket",
           "parse_reset"]


class CircuitOpenError(ModelError):
    """The endpoint kept failing: the breaker opened and its probes failed too. Stop the run."""


class _Signal:
    """Wakes every waiter on `fire()`; for rare state changes (many waiters, few events)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an Event binds to the first loop that waits on it
            self._loop, self._event = loop, asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            pass

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()


class CircuitBreaker:
    """Stops hammering an endpoint that fails every call, and ends the run if it stays down.

    When `failures_to_open` retryable failures come in a row it opens: calls wait, and after
    `cooldown` seconds one probe goes through. A successful probe closes it; after
    `max_failed_probes` failed probes every waiting and later call raises `CircuitOpenError`.

    Args:
        failures_to_open: retryable failures in a row that open the breaker.
        cooldown: seconds between opening (or a failed probe) and the next probe.
        max_failed_probes: failed probes before giving up.
        where: the endpoint, for messages.
    """

    def __init__(self, failures_to_open: int = 20, *, cooldown: float = 10.0, max_failed_probes: int = 3,
                 where: str = "the endpoint") -> None:
        if failures_to_open < 1 or max_failed_probes < 1 or cooldown < 0:
            raise ValueError("CircuitBreaker needs failures_to_open >= 1, max_failed_probes >= 1 and cooldown >= 0.")
        self.failures_to_open, self.cooldown, self.max_failed_probes = failures_to_open, cooldown, max_failed_probes
        self.where = where
        self.state = "closed"  # closed -> open -> half_open -> closed | failed
        self.consecutive_failures = 0
        self.failed_probes = 0
        self.last_error: str | None = None
        self._open_until = 0.0
        self._signal = _Signal()

    def _error(self) -> CircuitOpenError:
        last = f" The last error: {self.last_error}" if self.last_error else ""
        return CircuitOpenError(
            f"{self.where} failed {self.consecutive_failures} calls in a row and {self.failed_probes} probe(s) after "
            f"cooling down; finished work is saved, rerun the same command to resume.{last}"
        )

    async def before_call(self) -> bool:
        """Wait while open; returns True when this call is the probe. Raises `CircuitOpenError`."""
        while True:
            if self.state == "failed":
                raise self._error()
            if self.state == "closed":
                return False
            wait = self._open_until - time.monotonic()
            if self.state == "open" and wait <= 0:
                self.state = "half_open"
                return True
            await self._signal.wait(wait if self.state == "open" else None)

    def record(self, outcome: str, *, probe: bool, error: BaseException | None = None) -> None:
        """Report a call: outcome "success", "failure" (retryable) or "neutral" (anything else).

        `error` is the failure's exception; the last one is quoted when the breaker gives up, so
        that a server that hangs says "did not answer within 30 s", not just "failed".
        """
        if outcome == "failure" and error is not None:
            self.last_error = str(error)
        if outcome == "success":
            self.consecutive_failures = 0
            if probe or self.state != "closed":
                self.state, self.failed_probes = "closed", 0
        elif outcome == "failure":
            self.consecutive_failures += 1
            if probe:
                self.failed_probes += 1
                self.state = "failed" if self.failed_probes >= self.max_failed_probes else "open"
                self._open_until = time.monotonic() + self.cooldown
            elif self.state == "closed" and self.consecutive_failures >= self.failures_to_open:
                self.state = "open"
                self._open_until = time.monotonic() + self.cooldown
        elif probe and self.state == "half_open":
            self.state = "open"  # the probe told us nothing: let the next caller probe at once
        else:
            return
        self._signal.fire()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(value: str) -> float | None:
    """Seconds in an OpenAI reset header such as "1s", "6m0s", "20ms" or "0.5"; None if unreadable."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


class TokenBucket:
    """Refills at `per_minute / 60` per second up to `burst_seconds` worth; may go into debt.

    A request larger than the bucket waits for a full bucket, then leaves it in debt, so large
    requests are delayed rather than refused.
    """

    def __init__(self, per_minute: float, *, burst_seconds: float = 0.1) -> None:
        if per_minute <= 0 or burst_seconds <= 0:
            raise ValueError(f"A rate cap must be positive; got {per_minute}/minute, burst {burst_seconds} s.")
        self.per_minute = per_minute
        self.burst_seconds = burst_seconds
        # Start paced, not with a full burst: a server that counts over a sliding window would
        # see the burst plus the first second's refill, twice its limit, and answer 429s.
        self.level = 1.0
        self._updated = time.monotonic()

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 60.0 * self.burst_seconds)

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.per_minute / 60.0)
        self._updated = now

    async def take(self, amount: float) -> None:
        """Wait until `amount` (or a full bucket, if larger) is available, then take it."""
        while True:
            self._refill()
            need = min(amount, self.capacity)
            if self.level >= need:
                self.level -= amount
                return
            await asyncio.sleep((need - self.level) * 60.0 / self.per_minute)

    def adjust(self, delta: float) -> None:
        """Take `delta` more (or give back, when negative) after the fact."""
        self._refill()
        self.level = min(self.capacity, self.level - delta)

    def drain_for(self, seconds: float) -> None:
        """Empty the bucket so that it takes about `seconds` to allow the next request."""
        self._refill()
        self.level = min(self.level, -seconds * self.per_minute / 60.0 + 1.0)


class RateLimits:
    """Requests-per-minute and tokens-per-minute caps, configured or learned from response headers.

    Tokens are estimated before a call (prompt estimate plus max_tokens) and corrected with the
    reply's usage. Headers read (from whatever responses expose them; autogen's OpenAI client
    only exposes them on errors, such as 429s): ``x-ratelimit-limit-requests`` and
    ``x-ratelimit-limit-tokens`` set a cap where none was configured and lower a configured one;
    ``x-ratelimit-remaining-requests`` / ``-tokens`` of 0 empty the bucket until
    ``x-ratelimit-reset-requests`` / ``-tokens`` (e.g. "6m0s").

    Args:
        requests_per_minute: cap on requests; None for none (unless learned).
        tokens_per_minute: cap on prompt + completion tokens; None for none (unless learned).
        burst_seconds: how many seconds' worth of the cap may go out at once (after idling). Kept
            short: a server that counts over a one-second window sees the burst on top of the
            steady rate, so a 1 s burst at the cap doubles its count and draws 429s.
        learn_from_headers: adopt caps found in headers.
    """

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None, *,
                 burst_seconds: float = 0.1, learn_from_headers: bool = True) -> None:
        self.burst_seconds = burst_seconds
        self.learn_from_headers = learn_from_headers
        self.requests = TokenBucket(requests_per_minute, burst_seconds=burst_seconds) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, burst_seconds=burst_seconds) if tokens_per_minute else None

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait until one request of about `estimated_tokens` tokens fits under both caps."""
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the reply's real usage is known."""
        if self.tokens is not None:
            self.tokens.adjust(actual_tokens - estimated_tokens)

    def observe_headers(self, headers: Mapping[str, str], *, max_wait: float | None = None) -> None:
        """Read ``x-ratelimit-*`` headers (case-insensitive); unknown or unreadable values are ignored.

        `max_wait` caps how long a reset header may hold the bucket empty (`RetryPolicy.max_retry_after`).
        """
        if not self.learn_from_headers or not headers:
            return
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        for kind in ("requests", "tokens"):
            limit = _number(lower.get(f"x-ratelimit-limit-{kind}"))
            bucket: TokenBucket | None = getattr(self, kind)
            if limit:
                if bucket is None:
                    bucket = TokenBucket(limit, burst_seconds=self.burst_seconds)
                    setattr(self, kind, bucket)
                elif limit < bucket.per_minute:
                    bucket.per_minute = limit
            remaining = _number(lower.get(f"x-ratelimit-remaining-{kind}"))
            reset = parse_reset(lower.get(f"x-ratelimit-reset-{kind}", ""))
            if bucket is not None and remaining == 0 and reset:
                bucket.drain_for(reset if max_wait is None else min(reset, max_wait))

    def on_rate_limited(self, retry_after: float | None) -> None:
        """A 429 came back: allow no burst after it, only the steady rate once `retry_after` passes.

        Otherwise the bucket refills while calls sit out the pause and they all leave together,
        which a server counting over a sliding window answers with the next round of 429s.
        """
        if self.requests is not None:
            self.requests.drain_for(retry_after or 0.0)

    def stats(self) -> dict[str, Any]:
        """The caps in force (per minute), None where uncapped."""
        return {
            "rpm_cap": self.requests.per_minute if self.requests else None,
            "tpm_cap": self.tokens.per_minute if self.tokens else None,
        }


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
