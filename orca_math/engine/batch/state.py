"""Durable batch state: one sqlite file that says what was sent, where it is, and what came back.

It lives beside the run's response cache (``OUT/batches/state.sqlite``) with each batch's input
file and downloaded results. Requests are keyed by the same content key as the response cache
(model, messages, settings, sample id), so a rerun of the same command, or a changed stage that
makes some of the same requests, finds them: a request still running is polled, not resubmitted,
and a request whose result came back is served from here, never sent again.

Order of writes, so a crash at any point never pays twice:

1. the input file is written and the batch recorded as "prepared", its requests as "submitted";
2. the provider's file id, then its batch id, are recorded as soon as they are known (a crash
   between creating the batch and recording its id is healed by looking the batch up by its
   input file at the provider);
3. downloaded results are stored (one transaction per batch) before the batch is marked "stored";
   only then does the runner checkpoint the items that asked for them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BATCH_DIR = "batches"
STATE_FILE = "state.sqlite"

#: Batch states, in the order a batch goes through them ("failed"/"missing" end it without results).
BATCH_STATES = ("prepared", "submitted", "ended", "stored", "failed", "missing")
OPEN_STATES = ("prepared", "submitted", "ended")
#: Request states: on its way, answered, to be sent again, given up with a reason, or answered unusably.
REQUEST_STATES = ("submitted", "succeeded", "retry", "failed", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, state TEXT NOT NULL,
    input_file TEXT NOT NULL, requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    file_id TEXT, remote_id TEXT, counts TEXT, reason TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY, custom_id TEXT NOT NULL, batch TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    reason TEXT, result TEXT, history TEXT NOT NULL DEFAULT '[]', updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS requests_by_batch ON requests (batch);
"""


@dataclass
class BatchRecord:
    """One submitted (or about to be submitted) batch, as the state file has it."""

    id: str
    backend: str
    model: str
    state: str
    input_file: str
    requests: int
    prompt_tokens: int = 0
    file_id: str | None = None
    remote_id: str | None = None
    counts: dict[str, int] | None = None
    reason: str | None = None
    created: float = 0.0
    updated: float = 0.0

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass
class RequestRecord:
    """One request: its batch, state, attempts so far, why it failed, and its result once back."""

    key: str
    custom_id: str
    batch: str | None
    state: str
    attempts: int
    reason: str | None = None
    result: dict[str, Any] | None = None
    history: list[str] | None = None


def state_path(out: str | Path) -> Path:
    """The state file of the output folder `out`."""
    return Path(out) / BATCH_DIR / STATE_FILE


def find_state(folder: str | Path) -> Path | None:
    """The batch state for `folder`: an output folder, a run folder inside one, or the batches folder itself."""
    folder = Path(folder)
    for candidate in (folder, *list(folder.parents)[:3]):
        for path in (candidate / BATCH_DIR / STATE_FILE, candidate / STATE_FILE):
            if path.is_file():
                return path
    return None


