"""Where seeds and benchmark rows come from: files, `save_to_disk` folders, Hub datasets, in-memory rows.

`iter_raw_rows(source)` opens a source without reading it and yields `(position, row)` lazily: JSON
Lines line by line, CSV with the csv module, parquet in pyarrow batches, datasets row by row. A file
that is not UTF-8 is named with its line, the byte and what it is in Windows-1252.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orca_math.files import DataFileError, iter_jsonl

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_HUB_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)?(:[\w.-]+)?$")


class SeedError(DataFileError):
    """A seed source can't be read or a row is unusable; the message names the file and line."""


def source_kind(source: Any) -> str:
    # A Dataset object exists only once datasets is imported: a file path must not pay about 1 s for the check.
    datasets = sys.modules.get("datasets")
    if datasets is not None and isinstance(source, (datasets.Dataset, datasets.IterableDataset, datasets.DatasetDict)):
        return "dataset"
    if isinstance(source, (list, tuple)):
        return "list"
    if isinstance(source, Path):
        return "path"
    if isinstance(source, str):
        path = Path(source).expanduser()
        if path.exists() or path.suffix.lower() in FILE_SUFFIXES or source.startswith((".", "/", "~")):
            return "path"
        if _HUB_NAME.match(source):
            return "hub"
        return "path"
    raise SeedError(f"unsupported seed source of type {type(source).__name__}; pass a path, name or rows.")


def pick_split(dataset: Any, split: str, name: str) -> Any:
    import datasets

    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in dataset:
            raise SeedError(f"{name} has no split {split!r}; splits: {', '.join(dataset)}.")
        return dataset[split]
    return dataset


def iter_raw_rows(source: Any, *, split: str = "train", max_line_chars: int | None = None,
                  too_long: str = "") -> tuple[str, str, Iterator[tuple[int, dict]]]:
    """Open a seed source without reading it: returns `(name, unit, rows)`.

    `name` is the file or dataset name used in messages, `unit` is "line" (text files, 1-based) or
    "row" (tables, 0-based), and `rows` yields `(position, row_dict)` lazily. A JSON Lines line
    over `max_line_chars` is refused before it is read whole (`too_long` ends that message).
    """
    kind = source_kind(source)
    if kind == "list":
        return "<rows>", "row", _iter_list(source)
    if kind == "dataset":
        dataset = pick_split(source, split, "the dataset")
        return "<dataset>", "row", enumerate(dataset)
    if kind == "hub":
        return source, "row", _iter_hub(source, split)
    path = Path(source).expanduser()
    if not path.exists():
        raise SeedError(f"seed source {source} does not exist.")
    if path.is_dir():
        return path.name, "row", _iter_saved(path, split)
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or suffix == ".json":
        return path.name, "line", _utf8_checked(path, _iter_json(path, max_line_chars, too_long))
    if suffix == ".csv":
        return path.name, "line", _utf8_checked(path, _iter_csv(path))
    if suffix == ".parquet":
        return path.name, "row", _iter_parquet(path)
    raise SeedError(f"unsupported seed file type {suffix or '(none)'!r} for {path.name}; use .jsonl, "
                    ".json, .csv, .parquet or a save_to_disk folder.")


def _utf8_checked(path: Path, rows: Iterator[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
    """`rows`, with a text file's decoding error turned into a SeedError naming the line."""
    try:
        yield from rows
    except UnicodeDecodeError:
        raise _encoding_error(path) from None


def _encoding_error(path: Path) -> SeedError:
    """Find the first line that is not UTF-8 (only on failure: the file is read again, as bytes)."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return SeedError(f"{path.name} is UTF-16 text, not UTF-8; save it as UTF-8 (for example with "
                             f"`iconv -f utf-16 -t utf-8 {path.name}`).")
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                try:
                    seen_as = f", {raw[exc.start:exc.start + 1].decode('cp1252')!r} in Windows-1252/Latin-1"
                except UnicodeDecodeError:
                    seen_as = ""
                return SeedError(f"{path.name}, line {number}: not UTF-8 text (byte 0x{byte:02x} at column {exc.start + 1}"
                                 f"{seen_as}); save the file as UTF-8, for example with "
                                 f"`iconv -f cp1252 -t utf-8 {path.name}`.")
    return SeedError(f"{path.name} is not UTF-8 text; save it as UTF-8.")


def _iter_list(rows: Any) -> Iterator[tuple[int, dict]]:
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SeedError(f"<rows>, row {index}: expected a dict, got {type(row).__name__}.")
        yield index, row


def _iter_json(path: Path, max_line_chars: int | None = None, too_long: str = "") -> Iterator[tuple[int, dict]]:
    with _open_text(path) as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):  # a JSON array file: it has to be parsed whole
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SeedError(f"{path.name}, line {exc.lineno}: not valid JSON ({exc.msg}).") from None
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise SeedError(f"{path.name}, item {index}: expected a JSON object, got {type(row).__name__}.")
            yield index + 1, row
        return
    yield from iter_jsonl(path, error_type=SeedError, max_line_chars=max_line_chars, too_long=too_long)


def _open_text(path: Path):
    try:
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path} ({exc.strerror or exc}).") from None


def _iter_csv(path: Path) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        start = 2  # the line after the header
        try:
            for row in reader:
                yield start, {key: value for key, value in row.items() if key is not None}
                start = reader.line_num + 1
        except csv.Error as exc:
            raise SeedError(f"{path.name}, line {reader.line_num}: not valid CSV ({exc}).") from None


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise SeedError(f"{path.name} is not a readable parquet file ({exc}).") from None
    index = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield index, row
            index += 1


def _iter_saved(path: Path, split: str) -> Iterator[tuple[int, dict]]:
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise SeedError(f"{path.name} is not a folder saved with save_to_disk ({exc}).") from None
    yield from enumerate(pick_split(dataset, split, path.name))


def split_hub_name(source: str) -> tuple[str, str | None]:
    name, _, config = source.partition(":")
    return name, config or None


def _iter_hub(source: str, split: str) -> Iterator[tuple[int, dict]]:
    import datasets

    name, config = split_hub_name(source)
    try:
        dataset = datasets.load_dataset(name, config, split=split, streaming=True)
        yield from enumerate(dataset)
    except Exception as exc:  # network, auth, missing dataset: one clear line instead of a deep trace
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeedError(f"cannot load {source!r} (split {split!r}) from the Hugging Face Hub: {first_line}") from None


__all__ = ["FILE_SUFFIXES", "SeedError", "iter_raw_rows", "source_kind", "pick_split", "split_hub_name"]
