"""A content-addressed response cache on one sqlite file, shared by coroutines and processes.

The key is a sha256 of the model identity, the messages, the JSON output mode, the sampling
arguments and an optional sample id, so k samples at temperature > 0 stay k distinct entries.
Values are `CreateResult` JSON. No API key is part of a key or a value: the model identity is
the key-free `describe_client` string. A reply its caller could not use is discarded
(`ManagedClient.reject_reply`), so the same request goes to the model again next time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, LLMMessage

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, value TEXT NOT NULL, created REAL)"


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


class ResponseCache:
    """Replies stored by request key in a sqlite file (WAL mode).

    Database work runs in a worker thread so the event loop never blocks on disk; one
    connection per cache object is guarded by a lock, and sqlite's WAL mode with a busy timeout
    lets several processes share the file.

    Args:
        path: the sqlite file; its folder is created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable against process crashes
        self._db.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def get_now(self, key: str) -> CreateResult | None:
        """Blocking lookup; returns the stored result marked ``cached=True``, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        result = CreateResult.model_validate_json(row[0])
        result.cached = True
        return result

    def put_now(self, key: str, result: CreateResult, *, model: str = "") -> None:
        """Blocking store; an existing entry for `key` is replaced."""
        value = result.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, value, created) VALUES (?, ?, ?, ?)",
                (key, model, value, time.time()),
            )

    def discard_now(self, key: str) -> bool:
        """Blocking removal of `key`'s entry; returns whether there was one."""
        with self._lock:
            return self._db.execute("DELETE FROM responses WHERE key = ?", (key,)).rowcount > 0

    async def get(self, key: str) -> CreateResult | None:
        """Look up `key` without blocking the event loop."""
        return await asyncio.to_thread(self.get_now, key)

    async def put(self, key: str, result: CreateResult, *, model: str = "") -> None:
        """Store `result` under `key` without blocking the event loop."""
        await asyncio.to_thread(self.put_now, key, result, model=model)

    async def discard(self, key: str) -> bool:
        """Remove `key`'s entry (a reply its caller rejected) without blocking the event loop."""
        return await asyncio.to_thread(self.discard_now, key)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
