"""An asyncio event loop on a virtual clock: sleeps and timers take no real time.

When nothing is ready to run, the loop jumps its clock to the next timer instead of waiting.
Code that reads time from the loop (``loop.time()``, ``asyncio.sleep``, ``call_at``,
``asyncio.timeout``) then sees a deterministic timeline that does not depend on how fast or busy
the CPU is. No real I/O may happen inside: a simulated server is a coroutine that sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector loop whose `time()` only moves when it would otherwise sleep."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0
        select = self._selector.select

        def select_without_waiting(timeout: float | None = None):
            if timeout is not None and timeout > 0:
                self._virtual_now += timeout
            return select(0 if timeout is not None else None)

        self._selector.select = select_without_waiting  # type: ignore[method-assign]

    def time(self) -> float:
        return self._virtual_now


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a fresh `VirtualClockLoop`."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def burn_cpu(seconds: float) -> None:
    """Stand for `seconds` of CPU work in the running callback: the virtual clock moves, and nothing else runs meanwhile."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop), "burn_cpu needs a VirtualClockLoop"
    loop._virtual_now += seconds
