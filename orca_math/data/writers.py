"""Write rows as Hugging Face datasets, parquet or JSON Lines, and read JSON Lines back lazily.

Layout of `write_dataset(rows, out, formats=...)`:

* one format: `"hf"` saves a `save_to_disk` folder at `out`; `"parquet"` writes `out` when it ends in
  `.parquet`, else `out/data.parquet`; `"jsonl"` writes `out` when it ends in `.jsonl`, else
  `out/data.jsonl`.
* several formats: `out` is a folder holding `dataset/` (save_to_disk), `data.parquet` and `data.jsonl`.

Columns keep the order in which they first appear in the rows, so `question`, `answer` written first
stay first. A key that shows up only in later rows still becomes a column (earlier rows get None),
rather than being dropped the way `Dataset.from_list` drops it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import datasets

FORMATS = ("hf", "parquet", "jsonl")


class DataFileError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file and line."""


def iter_jsonl(path: str | Path, *, error_type: type[ValueError] = DataFileError) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, object)` for each non-blank line of a JSON Lines file, reading lazily.

    Args:
        path: the file to read.
        error_type: the exception class raised for a missing file or a malformed line.

    Raises:
        error_type: the file can't be opened, or a line is not a JSON object (names file and line).
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8-sig")
    except FileNotFoundError:
        raise error_type(f"{path} does not exist.") from None
    except OSError as exc:
        raise error_type(f"cannot read {path} ({exc.strerror or exc}).") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error_type(f"{path.name}, line {number}: not valid JSON ({exc.msg}).") from None
            except UnicodeDecodeError:
                raise error_type(f"{path.name}, line {number}: not valid UTF-8 text.") from None
            if not isinstance(obj, dict):
                kind = type(obj).__name__
                raise error_type(f"{path.name}, line {number}: expected a JSON object, got {kind}.")
            yield number, obj


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the objects of a JSON Lines file one at a time; blank lines are skipped.

    Raises:
        DataFileError: the file is missing or a line is not a JSON object (names file and line).
    """
    for _, obj in iter_jsonl(path):
        yield obj


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSON Lines (UTF-8, one object a line), atomically: a crash leaves no half file.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str))
                handle.write("\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return path


def rows_to_dataset(rows: Iterable[dict[str, Any]], features: datasets.Features | None = None) -> datasets.Dataset:
    """Build a `Dataset` from dicts, with every key that appears in any row, in first-seen order."""
    # Collect columns in first-seen order over all rows, so no key is lost and order is kept.
    columns: dict[str, list[Any]] = {}
    count = 0
    for row in rows:
        if not isinstance(row, dict):
            raise TypeError(f"row {count} is a {type(row).__name__}, not a dict.")
        for key in row:
            if key not in columns:
                columns[key] = [None] * count
        for key, values in columns.items():
            values.append(row.get(key))
        count += 1
    return datasets.Dataset.from_dict(columns, features=features)


def _targets(out: Path, formats: Sequence[str]) -> dict[str, Path]:
    if len(formats) == 1:
        fmt = formats[0]
        if fmt == "hf":
            return {"hf": out}
        suffix = "." + fmt
        return {fmt: out if out.suffix == suffix else out / f"data{suffix}"}
    names = {"hf": "dataset", "parquet": "data.parquet", "jsonl": "data.jsonl"}
    return {fmt: out / names[fmt] for fmt in formats}


def write_dataset(
    rows: Iterable[dict[str, Any]] | datasets.Dataset,
    out: str | Path,
    *,
    formats: Sequence[str] = ("hf",),
    features: datasets.Features | None = None,
) -> dict[str, Path]:
    """Write rows in one or more formats (see the module docstring for where each goes).

    Args:
        rows: a `datasets.Dataset` or an iterable of dicts; column order is kept as given.
        out: the output folder, or file path for a single `parquet` / `jsonl` format.
        formats: any of `"hf"` (save_to_disk), `"parquet"`, `"jsonl"`.
        features: optional `datasets.Features` to cast the columns to.

    Returns:
        A mapping of each format to the path written.

    Raises:
        ValueError: an unknown or empty list of formats.
    """
    if isinstance(formats, str):
        formats = (formats,)
    formats = list(dict.fromkeys(formats))
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if not formats or unknown:
        raise ValueError(f"unknown output format(s) {unknown or formats}; choose from {', '.join(FORMATS)}.")
    if isinstance(rows, datasets.Dataset):
        dataset = rows.cast(features) if features is not None else rows
    else:
        dataset = rows_to_dataset(rows, features)
    targets = _targets(Path(out), formats)
    for fmt, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "hf":
            dataset.save_to_disk(str(target))
        elif fmt == "parquet":
            dataset.to_parquet(str(target))
        else:
            write_jsonl(iter(dataset), target)
    return targets
