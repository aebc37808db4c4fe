"""Simulated model servers and callers for the concurrency controller, to run on a virtual clock.

A server here is a coroutine that sleeps (virtual time, see `tests._virtual_time`) and returns an
outcome; `drive` plays callers that take a slot, call the server, report the outcome as
`ManagedClient` does and retry after Retry-After. Results depend only on the seeds, never on
how fast or busy the CPU is.
"""

from __future__ import annotations

import asyncio
import collections
import random
from dataclasses import dataclass, field

from orca_math.engine.concurrency import AdaptiveConcurrency


class RandomFaults:
    """Answers after `latency`; a share `rate_429` of replies are 429s (with Retry-After), at random."""

    def __init__(self, rate_429: float = 0.0, *, latency: float = 0.05, retry_after: float = 1.0, seed: int = 0) -> None:
        self.rate_429, self.latency, self.retry_after = rate_429, latency, retry_after
        self.rng = random.Random(seed)
        self.in_flight = 0

    async def serve(self) -> tuple[str, float | None]:
        self.in_flight += 1
        try:
            refused = self.rng.random() < self.rate_429
            await asyncio.sleep(self.latency)
            return ("429", self.retry_after) if refused else ("ok", None)
        finally:
            self.in_flight -= 1


class SometimesHangs:
    """Answers after `latency`; a share `rate_hang` of requests hang `hang` seconds first, then answer."""

    def __init__(self, rate_hang: float, *, hang: float = 20.0, latency: float = 0.05, seed: int = 0) -> None:
        self.rate_hang, self.hang, self.latency = rate_hang, hang, latency
        self.rng = random.Random(seed)
        self.in_flight = 0

    async def serve(self) -> tuple[str, float | None]:
        self.in_flight += 1
        try:
            await asyncio.sleep(self.hang if self.rng.random() < self.rate_hang else self.latency)
            return "ok", None
        finally:
            self.in_flight -= 1


class SlotCapacity:
    """Serves at most `slots` requests at once (like a GPU server's batch); refuses the rest at once with a 429."""

    def __init__(self, slots: int, *, latency: float = 0.05) -> None:
        self.slots, self.latency = slots, latency
        self.in_flight = 0

    async def serve(self) -> tuple[str, float | None]:
        await asyncio.sleep(0.001)
        if self.in_flight >= self.slots:
            return "429", None
        self.in_flight += 1
        try:
            await asyncio.sleep(self.latency)
            return "ok", None
        finally:
            self.in_flight -= 1


class SlowsDownUnderLoad:
    """Never refuses; each reply takes `base + per_request * (requests in flight)` seconds."""

    def __init__(self, base: float = 0.05, per_request: float = 0.05) -> None:
        self.base, self.per_request = base, per_request
        self.in_flight = 0

    async def serve(self) -> tuple[str, float | None]:
        self.in_flight += 1
        try:
            await asyncio.sleep(self.base + self.per_request * self.in_flight)
            return "ok", None
        finally:
            self.in_flight -= 1


@dataclass
class Drive:
    """What `drive` saw: seconds taken, outcomes, and the limit and server load after each reply."""

    seconds: float = 0.0
    done_at: list[float] = field(default_factory=list)  # when each call got its "ok", from the start
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    limits: list[int] = field(default_factory=list)
    server_in_flight: list[int] = field(default_factory=list)

    def rate(self, share: float = 0.9) -> float:
        """Calls per second until `share` of them were done: the sustained rate, not the last retries' tail."""
        done = sorted(self.done_at)
        return int(share * len(done)) / done[int(share * len(done)) - 1]

    @property
    def share_429(self) -> float:
        return self.outcomes["429"] / max(1, sum(self.outcomes.values()))


async def drive(controller: AdaptiveConcurrency, server, calls: int, *, tokens: int = 10) -> Drive:
    """`calls` callers at once, each retrying until it gets an "ok" (after Retry-After, else 50 ms)."""
    loop = asyncio.get_running_loop()
    seen = Drive()

    async def call() -> None:
        while True:
            slot = await controller.acquire()
            try:
                seen.server_in_flight.append(server.in_flight + 1)
                outcome, retry_after = await server.serve()
                seen.outcomes[outcome] += 1
                if outcome == "ok":
                    slot.succeeded(tokens)
                else:
                    slot.overloaded(retry_after)
            finally:
                controller.release(slot)
            seen.limits.append(controller.limit)
            if outcome == "ok":
                seen.done_at.append(loop.time() - started)
                return
            await asyncio.sleep(retry_after or 0.05)

    started = loop.time()
    await asyncio.gather(*(call() for _ in range(calls)))
    seen.seconds = loop.time() - started
    return seen
