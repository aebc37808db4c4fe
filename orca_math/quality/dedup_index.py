"""The near-duplicate index on disk: MinHash LSH bands, signatures and exact digests in one sqlite file.

`Deduplicator` keeps its index in memory by default (fast; about 3.7 KB of Python objects per kept
problem, see docs/quality.md). With ``on_disk=True`` it uses `DiskIndex` instead, which holds
nothing per problem in memory: a run over millions of generated problems then stays within the
sqlite page cache (`CACHE_MB`). The decisions are the same as in memory: candidates come from
the same bands (one 8-byte hash per band slice instead of datasketch's bytes) and are checked
against the full signature in insertion order, so ties still go to the earliest kept row.

`rows_by_id` gives the dedup pass its order: the rows sorted by id, spooled through a temporary
sqlite file. The stage before dedup records its outputs in the order they finished, which differs
between runs (concurrency, retries, executors, resume); sorted by id, "the earliest kept row wins"
names the same row every time, with memory flat however many rows there are.

The file is a scratch index, not a record: it is rebuilt on every pass (the `Dedup` stage's
`prepare` runs again on resume), so it is written without a journal and removed when the index
is closed or garbage-collected.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: The sqlite page cache of the index, in MB: the most it holds in memory, however many rows.
CACHE_MB = 64
#: Rows written per transaction (one commit per batch: sqlite commits cost a disk sync each).
_BATCH = 2000

_SCHEMA = (
    "CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE exact (digest BLOB PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE kept (ord INTEGER PRIMARY KEY, id TEXT NOT NULL, signature BLOB NOT NULL)",
    "CREATE TABLE bands (key INTEGER NOT NULL, ord INTEGER NOT NULL, PRIMARY KEY (key, ord)) WITHOUT ROWID",
)


class DiskIndex:
    """The dedup index in a temporary sqlite file (see the module docstring).

    Args:
        bands: the LSH bands as (start, end) slices of the signature (datasketch's `hashranges`).
        folder: where to create the file (default: the system's temporary folder, `TMPDIR`).
    """

    def __init__(self, bands: list[tuple[int, int]], *, folder: str | Path | None = None) -> None:
        self.bands = list(bands)
        self.folder = Path(tempfile.mkdtemp(prefix="orca-math-dedup-", dir=folder))
        self.path = self.folder / "index.sqlite"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_MB * 1024}", "temp_store=FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._kept = 0
        self._pending = 0
        self._db.execute("BEGIN")
        # Removes the folder however the index ends (closed, or dropped with its Deduplicator).
        self._finalizer = weakref.finalize(self, _remove, self._db, self.folder)

    def __len__(self) -> int:
        """Kept rows indexed so far."""
        return self._kept

    def add_id(self, row_id: str) -> bool:
        """Note `row_id` as checked; False when it was checked before."""
        try:
            self._db.execute("INSERT INTO seen (id) VALUES (?)", (row_id,))
        except sqlite3.IntegrityError:
            return False
        self._tick()
        return True

    def exact(self, digest: bytes) -> str | None:
        """The id of the kept row whose normalised text has this digest, or None."""
        row = self._db.execute("SELECT id FROM exact WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def add_exact(self, digest: bytes, row_id: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO exact (digest, id) VALUES (?, ?)", (digest, row_id))
        self._tick()

    def candidates(self, signature: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Kept rows that share at least one band with `signature`, in insertion order: (id, signature)."""
        keys = self._band_keys(signature)
        marks = ",".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT k.id, k.signature FROM kept k WHERE k.ord IN (SELECT ord FROM bands WHERE key IN ({marks})) "
            "ORDER BY k.ord", keys).fetchall()
        return [(row_id, np.frombuffer(blob, dtype=signature.dtype)) for row_id, blob in rows]

    def add(self, row_id: str, signature: np.ndarray) -> None:
        """Index a kept row: its signature and one key per band."""
        order = self._kept
        self._kept += 1
        self._db.execute("INSERT INTO kept (ord, id, signature) VALUES (?, ?, ?)", (order, row_id, signature.tobytes()))
        self._db.executemany("INSERT OR IGNORE INTO bands (key, ord) VALUES (?, ?)",
                             [(key, order) for key in self._band_keys(signature)])
        self._tick()

    def _band_keys(self, signature: np.ndarray) -> list[int]:
        # One signed 64-bit key per band: the band's number and its slice of the signature, hashed.
        keys = []
        for band, (start, end) in enumerate(self.bands):
            digest = hashlib.blake2b(signature[start:end].tobytes(), digest_size=8, person=band.to_bytes(2, "little"))
            keys.append(int.from_bytes(digest.digest(), "little", signed=True))
        return keys

    def _tick(self) -> None:
        self._pending += 1
        if self._pending >= _BATCH:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0

    def close(self) -> None:
        """Delete the index file and its folder."""
        self._finalizer()


def rows_by_id(rows: Iterable[Mapping[str, Any]], *, field: str = "question", id_field: str = "id",
               folder: str | Path | None = None) -> Iterator[tuple[str, str]]:
    """(id, text) of every row, in id order, through a temporary sqlite file (see the module docstring).

    Args:
        rows: the rows (read once).
        field: the text column.
        id_field: the id column; ids must be unique.
        folder: where the temporary file goes (default: the system's temporary folder).

    Raises:
        InputError: a repeated id.
    """
    from orca_math.errors import InputError

    scratch = Path(tempfile.mkdtemp(prefix="orca-math-sort-", dir=folder))
    db = sqlite3.connect(scratch / "rows.sqlite", isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_MB * 1024}", "temp_store=FILE"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID")
        batch: list[tuple[str, str]] = []
        for row in rows:
            batch.append((str(row[id_field]), row[field]))
            if len(batch) >= _BATCH:
                _insert(db, batch)
        _insert(db, batch)
        yield from db.execute("SELECT id, text FROM rows ORDER BY id")
    except sqlite3.IntegrityError as error:
        raise InputError(f"a row id is repeated in the input of dedup ({error}); row ids must be unique") from None
    finally:
        db.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _insert(db: sqlite3.Connection, batch: list[tuple[str, str]]) -> None:
    db.execute("BEGIN")
    db.executemany("INSERT INTO rows (id, text) VALUES (?, ?)", batch)
    db.execute("COMMIT")
    batch.clear()


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    try:
        db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["CACHE_MB", "DiskIndex", "rows_by_id"]
