"""JSON and JSON Lines files, read lazily and written atomically: the one copy every module uses.

Writers go through a ``<name>.partial`` file that is renamed over the target, so a crash leaves the
old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json

from orca_math.errors import InputError


class DataFileError(InputError):
    """A data file is missing, unreadable or malformed; the message names the file and line."""


@contextmanager
def written_atomically(path: str | Path) -> Iterator[Path]:
    """Yield the ``<name>.partial`` file to write instead of `path` (its folder created); rename it over
    `path` when the block ends, or delete it when the block raises: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def parse_json(text: str | bytes) -> Any:
    """`json.loads(text)`, twice as fast on a checkpoint's long lines (pydantic-core's parser).

    What that parser refuses (malformed JSON, a lone surrogate escape, nesting past 200 levels) is
    handed to `json.loads`, so the errors, and the few values only it accepts, are the standard library's.
    """
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


def json_bytes(value: Any, *, default: Any = None) -> bytes:
    """`value` as compact UTF-8 JSON, as ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``
    writes it (NaN and infinities too), four times as fast (pydantic-core's writer).

    A type JSON lacks: pydantic-core's form where it has one (dates in ISO 8601, sets as lists),
    else `default(value)` as in `json.dumps` (without `default`, the standard library's TypeError).
    """
    try:
        return to_json(value, inf_nan_mode="constants")
    except PydanticSerializationError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode("utf-8")


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically, creating its folder."""
    with written_atomically(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON (with a final newline) atomically."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path, *, error_type: type[Exception] = DataFileError) -> dict[str, Any]:
    """Read a JSON object from `path`.

    Raises:
        error_type: the file is missing, not valid JSON, or not an object (the message names it).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error_type(f"{path} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise error_type(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    except UnicodeDecodeError:
        raise error_type(f"{path} is not UTF-8 text.") from None
    if not isinstance(data, dict):
        raise error_type(f"{path} should hold a JSON object, not {type(data).__name__}.")
    return data


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSON Lines (UTF-8, one object a line), atomically: a crash leaves no half file.

    Returns:
        The path written.
    """
    with written_atomically(path) as partial, partial.open("wb") as handle:
        for row in rows:
            handle.write(json_bytes(row, default=str) + b"\n")
    return Path(path)


def copy_file(source: str | Path, target: str | Path) -> Path:
    """Copy `source` to `target` atomically (through ``<target>.partial``), creating its folder.

    Returns:
        The path written.
    """
    import shutil

    with written_atomically(target) as partial:
        shutil.copyfile(source, partial)  # the kernel copies (sendfile): no line passes through Python
    return Path(target)


def count_lines(path: str | Path) -> int:
    """Non-blank lines of a text file (0 when it is missing)."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def iter_jsonl(path: str | Path, *, error_type: type[Exception] = DataFileError,
               max_line_chars: int | None = None, too_long: str = "") -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, object)` for each non-blank line of a JSON Lines file, reading lazily.

    Args:
        max_line_chars: refuse a line longer than this, having read no more of it than that.
        too_long: what the refusal adds after "the line is over N characters", e.g. which flag raises it.

    Raises:
        error_type: the file can't be opened, a line is not a JSON object, or a line is too long
            (names file and line).
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8-sig")
    except FileNotFoundError:
        raise error_type(f"{path} does not exist.") from None
    except OSError as exc:
        raise error_type(f"cannot read {path} ({exc.strerror or exc}).") from None
    with handle:
        number = 0
        while True:
            try:
                line = handle.readline() if max_line_chars is None else handle.readline(max_line_chars + 1)
            except UnicodeDecodeError:
                raise error_type(f"{path.name}, line {number + 1}: not valid UTF-8 text.") from None
            if not line:
                return
            number += 1
            if max_line_chars is not None and len(line) > max_line_chars and line.rstrip("\r\n") == line:
                raise error_type(f"{path.name}, line {number}: the line is over {max_line_chars:,} characters{too_long}.")
            if not line.strip():
                continue
            try:
                obj = parse_json(line)
            except json.JSONDecodeError as exc:
                raise error_type(f"{path.name}, line {number}: not valid JSON ({exc.msg}).") from None
            if not isinstance(obj, dict):
                raise error_type(f"{path.name}, line {number}: expected a JSON object, got {type(obj).__name__}.")
            yield number, obj


def read_jsonl(path: str | Path, *, missing_ok: bool = False) -> Iterator[dict]:
    """Yield the objects of a JSON Lines file one at a time; blank lines are skipped.

    Args:
        missing_ok: yield nothing for a missing file instead of raising.

    Raises:
        DataFileError: the file is missing (unless `missing_ok`) or a line is not a JSON object.
    """
    if missing_ok and not Path(path).exists():
        return
    for _, obj in iter_jsonl(path):
        yield obj


__all__ = ["DataFileError", "copy_file", "count_lines", "iter_jsonl", "read_json", "read_jsonl", "write_json", "write_jsonl", "write_text",
           "written_atomically"]