class BatchState:
    """The state file, shared by coroutines (one lock) and by processes (sqlite's WAL mode).

    Args:
        path: the sqlite file; its folder is created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.folder = self.path.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ batches

    def add_batch(self, record: BatchRecord, requests: Iterable[tuple[str, str]]) -> None:
        """Record a prepared batch and its (key, custom_id) requests as submitted, in one transaction."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO batches (id, backend, model, state, input_file, requests, prompt_tokens, created, updated) "
                "VALUES (?, ?, ?, 'prepared', ?, ?, ?, ?, ?)",
                (record.id, record.backend, record.model, record.input_file, record.requests, record.prompt_tokens, now, now))
            self._db.executemany(
                "INSERT INTO requests (key, custom_id, batch, state, attempts, updated) VALUES (?, ?, ?, 'submitted', 1, ?) "
                "ON CONFLICT(key) DO UPDATE SET batch = excluded.batch, state = 'submitted', "
                "attempts = requests.attempts + 1, updated = excluded.updated",
                ((key, custom_id, record.id, now) for key, custom_id in requests))

    def update_batch(self, batch_id: str, **fields: Any) -> None:
        """Set fields of a batch (state, file_id, remote_id, counts, reason)."""
        if "counts" in fields and fields["counts"] is not None:
            fields["counts"] = json.dumps(fields["counts"])
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            self._db.execute(f"UPDATE batches SET {names}, updated = ? WHERE id = ?", (*fields.values(), time.time(), batch_id))

    def batches(self, *, open_only: bool = False) -> list[BatchRecord]:
        """Every batch (or the open ones), oldest first."""
        query = "SELECT * FROM batches" + (f" WHERE state IN {OPEN_STATES}" if open_only else "") + " ORDER BY created, id"
        with self._lock:
            cursor = self._db.execute(query)
            names = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
        records = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            values["counts"] = json.loads(values["counts"]) if values["counts"] else None
            records.append(BatchRecord(**values))
        return records

    def next_batch_id(self) -> str:
        with self._lock:
            count = self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        return f"b{count + 1:05d}"

    # ------------------------------------------------------------------ requests

    def request(self, key: str) -> RequestRecord | None:
        """The record of the request with this content key, or None when it was never sent."""
        with self._lock:
            row = self._db.execute("SELECT key, custom_id, batch, state, attempts, reason, result, history FROM requests "
                                   "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        # Most lookups serve a result that came back at once: an empty history needs no parsing.
        return RequestRecord(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]) if row[6] else None,
                             json.loads(row[7]) if row[7] != "[]" else [])

    def requests_of(self, batch_id: str) -> Iterator[tuple[str, str, str]]:
        """(key, custom_id, state) of each request last sent in `batch_id`."""
        with self._lock:
            rows = self._db.execute("SELECT key, custom_id, state FROM requests WHERE batch = ?", (batch_id,)).fetchall()
        yield from rows

    def store_results(self, batch_id: str, results: Iterable[tuple[str, str, dict[str, Any] | None, str | None]],
                      *, max_attempts: int) -> dict[str, int]:
        """Store a batch's results and end it ("stored"), in one transaction; returns counts by outcome.

        Args:
            results: (custom_id, outcome, result, reason) with outcome "succeeded", or "errored",
                "expired", "canceled" (then `reason` says why).
            max_attempts: a request that did not succeed is sent again until it was sent this often.

        Requests of the batch that have no result line at all (a lost line) are sent again too.
        A request already answered keeps its first answer: the same reply is never paid for twice.
        """
        now = time.time()
        counts = dict.fromkeys(("succeeded", "retry", "failed", "missing"), 0)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            ids = dict(self._db.execute("SELECT custom_id, key FROM requests WHERE batch = ? AND state = 'submitted'",
                                        (batch_id,)).fetchall())
            for custom_id, outcome, result, reason in results:
                key = ids.pop(custom_id, None)
                if key is None:
                    continue  # not ours, or answered already: keep what we have
                if outcome == "succeeded":
                    self._db.execute("UPDATE requests SET state = 'succeeded', result = ?, reason = NULL, updated = ? WHERE key = ?",
                                     (json.dumps(result), now, key))
                    counts["succeeded"] += 1
                else:
                    counts[self._not_answered(key, f"{outcome}: {reason}" if reason else outcome, max_attempts, now)] += 1
            for key in ids.values():
                counts["missing"] += 1
                self._not_answered(key, "the batch's results had no line for this request", max_attempts, now)
            self._db.execute("UPDATE batches SET state = 'stored', updated = ? WHERE id = ?", (now, batch_id))
        return counts

    def fail_batch(self, batch_id: str, state: str, reason: str, *, max_attempts: int) -> int:
        """End a batch without results ("failed" or "missing"); its requests are sent again or fail. Returns how many."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            keys = [k for (k,) in self._db.execute("SELECT key FROM requests WHERE batch = ? AND state = 'submitted'", (batch_id,))]
            for key in keys:
                self._not_answered(key, reason, max_attempts, now)
            self._db.execute("UPDATE batches SET state = ?, reason = ?, updated = ? WHERE id = ?", (state, reason, now, batch_id))
        return len(keys)

    def _not_answered(self, key: str, reason: str, max_attempts: int, now: float) -> str:
        """Mark a request for resubmission, or as failed when its attempts are used up; keeps every reason."""
        attempts, history = self._db.execute("SELECT attempts, history FROM requests WHERE key = ?", (key,)).fetchone()
        reasons = [*json.loads(history), reason]
        state = "retry" if attempts < max_attempts else "failed"
        self._db.execute("UPDATE requests SET state = ?, reason = ?, history = ?, updated = ? WHERE key = ?",
                         (state, reason, json.dumps(reasons), now, key))
        return state

    def renew(self, key: str) -> None:
        """Give a failed request its attempts again (a later run retries it); its history of reasons is kept."""
        with self._lock:
            self._db.execute("UPDATE requests SET attempts = 0, updated = ? WHERE key = ? AND state = 'failed'", (time.time(), key))

    def failed_keys(self, batch_id: str) -> list[str]:
        """Keys of the requests last sent in `batch_id` that are failed for good."""
        with self._lock:
            return [key for (key,) in self._db.execute("SELECT key FROM requests WHERE batch = ? AND state = 'failed'", (batch_id,))]

    def mark_rejected(self, key: str) -> None:
        """The caller could not use this request's reply: a later run asks for it again."""
        with self._lock:
            self._db.execute("UPDATE requests SET state = 'rejected', updated = ? WHERE key = ? AND state = 'succeeded'",
                             (time.time(), key))

    def give_up(self, keys: Iterable[str], reason: str) -> None:
        """Mark requests as failed for good, with `reason` added to their history."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for key in keys:
                self._not_answered(key, reason, 0, now)

    def retries(self) -> list[tuple[str, str, str, str, str]]:
        """(key, custom_id, batch, backend, model) of each request waiting to be sent again, by its last batch."""
        with self._lock:
            return self._db.execute("SELECT r.key, r.custom_id, r.batch, b.backend, b.model FROM requests r "
                                    "JOIN batches b ON r.batch = b.id WHERE r.state = 'retry'").fetchall()

    def counts(self) -> dict[str, int]:
        """How many requests are in each state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state").fetchall()
        return {**dict.fromkeys(REQUEST_STATES, 0), **dict(rows)}

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        """How many of a batch's requests are in each state now."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM requests WHERE batch = ? GROUP BY state", (batch_id,)).fetchall()
        return dict(rows)


__all__ = ["BATCH_DIR", "BatchRecord", "BatchState", "RequestRecord", "STATE_FILE", "find_state", "state_path"]
