"""The response cache's store: the write-behind sqlite `ResponseCache` against `diskcache` and `lmdb`.

Issue #24 asked whether a store made for this job (lmdb or diskcache) would beat sqlite. This
script measures what a run asks of its cache, on the event loop as `ManagedClient` does it:

* **a fresh run**: for each of N requests, a lookup that misses, then storing the reply;
  then everything is made durable (flush / close);
* **a resumed run**: the store is opened again over those N replies, and each is looked up
  (N hits).

Stores, all in one process and one run, so the ratios compare like with like:

* ``ResponseCache``: orca-math's cache (in-memory key filter, batched commits in a worker thread);
* ``diskcache``: `diskcache.Cache` (sqlite underneath too), one transaction per `set`, called on
  the event loop the way a plain synchronous cache would be;
* ``diskcache batched``: the same, but with the writes of a batch in one `transact()`, flushed
  every `FLUSH_ROWS` writes, which is what orca-math would have to add on top of it;
* ``lmdb``: `lmdb.Environment` (a memory-mapped B+tree, no SQL layer), one write transaction per
  reply, on the event loop;
* ``lmdb batched``: one write transaction per `FLUSH_ROWS` replies, the write-behind shape.

A store whose package is not installed (`pip install diskcache lmdb`) is skipped with a line
saying so; neither is a dependency of orca-math.

CPU is the process's (the worker thread's included), in microseconds per request, and its ratio
to `ResponseCache`'s (the baseline, run first in the same process); wall is the elapsed time of
the phase. Peak memory is Python's heap (`tracemalloc`; lmdb's memory map is not in it) over both phases, taken in a second pass so
that tracing does not slow the timed one. Replies are real `CreateResult` JSON of about 700 bytes.

With ``--layouts`` it measures instead what a batch commit costs in sqlite itself for two table
layouts, at 32 rows a batch (a 50 ms batch at about 600 replies/s) and at 256: the cache's table,
whose ``key TEXT PRIMARY KEY`` is a unique index that every row of a batch enters at a random
place (the keys are hashes), against a table with no index, whose rows are appended in order
(what a store that keeps its key index in memory would write).

    python benchmarks/cache_store.py               # 20,000 requests
    python benchmarks/cache_store.py --requests 50000
    python benchmarks/cache_store.py --layouts     # sqlite's commit cost per row, keyed or appended
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from autogen_core.models import CreateResult, RequestUsage

from orca_math.engine.cache import FLUSH_ROWS, ResponseCache

ANSWER = ("Each box holds 6 apples and there are 7 boxes, so there are 6 * 7 = 42 apples. "
          "Then 5 apples are eaten, which leaves 42 - 5 = 37 apples.\n") * 4 + "Final answer: 37"


def reply(i: int) -> CreateResult:
    return CreateResult(finish_reason="stop", content=f"{i}: {ANSWER}", cached=False,
                        usage=RequestUsage(prompt_tokens=173, completion_tokens=120))


def key(i: int) -> str:
    return hashlib.sha256(f"request {i}".encode()).hexdigest()


class Clock:
    """Wall and process CPU seconds since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


async def response_cache(path: Path, n: int, replies: list[CreateResult]) -> dict[str, tuple[float, float]]:
    clock = Clock()
    cache = ResponseCache(path)
    for i in range(n):
        k = key(i)
        assert await cache.get(k) is None
        cache.add(k, replies[i], model="m")
    await cache.flush()
    cache.close()
    fresh = clock.read()
    clock = Clock()
    cache = ResponseCache(path)
    for i in range(n):
        assert (await cache.get(key(i))) is not None
    cache.close()
    return {"fresh": fresh, "resumed": clock.read()}


async def disk_cache(path: Path, n: int, replies: list[CreateResult], *, batched: bool) -> dict[str, tuple[float, float]]:
    import diskcache

    clock = Clock()
    cache = diskcache.Cache(str(path))
    pending = 0
    transaction = None
    for i in range(n):
        k = key(i)
        assert cache.get(k) is None
        if batched and transaction is None:
            transaction = cache.transact()
            transaction.__enter__()
        cache.set(k, replies[i].model_dump_json())
        pending += 1
        if transaction is not None and pending >= FLUSH_ROWS:
            transaction.__exit__(None, None, None)
            transaction, pending = None, 0
        if i % 256 == 0:
            await asyncio.sleep(0)  # the event loop runs other calls between these
    if transaction is not None:
        transaction.__exit__(None, None, None)
    cache.close()
    fresh = clock.read()
    clock = Clock()
    cache = diskcache.Cache(str(path))
    for i in range(n):
        value = cache.get(key(i))
        assert value is not None
        CreateResult.model_validate_json(value)
    cache.close()
    return {"fresh": fresh, "resumed": clock.read()}


