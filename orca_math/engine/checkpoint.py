"""Append-only checkpoint files: one JSON line per finished item, safe against crashes.

Each line is `{"key": ..., "status": "ok" | "failed", ...}`. A line is written with a single
`os.write` on a file opened with O_APPEND, so a crash (even SIGKILL) leaves at most one cut-off
last line; `CheckpointFile.load` detects it, truncates the file back to the last whole line, and
carries on. The last line for a key wins, so a failed item retried on resume simply gets a newer line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        """Cut a partial last line left by a crash. Returns how many bytes were discarded."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as handle:
            data = handle.read()
            good = len(data)
            if data and not data.endswith(b"\n"):
                good = data.rfind(b"\n") + 1
            else:
                # The last line may end in a newline yet be cut mid-way by a torn write on some systems.
                last_start = data.rfind(b"\n", 0, max(len(data) - 1, 0)) + 1
                if data[last_start:].strip() and not _parses(data[last_start:]):
                    good = last_start
            if good < len(data):
                handle.truncate(good)
                logger.warning("discarded a cut-off last line (%d bytes) in %s", len(data) - good, self.path)
            return len(data) - good

    def records(self) -> Iterator[dict[str, Any]]:
        """Every whole line, in order. Lines that don't parse are skipped with a warning."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("%s, line %d: not valid JSON, ignored", self.path, number)

    def statuses(self) -> dict[str, str]:
        """The status of each key's last record (small: no payloads are kept in memory)."""
        self.repair()
        return {record["key"]: record["status"] for record in self.records()}

    def latest(self) -> Iterator[dict[str, Any]]:
        """Stream the last record of each key, in file order, holding only line numbers in memory."""
        self.repair()
        last_line: dict[str, int] = {}
        for number, record in enumerate(self.records()):
            last_line[record["key"]] = number
        for number, record in enumerate(self.records()):
            if last_line.get(record["key"]) == number:
                yield record

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, atomically with respect to crashes of this process."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, line)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CheckpointFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parses(chunk: bytes) -> bool:
    try:
        json.loads(chunk)
        return True
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
