"""`LoopLag`: how long the client's own event loop was too busy to run a timer on time, summed.

A reply's measured latency is the server's time plus the client's queueing: a client whose event
loop is saturated by its own CPU work (hundreds of replies parsed at once) reads every reply late,
and the latency rule of the adaptive limit would take that for a slow server and cut the limit,
which does not help a CPU-bound client and starves a healthy server. A timer that should fire
every `interval` seconds fires late by about as long as the loop was busy; `clock()` sums those
delays. A call's latency minus the lag that accrued while it was in flight is what the server
(and the network) took.

The timer runs only while calls are in flight, and reads the running loop's clock, so it works
in virtual time (tests drive it there) and survives its loop being replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from orca_math.engine.slots import now


class LoopLag:
    """Seconds the event loop has run behind its timers, summed while someone watches.

    Args:
        interval: seconds between ticks; a tick that fires late adds its delay to the total.
    """

    def __init__(self, interval: float = 0.02) -> None:
        if interval <= 0:
            raise ValueError(f"LoopLag interval must be positive; got {interval}.")
        self.interval = interval
        self.total = 0.0
        self._due: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._active: Callable[[], object] = lambda: False

    def clock(self) -> float:
        """Lag so far in seconds, the overdue part of the pending tick included (take differences)."""
        if self._due is None:
            return self.total
        return self.total + max(0.0, now() - self._due)

    def watch(self, active: Callable[[], object]) -> None:
        """Tick on the running loop for as long as `active()` is truthy (one timer, however often called)."""
        loop = asyncio.get_running_loop()
        self._active = active
        if self._timer is not None and self._loop is loop and not loop.is_closed():
            return
        if self._due is not None:  # a tick pending on a loop that is gone: its delay says nothing
            self._due = None
        self._loop = loop
        self._schedule(loop.time())

    def _schedule(self, start: float) -> None:
        assert self._loop is not None
        self._due = start + self.interval
        self._timer = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None and self._due is not None
        fired = self._loop.time()
        self.total += max(0.0, fired - self._due)
        if self._active():
            self._schedule(fired)
        else:
            self._timer = self._due = None


__all__ = ["LoopLag"]
