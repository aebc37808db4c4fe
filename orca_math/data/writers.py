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

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orca_math.errors import ConfigError
from orca_math.files import DataFileError, iter_jsonl, read_jsonl, write_jsonl  # noqa: F401 -- re-exported

if TYPE_CHECKING:  # imported where used: datasets (with pandas and pyarrow) takes about a second
    import datasets

FORMATS = ("hf", "parquet", "jsonl")


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
    if features is None:
        for key, values in columns.items():
            columns[key] = _one_type(values)
    import datasets

    return datasets.Dataset.from_dict(columns, features=features)


def _one_type(values: list[Any]) -> list[Any]:
    """A column that mixes text with numbers (a CSV/JSONL answer column: 12.5 and "4") as text.

    Arrow columns hold one type; without this the whole file fails to load with a pyarrow error.
    """
    kinds = {type(value) for value in values if value is not None}
    if str in kinds and kinds & {int, float, bool}:
        return [value if value is None or isinstance(value, str) else str(value) for value in values]
    return values


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
        raise ConfigError(f"unknown output format(s) {unknown or formats}; choose from {', '.join(FORMATS)}.")
    import datasets

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
            write_jsonl(_dataset_rows(dataset), target)
    return targets


def _dataset_rows(dataset: datasets.Dataset, batch_size: int = 1000) -> Iterable[dict[str, Any]]:
    """The rows of `dataset` as dicts, read a batch at a time.

    Iterating a Dataset row by row formats each row in Python: about 0.1 ms a row, more than the
    rest of a `solve` run spends per problem. A batch comes out as columns in one call.
    """
    for batch in dataset.iter(batch_size=batch_size):
        columns = list(batch)
        for values in zip(*(batch[column] for column in columns), strict=True):
            yield dict(zip(columns, values, strict=True))