async def lmdb_store(path: Path, n: int, replies: list[CreateResult], *, batched: bool) -> dict[str, tuple[float, float]]:
    import lmdb

    # map_size is the largest the file may grow; lmdb reserves address space, not disk.
    clock = Clock()
    env = lmdb.open(str(path), map_size=1 << 32, sync=True)
    transaction = None
    pending = 0
    for i in range(n):
        k = key(i).encode()
        with env.begin() as read:
            assert read.get(k) is None
        value = replies[i].model_dump_json().encode()
        if not batched:
            with env.begin(write=True) as write:
                write.put(k, value)
        else:
            if transaction is None:
                transaction = env.begin(write=True)
            transaction.put(k, value)
            pending += 1
            if pending >= FLUSH_ROWS:
                transaction.commit()
                transaction, pending = None, 0
        if i % 256 == 0:
            await asyncio.sleep(0)
    if transaction is not None:
        transaction.commit()
    env.sync(True)
    env.close()
    fresh = clock.read()
    clock = Clock()
    env = lmdb.open(str(path), map_size=1 << 32, readonly=True)
    with env.begin() as read:
        for i in range(n):
            value = read.get(key(i).encode())
            assert value is not None
            CreateResult.model_validate_json(value)
    env.close()
    return {"fresh": fresh, "resumed": clock.read()}


def commit_layouts(n: int, replies: list[CreateResult]) -> None:
    """CPU per row of committing `n` replies in batches, in the cache's keyed table and in an append-only one."""
    import sqlite3

    values = [r.model_dump_json() for r in replies]
    tables = {"keyed (the cache's)": ("CREATE TABLE t (key TEXT PRIMARY KEY, model TEXT, value TEXT NOT NULL, created REAL)",
                                      "INSERT OR REPLACE INTO t (key, model, value, created) VALUES "),
              "appended (no index)": ("CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT, model TEXT, value TEXT NOT NULL, "
                                      "created REAL)", "INSERT INTO t (key, model, value, created) VALUES ")}
    base = Path(tempfile.mkdtemp(prefix="cache-layouts-"))
    try:
        for batch in (32, 256):
            results = {}
            for name, (schema, insert) in tables.items():
                path = base / f"{batch}-{len(results)}.sqlite"
                db = sqlite3.connect(path, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(schema)
                clock = Clock()
                for start in range(0, n, batch):
                    rows = [(key(i), "m", values[i], 0.0) for i in range(start, min(n, start + batch))]
                    db.execute("BEGIN IMMEDIATE")
                    for chunk in range(0, len(rows), 200):  # 4 values a row, under sqlite's 999 a statement
                        part = rows[chunk:chunk + 200]
                        db.execute(insert + ", ".join(["(?, ?, ?, ?)"] * len(part)), [v for row in part for v in row])
                    db.execute("COMMIT")
                _, cpu = clock.read()
                db.close()
                results[name] = cpu / n * 1e6
            first = next(iter(results.values()))
            for name, us in results.items():
                print(f"{batch:>3} rows a batch  {name:<20} {us:6.1f} us CPU a row  ({us / first:.2f})", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else list(path.rglob("*"))
    siblings = list(path.parent.glob(path.name + "-*")) if path.is_file() else []
    return sum(f.stat().st_size for f in files + siblings if f.is_file()) / 1e6


def peak_mb(run, folder: Path) -> float:
    """Python's peak memory (MB) over a run of `run` in `folder`, traced (slower, so not timed)."""
    import tracemalloc

    tracemalloc.start()
    try:
        asyncio.run(run(folder))
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--layouts", action="store_true", help="sqlite's commit cost per row for two table layouts")
    args = parser.parse_args()
    n = args.requests
    replies = [reply(i) for i in range(n)]
    if args.layouts:
        print(f"{n:,} replies of {len(replies[0].model_dump_json())} bytes; load average {os.getloadavg()[0]:.1f}")
        commit_layouts(n, replies)
        return
    print(f"{n:,} requests, replies of {len(replies[0].model_dump_json())} bytes; load average {os.getloadavg()[0]:.1f}")
    print(f"{'store':<20} {'fresh: CPU us/req':>18} {'ratio':>6} {'wall s':>7} {'resumed: CPU us/req':>20} {'ratio':>6} "
          f"{'wall s':>7} {'file MB':>8} {'peak MB':>8}")
    base = Path(tempfile.mkdtemp(prefix="cache-store-"))
    baseline: tuple[float, float] | None = None
    try:
        for name, run in (("ResponseCache", lambda p: response_cache(p / "cache.sqlite", n, replies)),
                          ("diskcache", lambda p: disk_cache(p / "dc", n, replies, batched=False)),
                          ("diskcache batched", lambda p: disk_cache(p / "dc", n, replies, batched=True)),
                          ("lmdb", lambda p: lmdb_store(p / "dc", n, replies, batched=False)),
                          ("lmdb batched", lambda p: lmdb_store(p / "dc", n, replies, batched=True))):
            package = name.split()[0]
            if package != "ResponseCache" and not installed(package):
                print(f"{name:<20} skipped: {package} is not installed", flush=True)
                continue
            folder = base / name.replace(" ", "-")
            folder.mkdir()
            phases = asyncio.run(run(folder))
            (fresh_wall, fresh_cpu), (resumed_wall, resumed_cpu) = phases["fresh"], phases["resumed"]
            baseline = baseline or (fresh_cpu, resumed_cpu)
            store = folder / "cache.sqlite" if name == "ResponseCache" else folder / "dc"
            size = size_mb(store)
            shutil.rmtree(folder)
            folder.mkdir()
            peak = peak_mb(run, folder)
            print(f"{name:<20} {fresh_cpu / n * 1e6:>18.1f} {fresh_cpu / baseline[0]:>6.2f} {fresh_wall:>7.2f} "
                  f"{resumed_cpu / n * 1e6:>20.1f} {resumed_cpu / baseline[1]:>6.2f} {resumed_wall:>7.2f} {size:>8.1f} "
                  f"{peak:>8.1f}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
