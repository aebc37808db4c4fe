"""A compact, growing index over JSONL files: byte offsets, ids and facet codes, never the rows.

A run at paper scale has hundreds of MB of checkpoints. The viewer must page, filter and search them
without holding them: each entry (one problem inside a checkpoint line, or one line of an items file)
costs about 40 bytes here (its file, byte offset, position in the line, id hash, parent hash and
small integer codes for its facets), and a page is read back from disk by seeking to its lines.

The files are append-only while a run writes, so `refresh()` reads only the bytes added since the
last call (whole lines only: a line still being written is left for the next call). A file that
shrank or was replaced (a resumed run rewrites `drops.jsonl`) makes the index start again.
"""

from __future__ import annotations

import json
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

#: The facets every entry has, as small integer codes into `StringTable`.
FACETS = ("stage", "status", "origin", "method", "reason")
#: What a checkpoint line says its item cost (its `usage`), kept per line for the live funnel.
USAGE = ("prompt_tokens", "completion_tokens", "calls", "cached_prompt_tokens", "cached_completion_tokens")
#: How much of a file one refresh step reads at a time.
_CHUNK = 1 << 22


def id_hash(value: Any) -> int:
    """A 64-bit hash of an id (0 for None), so ids need no Python strings in memory.

    Python's own string hash: fast, and stable within the process, which is all an in-memory
    index needs (it is never written to disk). A collision costs nothing but a wasted read: every
    lookup compares the ids of the rows it reads back.
    """
    if value is None:
        return 0
    return hash(value if isinstance(value, str) else str(value)) or 1


class Entry(NamedTuple):
    """What an extractor says about one row of a line: its place in the line, ids and facet values."""

    pos: int
    ident: Any
    parent: Any = None
    stage: str = ""
    status: str = ""
    origin: str = ""
    method: str = ""
    reason: str = ""


#: Turns one parsed line of a file into its entries.
Extractor = Callable[[Mapping[str, Any]], Sequence[Entry]]
#: Turns one parsed line and an entry's position back into the row it stands for.
Resolver = Callable[[Mapping[str, Any], int], dict[str, Any]]


class StringTable:
    """Facet values as small integers (a run has a few dozen distinct stages, origins and reasons)."""

    def __init__(self) -> None:
        self.values: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}

    def code(self, value: str) -> int:
        try:
            return self._codes[value]
        except KeyError:
            self._codes[value] = len(self.values)
            self.values.append(value)
            return self._codes[value]

    def find(self, value: str) -> int | None:
        return self._codes.get(value)


@dataclass
class IndexedFile:
    """One file of an index: how to read its lines, and how far it has been read."""

    path: Path
    extract: Extractor
    resolve: Resolver
    order: int = 0  # the stage's place in the run, for "furthest stage reached"
    size: int = 0
    inode: int | None = None


