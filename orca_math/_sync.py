"""Run coroutines from synchronous code, also inside an already-running event loop (Jupyter).

Sync twins run their coroutine on one long-lived background loop in a daemon thread. Using one
loop for every sync call matters: HTTP clients bind their connection pools to the loop that first
used them, so a fresh `asyncio.run` per call would break pooled clients on the second call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
    """Run `coro` to completion and return its result, from any thread, loop running or not.

    On Ctrl-C (KeyboardInterrupt while waiting) the coroutine is cancelled and waited for before
    the interrupt goes on: its `finally` blocks close clients and checkpoints, and a model working
    in another thread (llama.cpp) stops before anything frees it. A second Ctrl-C stops waiting.
    """
    loop = _background_loop()
    done = threading.Event()
    created: concurrent.futures.Future[asyncio.Task[T]] = concurrent.futures.Future()

    def start() -> None:
        try:
            task = loop.create_task(coro)
        except BaseException as exc:  # a closed loop, say: the caller gets it
            created.set_exception(exc)
            return
        task.add_done_callback(lambda _: done.set())
        created.set_result(task)

    loop.call_soon_threadsafe(start)
    task = created.result()
    try:
        done.wait()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(task.cancel)
        done.wait()  # set once the task has unwound, whether or not it had started
        raise
    return task.result()
