"""A content-addressed response cache on one sqlite file, shared by coroutines and processes.

The key is a sha256 of the model identity, the messages, the JSON output mode, the sampling
arguments and an optional sample id, so k samples at temperature > 0 stay k distinct entries.
Values are `CreateResult` JSON. No API key is part of a key or a value: the model identity is
the key-free `describe_client` string. A reply its caller could not use is discarded
(`ManagedClient.reject_reply`), so the same request goes to the model again next time.

Speed: the keys already stored are held in memory (as their hashes) from the start, so a miss
reads nothing from disk and a hit reads one row (on the event loop: a thread hop cost five times
the read), and writes go to a write-behind buffer that one worker thread commits in one
transaction per batch (every `flush_rows` replies or `flush_seconds`, whichever comes first). Durability: a process killed outright loses at most the replies of its last batch; they
are asked again by the next run. Normal exit, Ctrl-C, `flush()`, `close()` and the end of a job
write everything.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor  # imported now: importing it during interpreter exit fails
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, LLMMessage

logger = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, value TEXT NOT NULL, created REAL)"
#: A batch is committed once it holds this many replies ...
FLUSH_ROWS = 256
#: ... or this many seconds after its first reply, whichever comes first.
FLUSH_SECONDS = 0.05
_READ = object()  # "the key may be stored: read it from disk"
#: Rows per INSERT (4 values each): under sqlite's oldest limit of 999 values a statement.
_ROWS_PER_STATEMENT = 200


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _json_output_identity(json_output: Any) -> Any:
    if json_output is None or isinstance(json_output, bool):
        return json_output
    schema = getattr(json_output, "model_json_schema", None)  # a pydantic model class
    return schema() if callable(schema) else repr(json_output)


def cache_key(model: str, messages: Sequence[LLMMessage], *, json_output: Any = None,
              create_args: Mapping[str, Any] | None = None, sample: Any = None, tools: Sequence[Any] = ()) -> str:
    """The sha256 hex key of one request.

    Args:
        model: a key-free identity of the model (name and endpoint).
        messages: the request's messages.
        json_output: the JSON mode (bool, None, or a pydantic class: its schema is hashed).
        create_args: sampling arguments sent to the model.
        sample: the caller's sample id; distinct ids give distinct keys.
        tools: tool definitions, hashed by their repr.
    """
    payload = {
        "model": model,
        "messages": [m.model_dump(mode="json") for m in messages],
        "json_output": _json_output_identity(json_output),
        "create_args": dict(create_args or {}),
        "sample": sample,
        "tools": [repr(t) for t in tools],
    }
    text = json.dumps(payload, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Entry:
    """One buffered write: a reply to store, or (result None) a removal."""

    __slots__ = ("key", "model", "result")

    def __init__(self, key: str, result: CreateResult | None, model: str) -> None:
        self.key, self.result, self.model = key, result, model


class ResponseCache:
    """Replies stored by request key in a sqlite file (WAL mode), written behind in batches.

    Lookups of keys the file does not hold cost no disk read: the stored keys' hashes are loaded
    when the cache opens, and replies written by other processes since are picked up when the
    file changes. Writes are buffered and committed by one worker thread, one transaction per
    batch, so the event loop never waits on disk. A file that sqlite cannot read (truncated,
    overwritten) is moved aside as ``<name>.corrupt-<time>`` with one warning, and a new one is
    started.

    Args:
        path: the sqlite file; its folder is created.
        flush_rows: commit a batch once it holds this many writes.
        flush_seconds: commit a batch at most this long after its first write.
    """

    def __init__(self, path: str | Path, *, flush_rows: int = FLUSH_ROWS, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # the writer connection (worker thread, or a blocking caller)
        self._read_lock = threading.Lock()  # the reader connection
        self._pending_lock = threading.Lock()
        self._known: set[int] = set()  # hash() of every key stored or buffered; a hash is enough for a filter
        self._last_rowid = 0
        self._signature: tuple[int, ...] | None = None
        self._pending: dict[str, _Entry] = {}  # buffered or committing, by key: what a lookup must see
        self._batch: list[_Entry] = []  # buffered, not yet handed to the worker
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._committing: set[concurrent.futures.Future] = set()
        self._warned_write = False
        self._closed = False
        try:
            self._db, self._reader = self._connect()
        except sqlite3.DatabaseError as exc:
            self._db, self._reader = self._rebuild(exc)
        _OPEN.add(self)

    # ------------------------------------------------------------------ opening

    def _connect(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        reader = None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable against process crashes
            db.execute(_SCHEMA)
            reader = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
            self._known.clear()
            self._last_rowid = 0
            self._signature = self._file_signature()
            self._load_new_keys(db)  # reads the whole key index: a damaged file fails here, at start
            return db, reader
        except BaseException:
            db.close()
            if reader is not None:
                reader.close()
            raise

    def _rebuild(self, error: sqlite3.DatabaseError) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        """Move a file sqlite cannot read (and its -wal/-shm) aside, warn once, and start an empty one."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):  # a stale -wal replayed into the new file would bring the damage back
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                os.replace(source, aside.with_name(aside.name + suffix))
        logger.warning("The response cache %s could not be read (%s); it was moved to %s and a new cache was started, "
                       "so replies it held will be asked for again.", self.path, error, aside)
        return self._connect()

    def _file_signature(self) -> tuple[int, ...]:
        """Sizes and times of the file and its WAL: any commit, by any process, changes them."""
        parts: list[int] = []
        for suffix in ("", "-wal"):
            try:
                stat = os.stat(f"{self.path}{suffix}")
                parts += (stat.st_size, stat.st_mtime_ns)
            except OSError:
                parts += (-1, -1)
        return tuple(parts)

    def _load_new_keys(self, connection: sqlite3.Connection) -> None:
        """Add the keys stored since the last load (by this process or another) to the in-memory filter."""
        last, known = self._last_rowid, self._known
        for rowid, key in connection.execute("SELECT rowid, key FROM responses WHERE rowid > ?", (last,)):
            known.add(hash(key))  # row by row: a cache of millions never holds all its keys as strings at once
            last = max(last, rowid)
        self._last_rowid = max(self._last_rowid, last)

    # ------------------------------------------------------------------ lookups

    def _lookup(self, key: str) -> CreateResult | None | object:
        """The reply from memory, None for a sure miss, or `_READ` when only the file can tell."""
        with self._pending_lock:
            entry = self._pending.get(key)
        if entry is not None:
            if entry.result is None:
                self.misses += 1
                return None
            self.hits += 1
            return entry.result.model_copy(update={"cached": True})
        if hash(key) not in self._known:
            signature = self._file_signature()
            if signature == self._signature:
                self.misses += 1
                return None
            # Another process (or our own worker, a moment ago) committed: pick up its keys.
            with self._read_lock:
                self._signature = signature
                self._load_new_keys(self._reader)
            if hash(key) not in self._known:
                self.misses += 1
                return None
        return _READ

    def _read(self, key: str) -> CreateResult | None:
        try:
            with self._read_lock:
                row = self._reader.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:  # damaged after start: a miss, so the model is asked
            logger.warning("Could not read a reply from the response cache %s (%s); asking the model instead.",
                           self.path, exc)
            row = None
        if row is None:  # removed by another process since it was listed
            self.misses += 1
            return None
        self.hits += 1
        result = CreateResult.model_validate_json(row[0])
        result.cached = True
        return result

    def get_now(self, key: str) -> CreateResult | None:
        """Blocking lookup; returns the stored result marked ``cached=True``, or None."""
        found = self._lookup(key)
        return self._read(key) if found is _READ else found  # type: ignore[return-value]

    async def get(self, key: str) -> CreateResult | None:
        """Look up `key`; only a key the file may hold costs a read.

        That read (one row by its primary key, from the WAL reader, which never waits for the
        writer) is made right here: handing it to a thread cost about 40 us of CPU per hit, five
        times the read itself, and a rerun served from the cache is nothing but hits.
        """
        return self.get_now(key)

    def __contains__(self, key: str) -> bool:
        with self._pending_lock:
            entry = self._pending.get(key)
        if entry is not None:
            return entry.result is not None
        return hash(key) in self._known

    # ------------------------------------------------------------------ writes

    def add(self, key: str, result: CreateResult, *, model: str = "") -> None:
        """Buffer `result` under `key` (an existing entry is replaced); it is committed with its batch."""
        self._known.add(hash(key))
        self._buffer(_Entry(key, result, model))

    def remove(self, key: str) -> bool:
        """Buffer the removal of `key`'s entry; returns whether there was one."""
        with self._pending_lock:
            entry = self._pending.get(key)
        there = entry.result is not None if entry is not None else hash(key) in self._known
        self._known.discard(hash(key))
        self._buffer(_Entry(key, None, ""))
        return there

    def _buffer(self, entry: _Entry) -> None:
        with self._pending_lock:
            self._pending[entry.key] = entry
        self._batch.append(entry)
        if len(self._batch) >= self.flush_rows:
            self._submit()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: blocking callers flush themselves
            return
        if self._timer is None or self._timer_loop is not loop:
            self._timer, self._timer_loop = loop.call_later(self.flush_seconds, self._submit), loop

    def _submit(self) -> concurrent.futures.Future | None:
        """Hand the buffered batch to the worker thread: one hop and one transaction per batch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._batch = self._batch, []
        if not batch:
            return None
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="orca-math-cache")
            future = self._executor.submit(self._commit, batch)
        except RuntimeError:  # the interpreter is shutting down: no more threads, write here
            self._commit(batch)
            return None
        self._committing.add(future)
        future.add_done_callback(self._committing.discard)
        return future

    def _commit(self, batch: list[_Entry]) -> None:
        latest = {entry.key: entry for entry in batch}  # the last write of a key wins, as it would one by one
        now = time.time()
        stores = [(e.key, e.model, self._json(e.result), now) for e in latest.values() if e.result is not None]
        removals = [e.key for e in latest.values() if e.result is None]
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    # Holding the write lock, nobody else commits until this transaction ends: an unchanged
                    # file means the keys committed after this one are this batch's, known already.
                    others_wrote = self._file_signature() != self._signature
                    # Many rows per statement: sqlite3 lets go of the GIL for every step, and taking it back
                    # from a busy event loop waits up to a switch interval (5 ms), so a row a step had
                    # kept this thread about 5 ms a row behind, and each wait cost the loop a switch.
                    for chunk in _chunks(removals, _ROWS_PER_STATEMENT):
                        self._db.execute(f"DELETE FROM responses WHERE key IN ({', '.join('?' * len(chunk))})", chunk)
                    for chunk in _chunks(stores, _ROWS_PER_STATEMENT):
                        self._db.execute("INSERT OR REPLACE INTO responses (key, model, value, created) VALUES "
                                         + ", ".join(["(?, ?, ?, ?)"] * len(chunk)), [v for row in chunk for v in row])
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                signature = self._file_signature()  # taken before reading: later commits change it again
                if others_wrote:
                    self._load_new_keys(self._db)
                else:
                    last = self._db.execute("SELECT MAX(rowid) FROM responses").fetchone()[0] or 0
                    self._last_rowid = max(self._last_rowid, last)
                self._signature = signature
        except sqlite3.Error as exc:
            if not self._warned_write:
                self._warned_write = True
                logger.warning("Could not write %d replies to the response cache %s (%s); the run goes on, and a "
                               "later run asks for them again.", len(latest), self.path, exc)
        finally:
            with self._pending_lock:
                for entry in batch:
                    if self._pending.get(entry.key) is entry:  # a newer write of the key is still buffered
                        del self._pending[entry.key]

    @staticmethod
    def _json(result: CreateResult | None) -> str:
        assert result is not None
        return (result.model_copy(update={"cached": False}) if result.cached else result).model_dump_json()

    async def put(self, key: str, result: CreateResult, *, model: str = "") -> None:
        """Store `result` under `key` (buffered; see `add`)."""
        self.add(key, result, model=model)

    async def discard(self, key: str) -> bool:
        """Remove `key`'s entry (a reply its caller rejected); returns whether there was one."""
        return self.remove(key)

    def put_now(self, key: str, result: CreateResult, *, model: str = "") -> None:
        """Blocking store: `result` is committed when this returns."""
        self.add(key, result, model=model)
        self.flush_now()

    def discard_now(self, key: str) -> bool:
        """Blocking removal of `key`'s entry; returns whether there was one."""
        there = self.remove(key)
        self.flush_now()
        return there

    async def flush(self) -> None:
        """Commit every buffered write; returns when they are on disk."""
        self._submit()
        waiting = list(self._committing)
        if waiting:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in waiting))

    def flush_now(self) -> None:
        """Blocking `flush`, for code without an event loop (and for exit)."""
        self._submit()
        for future in list(self._committing):
            future.result()

    def __len__(self) -> int:
        self.flush_now()
        with self._read_lock:
            return self._reader.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Commit what is buffered, stop the worker thread and close the file."""
        if self._closed:
            return
        self.flush_now()
        self._closed = True
        _OPEN.discard(self)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()


_OPEN: weakref.WeakSet[ResponseCache] = weakref.WeakSet()


@atexit.register
def _flush_open_caches() -> None:
    """At interpreter exit (a normal end, or after Ctrl-C), write what every open cache still buffers."""
    for cache in list(_OPEN):
        try:
            cache.flush_now()
        except Exception:  # noqa: BLE001 -- exit goes on; the next run asks for these replies again
            logger.debug("could not flush the response cache %s at exit", cache.path, exc_info=True)
