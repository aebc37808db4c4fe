"""Run coroutines from synchronous code, also inside an already-running event loop (Jupyter).

Sync twins run their coroutine on one long-lived background loop in a daemon thread. Using one
loop for every sync call matters: HTTP clients bind their connection pools to the loop that first
used them, so a fresh `asyncio.run` per call would break pooled clients on the second call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_loop.run_forever, name="orca-math-sync", daemon=True)
            thread.start()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion and return its result, from any thread, loop running or not."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()
