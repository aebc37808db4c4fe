"""`ConcurrencySlot`: one call's hold on an `AdaptiveConcurrency` slot, and the clock both read.

Every time reading comes from the running event loop's clock, so the controller can be driven in
virtual time (tests do), and one instance can outlive an event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orca_math.engine.concurrency import AdaptiveConcurrency

EARLY = 1e-6  # seconds a timer may fire before its time and still count as on time


def now() -> float:
    """Seconds on the running event loop's clock (time.monotonic() outside a loop)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # outside a loop; an asyncio loop's clock is time.monotonic()
        return time.monotonic()


class ConcurrencySlot:
    """One call's hold on an `AdaptiveConcurrency` slot; report its outcome before releasing it."""

    __slots__ = ("_controller", "epoch", "started", "lag_start", "hung", "released")

    def __init__(self, controller: AdaptiveConcurrency, epoch: int) -> None:
        self._controller = controller
        self.epoch = epoch
        self.started = now()
        self.lag_start = controller.lag.clock()  # the client's own event-loop lag so far
        self.hung = False  # ran past the hang threshold: no longer counted in flight
        self.released = False

    def restart_clock(self) -> None:
        """Measure latency from now (e.g. after waiting for a rate cap, which is not server time)."""
        self.started = now()
        self.lag_start = self._controller.lag.clock()

    def succeeded(self, tokens: int | None = None) -> None:
        """The call returned; `tokens` (completion tokens) normalises latency by reply length.

        The latency rule sees the call's time less the event loop's lag meanwhile: the server's time,
        not the client's own queueing (see `orca_math.engine.loop_lag`).
        """
        elapsed = now() - self.started
        busy = self._controller.lag.clock() - self.lag_start
        self._controller._on_success(self, elapsed, max(1, tokens or 1), max(0.0, elapsed - busy))

    def overloaded(self, retry_after: float | None = None) -> None:
        """The server said it is overloaded (429, 503, or a timeout)."""
        self._controller._on_completion(self, overloaded=True, retry_after=retry_after)

    def failed(self) -> None:
        """Any other failure (500, a broken body): it completes the call but says nothing about load."""
        self._controller._on_completion(self, overloaded=False)


__all__ = ["EARLY", "ConcurrencySlot", "now"]
