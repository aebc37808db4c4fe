"""A content-addressed response cache on one sqlite file, shared by coroutines and processes.

The key is a sha256 of the model identity, the messages, the JSON output mode, the sampling
arguments and an optional sample id, so k samples at temperature > 0 stay k distinct entries.
Values are `CreateResult` JSON. No API key is part of a key or a value: the model identity is
the key-free `describe_client` string. A reply its caller could not use is discarded
(`ManagedClient.reject_reply`), so the same request goes to the model again next time.

Speed: the keys already stored are held in memory (their hashes, and their rows' ids) from the
start, so a miss reads nothing from disk and a hit reads one row by its id (on the event loop: a thread hop cost five times
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

# Rows are appended in the order they are written, with no index on `key`: the index of the keys is
# in memory (`ResponseCache._known`). Keys are hashes, so a key index put each row of a batch on an
# index page of its own, and every commit rewrote about one 4 KB page a row: that was most of the
# cache's CPU at 64 calls in flight (benchmarks/cache_store.py --layouts: 0.3 of it without).
# AUTOINCREMENT: an id is never given twice (a plain rowid reuses the largest after it is deleted), so the
# rows written since a load are exactly those above the largest id seen.
_SCHEMA = ("CREATE TABLE IF NOT EXISTS replies (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, model TEXT, "
           "value TEXT NOT NULL, created REAL)")
# The table of earlier versions (a `key TEXT PRIMARY KEY`), copied into `replies` when a file is opened.
_OLD_TABLE = "responses"
#: A batch is committed once it holds this many replies ...
FLUSH_ROWS = 256
#: ... or this many seconds after its first reply, whichever comes first.
FLUSH_SECONDS = 0.05
_READ = object()  # "the key may be stored: read it from disk"
#: Times opening waits for a file another process holds (sqlite's own wait is 30 s each time).
_BUSY_ATTEMPTS = 10
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

    Lookups of keys the file does not hold cost no disk read: the index of the stored keys (each
    key's hash, and the id of its row) is loaded when the cache opens and kept in memory, and rows
    written by other processes since are indexed when the file changes. A hit reads one row by its
    id. Writes are buffered and committed by one worker thread, one transaction per batch, so the
    event loop never waits on disk; rows are appended, and a key written again or removed loses
    its earlier row in the same transaction. A file that sqlite cannot read (truncated,
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
        # hash() of every stored key -> the id of its newest row (reads check the row's key, so a hash is enough),
        # and, for the rare key two processes wrote at once, the ids of its older rows.
        self._known: dict[int, int] = {}
        self._older: dict[int, list[int]] = {}
        self._keys_lock = threading.Lock()  # loading new rows' keys (the writer thread and lookups both do)
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
        for attempt in range(_BUSY_ATTEMPTS):
            try:
                self._db, self._reader = self._connect()
                break
            except sqlite3.DatabaseError as exc:
                # A file another process holds (copying an earlier layout, which can take a while) is busy,
                # not damaged: wait for it again rather than set it aside.
                if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                    if attempt + 1 < _BUSY_ATTEMPTS:
                        continue
                    raise
                self._db, self._reader = self._rebuild(exc)
                break
        _OPEN.add(self)

    # ------------------------------------------------------------------ opening

    def _connect(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        reader = None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable against process crashes
            db.execute(_SCHEMA)
            self._migrate(db)
            reader = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
            self._known.clear()
            self._older.clear()
            self._last_rowid = 0
            self._signature = self._file_signature()
            self._load_new_keys(db)  # reads the whole key index: a damaged file fails here, at start
            return db, reader
        except BaseException:
            db.close()
            if reader is not None:
                reader.close()
            raise

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Copy an earlier version's table into `replies`, in the order its rows were written, then drop it."""
        def old_table() -> bool:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_OLD_TABLE,)).fetchone() is not None

        if not old_table():
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if old_table():  # another process may have copied it while this one waited for the lock
                db.execute(f"INSERT INTO replies (key, model, value, created) SELECT key, model, value, created "
                           f"FROM {_OLD_TABLE} ORDER BY rowid")
                db.execute(f"DROP TABLE {_OLD_TABLE}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
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
        """Index the rows written since the last load (by this process or another): key hash -> newest row id."""
        with self._keys_lock:
            last, known = self._last_rowid, self._known
            for row_id, key in connection.execute("SELECT id, key FROM replies WHERE id > ?", (last,)):
                h = hash(key)  # row by row: a cache of millions never holds all its keys as strings at once
                older = known.get(h)
                if older is not None and older != row_id:  # written twice (two processes at once): the newest wins
                    self._older.setdefault(h, []).append(older)
                known[h] = row_id
                last = max(last, row_id)
            self._last_rowid = max(self._last_rowid, last)

    def _reindex(self) -> None:
        """Index the file's rows again from the start (after a commit that did not happen)."""
        with self._keys_lock:
            self._known.clear()
            self._older.clear()
            self._last_rowid = 0
        try:
            self._load_new_keys(self._db)
        except sqlite3.Error:  # the keys it could not read are misses: their replies are asked for again
            logger.debug("could not index the response cache %s again", self.path, exc_info=True)

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
        row_id = self._known.get(hash(key))
        row = None
        if row_id is not None:
            try:
                with self._read_lock:
                    row = self._reader.execute("SELECT key, value FROM replies WHERE id = ?", (row_id,)).fetchone()
            except sqlite3.DatabaseError as exc:  # damaged after start: a miss, so the model is asked
                logger.warning("Could not read a reply from the response cache %s (%s); asking the model instead.",
                               self.path, exc)
        if row is None or row[0] != key:  # removed by another process since it was listed (or another key's hash)
            self.misses += 1
            return None
        self.hits += 1
        result = CreateResult.model_validate_json(row[1])
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
        self._buffer(_Entry(key, result, model))

    def remove(self, key: str) -> bool:
        """Buffer the removal of `key`'s entry; returns whether there was one."""
        with self._pending_lock:
            entry = self._pending.get(key)
        there = entry.result is not None if entry is not None else hash(key) in self._known
        self._buffer(_Entry(key, None, ""))  # until it is committed, the buffered removal hides the stored reply
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
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    # Holding the write lock, nobody else commits until this transaction ends: rows other
                    # processes committed before it are indexed first, so that every row of a key is known.
                    if self._file_signature() != self._signature:
                        self._load_new_keys(self._db)
                    # A key written again, or removed, loses the rows it had: one row a key (the key is
                    # checked too, in case two keys share a hash).
                    for key in latest:
                        h = hash(key)
                        if h in self._known:
                            ids = [self._known.pop(h), *self._older.pop(h, [])]
                            self._db.execute(f"DELETE FROM replies WHERE key = ? AND id IN ({', '.join('?' * len(ids))})",
                                             [key, *ids])
                    # Many rows per statement: sqlite3 lets go of the GIL for every step, and taking it back
                    # from a busy event loop waits up to a switch interval (5 ms), so a row a step had
                    # kept this thread about 5 ms a row behind, and each wait cost the loop a switch.
                    for chunk in _chunks(stores, _ROWS_PER_STATEMENT):
                        self._db.execute("INSERT INTO replies (key, model, value, created) VALUES "
                                         + ", ".join(["(?, ?, ?, ?)"] * len(chunk)), [v for row in chunk for v in row])
                    self._load_new_keys(self._db)  # this batch's rows: only this transaction wrote since the load
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._reindex()  # the index took this batch's ids, which the next commit will use again
                    raise
                self._signature = self._file_signature()
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
            return self._reader.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

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