class EntryIndex:
    """Entries of several JSONL files in arrays, extended by `refresh()` as the files grow.

    Args:
        files: (path, extractor, resolver, order) for each file; missing files are read when they appear.

    Attributes:
        version: goes up each time entries are added or the index starts again, so callers can cache.
    """

    def __init__(self, files: Sequence[tuple[Path, Extractor, Resolver, int]]) -> None:
        self.files = [IndexedFile(Path(p), e, r, o) for p, e, r, o in files]
        self.strings = StringTable()
        self.version = 0
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.file = array("H")
        self.offset = array("q")
        self.pos = array("i")
        self.ident = array("q")
        self.parent = array("q")
        self.key = array("q")  # the hash of the line's checkpoint key (0 for files without keys)
        self.facets = {name: array("H") for name in FACETS}
        # Per checkpoint line (one item's result), about 30 bytes: its file, key and usage, so a
        # running run's funnel counts inputs and tokens without reading the files again.
        self.line_file = array("H")
        self.line_key = array("q")
        self.usage = {name: array("i") for name in USAGE}
        for indexed in self.files:
            indexed.size, indexed.inode = 0, None
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.offset)

    def refresh(self) -> bool:
        """Index what the files gained since the last call. Returns whether anything changed."""
        with self._lock:
            changed = False
            for indexed in self.files:
                try:
                    stat = indexed.path.stat()
                except OSError:
                    if indexed.size:  # a file that disappeared: start again
                        self._reset()
                        changed = True
                    continue
                if indexed.inode not in (None, stat.st_ino) or stat.st_size < indexed.size:
                    self._reset()
                    return self._refresh_after_reset()
                if stat.st_size > indexed.size:
                    changed |= self._read_from(indexed, stat.st_ino)
            if changed:
                self.version += 1
                self._cache.clear()
            return changed

    def _refresh_after_reset(self) -> bool:
        for indexed in self.files:
            if indexed.path.exists():
                self._read_from(indexed, indexed.path.stat().st_ino)
        self.version += 1
        return True

    def _read_from(self, indexed: IndexedFile, inode: int) -> bool:
        number = self.files.index(indexed)
        added = False
        with open(indexed.path, "rb") as handle:
            handle.seek(indexed.size)
            start = indexed.size
            pending = b""
            while True:
                chunk = handle.read(_CHUNK)
                if not chunk:
                    break
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                for line_start, line in _lines(data[:cut], start):
                    added |= self._add_line(number, indexed, line_start, line)
                start += cut
        indexed.size = start  # a cut-off last line is read again next time, once whole
        indexed.inode = inode
        return added

    def _add_line(self, number: int, indexed: IndexedFile, offset: int, line: bytes) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False  # a damaged line: the checkpoint readers warn about it; the viewer skips it
        if not isinstance(record, dict):
            return False
        counted = record.get("key") is not None
        if counted:
            usage = record.get("usage") if isinstance(record.get("usage"), dict) else {}
            self.line_file.append(number)
            self.line_key.append(id_hash(record["key"]))
            for name in USAGE:
                value = usage.get(name)
                self.usage[name].append(int(value) if isinstance(value, int | float) else 0)
        entries = indexed.extract(record)
        if not entries:
            return counted
        code = self.strings.code
        # Column by column: at paper scale this loop runs for every row of every checkpoint.
        pos, ident, parent, stage, status, origin, method, reason = zip(*entries, strict=True)
        count = len(entries)
        self.file.extend([number] * count)
        self.offset.extend([offset] * count)
        self.pos.extend(pos)
        self.ident.extend([id_hash(i) for i in ident])
        self.parent.extend([id_hash(p) for p in parent])
        self.key.extend([id_hash(record.get("key"))] * count)
        for name, values in (("stage", stage), ("status", status), ("origin", origin), ("method", method), ("reason", reason)):
            self.facets[name].extend([code(v) for v in values])
        return True

    def array(self, name: str) -> np.ndarray:
        """A read-only numpy view of one column (`file`, `ident`, `parent`, `offset`, a facet, `line_file`,
        `line_key` or a `USAGE` name)."""
        source = self.facets[name] if name in self.facets else self.usage[name] if name in self.usage else getattr(self, name)
        dtype = {"H": np.uint16, "q": np.int64, "i": np.int32}[source.typecode]
        # A copy, made once per version: a view would pin the array's buffer, and the next append
        # to a growing index would then fail.
        return self.cached(f"column:{name}", lambda: np.frombuffer(source, dtype=dtype).copy() if len(source) else np.zeros(0, dtype=dtype))

    def alive(self) -> np.ndarray:
        """Which entries belong to the last line of their checkpoint key (a retried item's newer line wins).

        Lines without a key (items files, sample files) are always alive.
        """
        return self.cached("alive", lambda: _last_of_key(self.array("file"), self.array("key"), self.array("offset")))

    def line_alive(self) -> np.ndarray:
        """Which checkpoint lines are the last of their key in their file: the items a funnel counts."""
        return self.cached("line_alive", lambda: _last_of_key(self.array("line_file"), self.array("line_key"),
                                                              np.arange(len(self.line_key), dtype=np.int64)))

    def cached(self, key: str, build: Callable[[], np.ndarray]) -> np.ndarray:
        """Memoise a derived array until the index changes (a few recent queries are kept)."""
        key = f"{self.version}:{key}"
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > 32:
                self._cache = {k: v for k, v in self._cache.items() if ":column:" in k}
            found = self._cache[key] = build()
        return found

    def read(self, number: int) -> dict[str, Any]:
        """The row entry `number` stands for, read from disk."""
        indexed = self.files[self.file[number]]
        with open(indexed.path, "rb") as handle:
            handle.seek(self.offset[number])
            record = json.loads(handle.readline())
        return indexed.resolve(record, self.pos[number])

    def read_many(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        """Several rows, each file opened once and each line parsed once."""
        rows: dict[int, dict[str, Any]] = {}
        by_line: dict[tuple[int, int], list[int]] = {}
        for number in numbers:
            by_line.setdefault((self.file[number], self.offset[number]), []).append(number)
        handles: dict[int, Any] = {}
        try:
            for (file_number, offset), members in by_line.items():
                handle = handles.get(file_number)
                if handle is None:
                    handle = handles[file_number] = open(self.files[file_number].path, "rb")
                handle.seek(offset)
                record = json.loads(handle.readline())
                for number in members:
                    rows[number] = self.files[file_number].resolve(record, self.pos[number])
        finally:
            for handle in handles.values():
                handle.close()
        return [rows[n] for n in numbers]

    def scan(self, numbers: np.ndarray, needle: str, fields: Sequence[str]) -> np.ndarray:
        """The entries among `numbers` whose text `fields` contain `needle` (case-insensitive).

        Reads each file once, in order; a line is parsed only when its raw bytes could hold the
        needle, so a search over a large run costs about one sequential read of its files.
        """
        needle = needle.casefold()
        raw = needle.encode("utf-8") if needle.isascii() and not any(c in needle for c in '"\\/') else None
        wanted: dict[int, dict[int, list[int]]] = {}
        files, offsets = self.array("file"), self.array("offset")
        for number in numbers.tolist():
            wanted.setdefault(int(files[number]), {}).setdefault(int(offsets[number]), []).append(number)
        found: list[int] = []
        for file_number, lines in wanted.items():
            indexed = self.files[file_number]
            with open(indexed.path, "rb") as handle:
                for offset in sorted(lines):
                    handle.seek(offset)
                    line = handle.readline()
                    if raw is not None and raw not in line.lower():
                        continue
                    record = json.loads(line)
                    for number in lines[offset]:
                        row = indexed.resolve(record, self.pos[number])
                        if any(needle in str(row.get(f) or "").casefold() for f in fields):
                            found.append(number)
        return np.array(sorted(found), dtype=np.int64)


def _last_of_key(files: np.ndarray, keys: np.ndarray, places: np.ndarray) -> np.ndarray:
    """Which rows hold the greatest place (byte offset, or line number) among those of their file and key (key 0: every row)."""
    alive = np.ones(len(keys), dtype=bool)
    keyed = np.flatnonzero(keys != 0)
    if len(keyed):
        order = keyed[np.lexsort((places[keyed], keys[keyed], files[keyed]))]
        f, k, place = files[order], keys[order], places[order]
        starts = np.r_[True, (f[1:] != f[:-1]) | (k[1:] != k[:-1])]
        group = np.cumsum(starts) - 1
        last = place[np.r_[np.flatnonzero(starts)[1:] - 1, len(order) - 1]]
        alive[order] = place == last[group]
    return alive


def _lines(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    position = 0
    while position < len(data):
        end = data.index(b"\n", position)
        if end > position:
            yield start + position, data[position:end]
        position = end + 1
