"""Items whose call only waits give their place to another item, so waits do not starve the run.

The local executor works on `concurrency` items at once. An item whose call sits out a retry's
back-off or a Retry-After, or whose request hangs, keeps its worker while its concurrency slot is
free: at 20% 429s (Retry-After 1 s) and 50 ms replies an item spends about 0.06 s in requests and
0.25 s waiting, so 16 workers kept a fifth of 16 slots busy. With an `ItemPool`, such an item
*parks*: the pool starts one more worker for as long as it waits, and a worker beyond the pool's
size retires when it finishes its item. Calls in flight stay capped by the adaptive limit; an
item that waits for a slot, for the limit's overload pause or for an open breaker does not park,
so a struggling endpoint never draws more items.

`ManagedClient` parks around its retry sleeps and once a request runs past the limit's hang
threshold; the pool of the running item is found through a context variable the executor sets,
so nothing else needs to pass it around.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_current: contextvars.ContextVar[ItemPool | None] = contextvars.ContextVar("orca_math_item_pool", default=None)


class ItemPool:
    """`size` working items, plus one more for each parked item, up to `size + max_extra` workers.

    Args:
        size: items worked on at once when none waits.
        spawn: starts one more worker (the executor's).
        max_extra: the most workers started for parked items, bounding items in memory.
    """

    def __init__(self, size: int, spawn: Callable[[], None], *, max_extra: int) -> None:
        self.size, self.max_extra = size, max_extra
        self.workers = 0
        self.parked = 0
        self.peak_workers = 0
        self._spawn = spawn

    def start(self, count: int) -> None:
        """Start `count` workers."""
        for _ in range(count):
            self.workers += 1
            self.peak_workers = max(self.peak_workers, self.workers)
            self._spawn()

    def enter(self) -> None:
        """Make this pool the running task's (a worker calls it first)."""
        _current.set(self)

    def park(self) -> None:
        """The running item waits: start a worker in its place (within `max_extra`)."""
        self.parked += 1
        missing = self.size - (self.workers - self.parked)
        room = self.size + self.max_extra - self.workers
        if missing > 0 and room > 0:
            self.start(min(missing, room))

    def unpark(self) -> None:
        """The item works again; a surplus worker retires at its next item."""
        self.parked -= 1

    def retire(self) -> bool:
        """Called by a worker between items: True (and counted out) when it is one too many."""
        if self.workers - self.parked > self.size:
            self.workers -= 1
            return True
        return False

    def leave(self) -> None:
        """A worker ends (its input ran out, or the run stops)."""
        self.workers -= 1


@contextmanager
def parked() -> Iterator[None]:
    """``with parked():`` around a wait of the running item (nothing happens outside an `ItemPool`)."""
    pool = _current.get()
    if pool is None:
        yield
        return
    pool.park()
    try:
        yield
    finally:
        pool.unpark()


async def sleep_parked(seconds: float) -> None:
    """`asyncio.sleep`, parked: for a retry's wait."""
    with parked():
        await asyncio.sleep(seconds)


class LateParking:
    """Parks the running item if it is still waiting `after` seconds from now; call `done()` when it stops."""

    __slots__ = ("_pool", "_timer", "_parked")

    def __init__(self, pool: ItemPool, after: float) -> None:
        self._pool, self._parked = pool, False
        self._timer = asyncio.get_running_loop().call_later(after, self._park)

    def _park(self) -> None:
        self._parked = True
        self._pool.park()

    def done(self) -> None:
        self._timer.cancel()
        if self._parked:
            self._parked = False
            self._pool.unpark()


def park_after(seconds: float | None) -> LateParking | None:
    """A `LateParking` for the running item's pool, or None outside one (or without a threshold)."""
    pool = _current.get()
    if pool is None or seconds is None:
        return None
    return LateParking(pool, seconds)


__all__ = ["ItemPool", "LateParking", "park_after", "parked", "sleep_parked"]
