"""Garbage-collector settings for long runs of many concurrent model calls.

With hundreds of requests in flight, each request's objects live for a whole round trip, so they
survive the young generations and are then collected in full collections, which walk every object
in the process (the imported libraries' included). Measured on the `solve` stage at 256 in flight
(benchmarks/pipeline_throughput.py), CPython spent about a fifth of the run's CPU in the collector.

`tuned_gc()` does two things for the duration of a run, then undoes them:

* `gc.freeze()` moves every object that exists before the run (modules, classes, caches) out of
  the collector's sight, so full collections only walk what the run itself allocates;
* a larger first-generation threshold lets a request's objects die young instead of being
  promoted. Reference counting frees almost everything anyway; only objects in reference cycles
  wait for the collector, and a larger threshold lets at most that many more of them pile up.

Runs may nest or overlap (two pipelines in one event loop): the first to enter applies the
settings and the last to leave restores what was there before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from orca_math.gc_pause import end_start_pause

#: The first-generation threshold during runs (CPython's default is 700).
RUN_GEN0_THRESHOLD = 50_000

_depth = 0
_saved_thresholds: tuple[int, int, int] | None = None
_froze = False


@contextmanager
def tuned_gc(enabled: bool = True) -> Iterator[None]:
    """Freeze existing objects and raise the first-generation threshold while the block runs."""
    global _depth, _saved_thresholds, _froze
    end_start_pause()  # a run is no longer the command's start: the collector is on again, as set before it
    if not enabled or not gc.isenabled():  # a caller that turned the collector off knows best
        yield
        return
    if _depth == 0:
        _saved_thresholds = gc.get_threshold()
        # A process that froze objects itself (say, before forking workers) keeps them frozen:
        # unfreezing at the end would undo its freeze too, so only the threshold changes then.
        _froze = gc.get_freeze_count() == 0
        if _froze:
            gc.freeze()
        gc.set_threshold(max(RUN_GEN0_THRESHOLD, _saved_thresholds[0]), *_saved_thresholds[1:])
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _saved_thresholds is not None:
            gc.set_threshold(*_saved_thresholds)
            if _froze:
                gc.unfreeze()
            _saved_thresholds, _froze = None, False
