"""Append-only checkpoint files: one JSON line per finished item, safe against crashes.

Each line is `{"key": ..., "status": "ok" | "failed", ...}`. A line is written with a single
`os.write` on a file opened with O_APPEND, so a crash (even SIGKILL) leaves at most one cut-off
last line; `CheckpointFile.repair` detects it, truncates the file back to the last whole line, and
carries on. The last line for a key wins, so a failed item retried on resume simply gets a newer line.

A damaged line anywhere else (a flipped byte, a line that is not a record) is skipped by readers
with a warning naming the file and line; `statuses()`, which a run calls before it reads anything
else, moves such lines (byte for byte) to `<file>.damaged`, so their items are redone and the
warning is given once.

Lines whose keys are no longer among the step's inputs (an earlier step decided differently on
resume, or a line copied in by hand) are moved to `<file>.stale` by `set_aside`, so that no reader
outputs them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from orca_math.files import json_bytes, parse_json

logger = logging.getLogger(__name__)


class CheckpointFile:
    """An append-only JSONL file of item results, keyed by item key.

    Args:
        path: the file; created with its parent folders on first write.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def repair(self) -> int:
        """Cut a partial last line left by a crash. Returns how many bytes were discarded.

        Only the last line is read: every step repairs its checkpoint before reading it, and at
        paper scale a checkpoint is hundreds of MB (reading it whole made each step's end the
        run's memory peak).
        """
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            last_start = _last_line_start(handle, size)
            handle.seek(last_start)
            tail = handle.read()
            good = size
            if not tail.endswith(b"\n"):
                good = last_start
            elif tail.strip() and not _parses(tail):
                # The last line may end in a newline yet be cut mid-way by a torn write on some systems.
                good = last_start
            if good < size:
                self._set_aside([tail.rstrip(b"\n") + b"\n"])
                handle.truncate(good)
                logger.warning("discarded a cut-off last line (%d bytes) in %s", size - good, self.path)
            return size - good

    @property
    def damaged_path(self) -> Path:
        """Where damaged lines are moved: `<file>.damaged` beside the checkpoint."""
        return self.path.with_name(self.path.name + ".damaged")

    @property
    def stale_path(self) -> Path:
        """Where `set_aside` moves the lines of keys that are no longer inputs: `<file>.stale`."""
        return self.path.with_name(self.path.name + ".stale")

    def records(self) -> Iterator[dict[str, Any]]:
        """Every sound record, in order. Damaged lines are skipped with a warning naming the line."""
        for _, record in self._scan(damaged=None):
            yield record

    def _scan(self, damaged: list[tuple[int, bytes]] | None, *, warn: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, record) of each sound line; damaged ones are warned about and added to `damaged`."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record, problem = _record_of(line)
                if record is not None:
                    yield number, record
                    continue
                if not warn:
                    continue
                action = "set aside in " + str(self.damaged_path) if damaged is not None else "skipped"
                logger.warning("%s, line %d: %s; %s, and its item will be redone", self.path, number, problem, action)
                if damaged is not None:
                    damaged.append((number, line))

    def statuses(self) -> dict[str, str]:
        """The status of each key's last record (small: no payloads are kept in memory).

        Called before a run appends: damaged lines are moved to `damaged_path` here, once.
        """
        self.repair()
        damaged: list[tuple[int, bytes]] = []
        statuses = {record["key"]: record["status"] for _, record in self._scan(damaged)}
        if damaged:
            self._remove_lines(damaged, self.damaged_path)
        return statuses

    def set_aside(self, keys: Collection[str]) -> int:
        """Move every line of `keys` to `stale_path`, byte for byte; returns how many lines moved.

        For keys that are no longer among the step's inputs: no reader sees their lines after.
        Like `statuses()`, only safe before a run appends (see `_remove_lines`).
        """
        if not keys or not self.path.exists():
            return 0
        lines: list[tuple[int, bytes]] = []
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                record, _ = _record_of(line) if line.strip() else (None, "")
                if record is not None and record["key"] in keys:
                    lines.append((number, line))
        if lines:
            self._remove_lines(lines, self.stale_path)
        return len(lines)

    def latest(self) -> Iterator[dict[str, Any]]:
        """Stream the last record of each key, in file order, holding only byte offsets in memory."""
        self.repair()
        last = self._last_offsets()
        if not last:
            return
        with open(self.path, "rb") as handle:
            for key, offset in last.items():
                record = self._record_at(handle, key, offset)
                if record is not None:
                    yield record

    def in_key_order(self, keys: Iterable[str]) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """(key, its last record or None) for each of `keys`, in that order, holding only byte offsets.

        At 200K records of full replies, keeping the records themselves to reorder them took most
        of a process's memory; the offsets take a few MB and each record is read back by a seek.
        """
        self.repair()
        offsets = self._last_offsets()
        if not offsets:
            yield from ((key, None) for key in keys)
            return
        with open(self.path, "rb") as handle:
            for key in keys:
                offset = offsets.get(key)
                yield key, (None if offset is None else self._record_at(handle, key, offset))

    def _last_offsets(self) -> dict[str, int]:
        """Each key's last line's byte offset, ordered by those lines' places in the file.

        Keys are read from the start of each line (`_key_of`), without parsing the rest: the end of
        a run reads its checkpoints several times, and parsing each line in full to learn its key
        had been half of that work. A line whose start is not a plain key is parsed in full.
        """
        last: dict[str, int] = {}
        if not self.path.exists():
            return last
        with open(self.path, "rb") as handle:
            offset = 0
            for line in handle:
                key = _key_of(line)
                if key is None and line.strip():
                    record, _ = _record_of(line)
                    key = record["key"] if record is not None else None
                if key is not None:
                    last.pop(key, None)  # re-inserted: the order is that of each key's last line
                    last[key] = offset
                offset += len(line)
        return last

    def _record_at(self, handle: Any, key: str, offset: int) -> dict[str, Any] | None:
        """The record on the line at `offset`, parsed and checked; a damaged line gives the key's last sound record."""
        handle.seek(offset)
        line = handle.readline()
        record, problem = _record_of(line)
        if record is not None and record["key"] == key:
            return record
        logger.warning("%s, byte %d: %s; the last sound record of its item is used, or the item will be redone",
                       self.path, offset, problem or "a record of another key")
        found = None
        for _, earlier in self._scan(None, warn=False):  # rare: only a line damaged since the run started
            if earlier["key"] == key:
                found = earlier
        return found

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, atomically with respect to crashes of this process."""
        line = json_bytes(record) + b"\n"
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, line)

    def _set_aside(self, lines: list[bytes], sidecar_path: Path | None = None) -> None:
        with open(sidecar_path or self.damaged_path, "ab") as sidecar:
            sidecar.write(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))

    def _remove_lines(self, lines: list[tuple[int, bytes]], sidecar: Path) -> None:
        """Copy (line number, line) pairs to `sidecar`, then rewrite the file without them (atomically, by rename).

        Only safe with no writer appending, which is why readers never do it: `statuses()` and
        `set_aside` run before a run's first append, and the run folder's lock keeps other processes out.
        """
        if self._fd is not None:
            return
        self._set_aside([line for _, line in lines], sidecar)
        skip = {number for number, _ in lines}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(self.path, "rb") as source, open(tmp, "wb") as target:
            for number, line in enumerate(source, start=1):
                if number not in skip:
                    target.write(line)
            target.flush()
            os.fsync(target.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CheckpointFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The start of a line `append` wrote: its key comes first, as a plain JSON string.
_PLAIN_KEY = re.compile(rb'\{"key":"([^"\\]+)"')


def _key_of(line: bytes) -> str | None:
    """The key at the start of a checkpoint line, or None when it is not written plainly there (parse the line)."""
    match = _PLAIN_KEY.match(line)
    if match is None:
        return None
    try:
        return match.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _record_of(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """The record on a line, or None and what is wrong with it."""
    try:
        value = parse_json(line)
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError:
        return None, "not valid JSON"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not a record"
    if not isinstance(value.get("key"), str) or not value["key"]:
        return None, 'a record without a "key" string'
    status = value.get("status")
    if status == "ok" and not isinstance(value.get("outputs"), list):
        return None, 'an "ok" record without its "outputs" list'
    if status == "failed" and not isinstance(value.get("failure"), dict):
        return None, 'a "failed" record without its "failure"'
    if status not in ("ok", "failed"):
        return None, f"a record whose status is {status!r}, not 'ok' or 'failed'"
    return value, ""


def _last_line_start(handle: Any, size: int, block: int = 1 << 16) -> int:
    """The offset where the file's last line starts (its final newline aside), read backwards in blocks."""
    end = size - 1  # a newline in the last byte ends the last line; it does not start one
    while end > 0:
        begin = max(0, end - block)
        handle.seek(begin)
        found = handle.read(end - begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return 0


def _parses(chunk: bytes) -> bool:
    try:
        json.loads(chunk)
        return True
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
