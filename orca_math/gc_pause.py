"""The garbage collector off while a command starts, and back on when its work begins.

A command's start is mostly imports: the openai SDK, autogen, pydantic and orca-math itself create
about a million long-lived objects in a second. CPython's collector runs on allocation counts, so
it walks that growing heap over and over (two full collections before the first request of a
`solve`), and none of it is garbage. `pause_during_start` turns the collector off for that phase:
the first request of `orca-math solve` left about 0.1 s sooner in benchmarks/cli_throughput.py.

The pause ends (the collector is on again, as the process had it) at the first of:

* `end_start_pause()`, which the engine calls when a run begins (`orca_math.engine.gc_tuning`
  then freezes everything the start created, so later collections skip it);
* `limit` seconds after the pause began, whatever the command is doing: a command that never
  starts a run (training, the viewer) is not left without a collector;
* a fork, in the child: a child has no timer thread to end its pause.

Only the `orca-math` console command pauses; code that imports orca-math as a library keeps its
collector as it set it.
"""

from __future__ import annotations

import gc
import os
import threading

#: Seconds after which a pause ends on its own.
START_PAUSE_LIMIT = 3.0

_lock = threading.Lock()
_timer: threading.Timer | None = None


def pause_during_start(limit: float | None = None) -> None:
    """Turn the collector off until `end_start_pause()` or `limit` seconds (default `START_PAUSE_LIMIT`),
    whichever comes first.

    Does nothing when the collector is already off (its owner decided) or a pause is under way.
    """
    global _timer
    with _lock:
        if _timer is not None or not gc.isenabled():
            return
        gc.disable()
        _timer = threading.Timer(START_PAUSE_LIMIT if limit is None else limit, end_start_pause)
        _timer.daemon = True  # a pause never holds the process open
        _timer.name = "orca-math-gc-pause"
        _timer.start()


def end_start_pause() -> None:
    """Turn the collector back on if a start pause turned it off; otherwise do nothing."""
    global _timer
    with _lock:
        timer, _timer = _timer, None
        if timer is None:
            return
        if timer is not threading.current_thread():
            timer.cancel()
        gc.enable()


def start_paused() -> bool:
    """Whether a start pause has the collector off now."""
    return _timer is not None


def _after_fork_in_child() -> None:
    global _timer, _lock
    _lock = threading.Lock()  # the parent's may have been held by another thread at the fork
    if _timer is not None:
        _timer = None
        gc.enable()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["START_PAUSE_LIMIT", "end_start_pause", "pause_during_start", "start_paused"]
