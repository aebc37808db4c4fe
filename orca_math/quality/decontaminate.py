"""Decontamination of generated problems against benchmark test sets by word n-gram overlap.

A row is contaminated with a benchmark when it shares at least ``min_overlap`` normalised 13-word
n-grams with that benchmark's questions (13 as in lm-evaluation-harness and the GPT-3 paper).
Short-text policy: a text with fewer than ``n`` words has no n-gram, so it is compared whole: it is
contaminated when its normalised text equals a whole reference question (whatever ``min_overlap``).
A reference question shorter than ``n`` words is likewise matched only by a whole, equal text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from orca_math.errors import InputError, MissingFileError
from orca_math.files import write_jsonl
from orca_math.options import options_dataclass, options_from_mapping
from orca_math.quality.text import normalized_words, word_ngrams
from orca_math.records import Drop

DEFAULT_SETS: tuple[str, ...] = ("gsm8k", "svamp", "asdiv", "addsub", "multiarith", "singleeq", "singleop")


@options_dataclass
class DecontaminationOptions:
    """Options of the decontamination step: closed and frozen; a bad value or unknown key is a `ConfigError`.

    Attributes:
        n: Words per n-gram.
        action: ``"drop"`` removes contaminated rows; ``"flag"`` keeps them with the columns
            ``contaminated`` and ``contaminated_with``.
        min_overlap: Shared n-grams with one benchmark that make a row contaminated with it.
        field: The row field holding the problem text.
    """

    n: Annotated[int, Field(ge=1)] = 13
    action: Literal["flag", "drop"] = "drop"
    min_overlap: Annotated[int, Field(ge=1)] = 1
    field: Annotated[str, Field(min_length=1)] = "question"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DecontaminationOptions:
        """Build options from a config mapping, rejecting unknown keys by name."""
        return options_from_mapping(cls, values, "decontamination")


@dataclass(frozen=True)
class ContaminationResult:
    """What `Decontaminator.check` found for one text.

    Attributes:
        contaminated: Whether any benchmark reached the overlap threshold.
        benchmarks: Names of those benchmarks, in reference order.
        matched_ngram: One shared n-gram (normalised words), or the whole text for a short-text match.
        count: Distinct shared n-grams with any reference set (1 for a short-text match).
        examples: For each name in ``benchmarks``, the first n-gram shared with it.
    """

    contaminated: bool = False
    benchmarks: tuple[str, ...] = ()
    matched_ngram: str | None = None
    count: int = 0
    examples: dict[str, str] = field(default_factory=dict)


@dataclass
class DecontaminationReport:
    """Counts of a decontamination pass, for logs and dataset cards.

    Attributes:
        references: Each reference set's name and number of texts.
        n: n-gram size used.
        min_overlap: Overlap threshold used.
        action: ``"flag"`` or ``"drop"``.
        checked: Rows checked.
        contaminated: Rows contaminated with at least one reference set.
        per_benchmark: Contaminated rows per reference set (a row can count for several).
    """

    references: dict[str, int]
    n: int
    min_overlap: int
    action: str
    checked: int = 0
    contaminated: int = 0
    per_benchmark: dict[str, int] = field(default_factory=dict)

    def add(self, result: ContaminationResult) -> None:
        """Count one checked row."""
        self.checked += 1
        if result.contaminated:
            self.contaminated += 1
            for name in result.benchmarks:
                self.per_benchmark[name] = self.per_benchmark.get(name, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict, every reference set listed (0 when clean)."""
        return {
            "method": f"{self.n}-gram overlap of normalised words",
            "n": self.n,
            "min_overlap": self.min_overlap,
            "action": self.action,
            "references": dict(self.references),
            "checked": self.checked,
            "contaminated": self.contaminated,
            "per_benchmark": {name: self.per_benchmark.get(name, 0) for name in self.references},
        }


class Decontaminator:
    """An n-gram index of reference texts, and the check of a text against it.

    The index maps the hash of each normalised n-gram to a bit mask of the reference sets holding it,
    so a check costs one dict lookup per n-gram of the text.

    Args:
        references: Reference set name -> its texts (any iterable of strings).
        options: Decontamination options; defaults to `DecontaminationOptions()`.
    """

    def __init__(self, references: Mapping[str, Iterable[str]], options: DecontaminationOptions | None = None):
        if options is None:
            options = DecontaminationOptions()
        if not isinstance(options, DecontaminationOptions):
            raise TypeError(f"options must be a DecontaminationOptions, got {type(options).__name__}")
        if not isinstance(references, Mapping) or not references:
            raise InputError("references must be a non-empty mapping of set name -> texts")
        self.options = options
        self.names: tuple[str, ...] = tuple(references)
        self.sizes: dict[str, int] = {}
        self._ngrams: dict[int, int] = {}
        self._whole_texts: dict[int, int] = {}
        for bit, (name, texts) in enumerate(references.items()):
            self.sizes[name] = self._index(name, 1 << bit, texts)

    def _index(self, name: str, mask: int, texts: Iterable[str]) -> int:
        if isinstance(texts, str) or not isinstance(texts, Iterable):
            raise TypeError(f"reference set {name!r} must be an iterable of texts, got {type(texts).__name__}")
        n, ngrams, whole_texts = self.options.n, self._ngrams, self._whole_texts
        count = 0
        for text in texts:
            count += 1
            if not isinstance(text, str):
                raise TypeError(f"reference set {name!r} holds a {type(text).__name__}, expected str texts")
            words = normalized_words(text)
            key = hash(tuple(words))
            whole_texts[key] = whole_texts.get(key, 0) | mask
            for ngram in word_ngrams(words, n):
                key = hash(ngram)
                ngrams[key] = ngrams.get(key, 0) | mask
        if count == 0:
            raise InputError(f"reference set {name!r} has no texts")
        return count

    @classmethod
    def from_benchmarks(
        cls,
        names: Iterable[str] = DEFAULT_SETS,
        *,
        path: str | os.PathLike[str] | None = None,
        extra: Mapping[str, Iterable[str]] | None = None,
        options: DecontaminationOptions | None = None,
    ) -> Decontaminator:
        """Index the questions of benchmark test sets, plus any extra reference sets.

        Args:
            names: Benchmarks to load with `orca_math.data.benchmarks.load_benchmark` (test splits).
            path: A local folder laid out like ``shared/data/benchmarks``; else the loader's default
                (the ``ORCA_MATH_BENCHMARKS_DIR`` environment variable or the Hugging Face Hub).
            extra: More reference sets, name -> texts; a name may not repeat a benchmark's.
            options: Decontamination options.
        """
        names = [names] if isinstance(names, str) else list(names)
        references: dict[str, Iterable[str]] = {name: load_reference_questions(name, path) for name in names}
        for name, texts in (extra or {}).items():
            if name in references:
                raise InputError(f"extra reference set {name!r} has the same name as a benchmark")
            references[name] = texts
        return cls(references, options)

    def check(self, text: str) -> ContaminationResult:
        """Check one text against every reference set."""
        words = normalized_words(text)
        n = self.options.n
        if len(words) < n:
            mask = self._whole_texts.get(hash(tuple(words)), 0) if words else 0
            if not mask:
                return ContaminationResult()
            whole = " ".join(words)
            hit = tuple(name for bit, name in enumerate(self.names) if mask >> bit & 1)
            return ContaminationResult(True, hit, whole, 1, {name: whole for name in hit})
        counts = [0] * len(self.names)
        examples: dict[int, tuple[str, ...]] = {}
        shared = 0
        # dict.fromkeys: each distinct n-gram once, in text order, so the example is deterministic.
        for ngram in dict.fromkeys(word_ngrams(words, n)):
            mask = self._ngrams.get(hash(ngram))
            if not mask:
                continue
            shared += 1
            for bit in range(len(self.names)):
                if mask >> bit & 1:
                    counts[bit] += 1
                    examples.setdefault(bit, ngram)
        hit_bits = [bit for bit, count in enumerate(counts) if count >= self.options.min_overlap]
        if not hit_bits:
            return ContaminationResult(count=shared)
        named = {self.names[bit]: " ".join(examples[bit]) for bit in hit_bits}
        return ContaminationResult(True, tuple(named), named[self.names[hit_bits[0]]], shared, named)


def load_reference_questions(name: str, path: str | os.PathLike[str] | None = None) -> list[str]:
    """The questions of a benchmark's test set, through `orca_math.data.benchmarks.load_benchmark`.

    Args:
        name: A benchmark name known to the loader (gsm8k, svamp, asdiv, addsub, multiarith, singleeq,
            singleop).
        path: A local benchmarks folder; None lets the loader use ``ORCA_MATH_BENCHMARKS_DIR`` or the Hub.
    """
    from orca_math.data.benchmarks import load_benchmark

    # Every test question counts, including those whose gold answer is not a single number.
    return list(load_benchmark(name, split="test", path=path, include_unparsed=True)["question"])


def _check_rows(
    rows: Iterable[Mapping[str, Any]], decontaminator: Decontaminator, id_field: str | None
) -> Iterator[tuple[str, Mapping[str, Any], ContaminationResult]]:
    field_name = decontaminator.options.field
    for position, row in enumerate(rows):
        if field_name not in row:
            raise InputError(f"row {position} has no {field_name!r} field (fields: {sorted(row)})")
        if id_field is None:
            row_id = str(position)
        elif id_field in row:
            row_id = str(row[id_field])
        else:
            raise InputError(f"row {position} has no {id_field!r} id field; pass id_field=None to use positions")
        yield row_id, row, decontaminator.check(row[field_name])


def _drop_for(row_id: str, row: Mapping[str, Any], result: ContaminationResult) -> Drop:
    detail = "; ".join(f"{name}: '{ngram}'" for name, ngram in result.examples.items())
    return Drop(id=row_id, stage="decontaminate", reason="contaminated", detail=detail, row=dict(row))


def decontaminate_rows(
    rows: Iterable[Mapping[str, Any]], decontaminator: Decontaminator, *, id_field: str | None = "id"
) -> tuple[list[dict[str, Any]], list[Drop], DecontaminationReport]:
    """Check rows against the reference sets, then drop or flag the contaminated ones.

    Args:
        rows: Rows (dicts) holding ``decontaminator.options.field`` and ``id_field``.
        decontaminator: The index to check against; its options say ``"drop"`` or ``"flag"``.
        id_field: The field holding each row's id, or None to use the row's position.

    Returns:
        ``(kept, drops, report)``. In ``"drop"`` mode contaminated rows become `Drop` records
        (``stage="decontaminate"``, ``reason="contaminated"``, ``detail="gsm8k: '<n-gram>'"``). In
        ``"flag"`` mode every row is kept, as a copy with ``contaminated`` and ``contaminated_with``.
    """
    options = decontaminator.options
    report = DecontaminationReport(dict(decontaminator.sizes), options.n, options.min_overlap, options.action)
    kept: list[dict[str, Any]] = []
    drops: list[Drop] = []
    for row_id, row, result in _check_rows(rows, decontaminator, id_field):
        report.add(result)
        if options.action == "flag":
            kept.append({**row, "contaminated": result.contaminated, "contaminated_with": list(result.benchmarks)})
        elif result.contaminated:
            drops.append(_drop_for(row_id, row, result))
        else:
            kept.append(dict(row))
    return kept, drops, report


def decontaminate_dataset(
    dataset: Any,
    *,
    benchmarks: Iterable[str] = DEFAULT_SETS,
    path: str | os.PathLike[str] | None = None,
    extra: Mapping[str, Iterable[str]] | None = None,
    options: DecontaminationOptions | None = None,
    out: str | os.PathLike[str] | None = None,
    drops_out: str | os.PathLike[str] | None = None,
) -> DecontaminationReport:
    """Decontaminate a whole dataset against benchmark test sets (the ``orca-math decontaminate`` command).

    Args:
        dataset: A `datasets.Dataset` or `DatasetDict`, or a path: a folder written by ``save_to_disk``
            or a ``.parquet``, ``.jsonl``, ``.json`` or ``.csv`` file.
        benchmarks: Benchmark names, as in `Decontaminator.from_benchmarks`.
        path: Local benchmark folder (see `Decontaminator.from_benchmarks`).
        extra: More reference sets, name -> texts.
        options: Decontamination options (``action`` says drop or flag).
        out: Where to write the decontaminated (or flagged) dataset: a ``.parquet`` or ``.jsonl`` file,
            or else a folder for ``save_to_disk``. Nothing is written when None.
        drops_out: A JSONL file for the `Drop` records of removed rows (``"drop"`` mode).

    Returns:
        The report; for a `DatasetDict` its counts cover every split.
    """
    import datasets

    data = _open_dataset(dataset)
    decontaminator = Decontaminator.from_benchmarks(benchmarks, path=path, extra=extra, options=options)
    splits = dict(data) if isinstance(data, datasets.DatasetDict) else {None: data}
    options = decontaminator.options
    report = DecontaminationReport(dict(decontaminator.sizes), options.n, options.min_overlap, options.action)
    cleaned: dict[str | None, datasets.Dataset] = {}
    all_drops: list[Drop] = []
    for split, table in splits.items():
        if options.field not in table.column_names:
            raise InputError(f"dataset has no {options.field!r} column (columns: {table.column_names})")
        id_field = "id" if "id" in table.column_names else None
        kept_positions: list[int] = []
        flags: list[bool] = []
        flagged_with: list[list[str]] = []
        for position, (row_id, row, result) in enumerate(_check_rows(table, decontaminator, id_field)):
            report.add(result)
            flags.append(result.contaminated)
            flagged_with.append(list(result.benchmarks))
            if result.contaminated and options.action == "drop":
                drop = _drop_for(row_id if id_field else f"{split or 'row'}:{position}", row, result)
                all_drops.append(drop)
            else:
                kept_positions.append(position)
        if options.action == "flag":
            cleaned[split] = table.add_column("contaminated", flags).add_column("contaminated_with", flagged_with)
        else:
            cleaned[split] = table.select(kept_positions)
    if out is not None:
        _write_dataset(datasets.DatasetDict(cleaned) if None not in cleaned else cleaned[None], Path(out))
    if drops_out is not None:
        write_jsonl((drop.to_row() for drop in all_drops), drops_out)
    return report


_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def _open_dataset(dataset: Any) -> Any:
    import datasets

    if isinstance(dataset, (datasets.Dataset, datasets.DatasetDict)):
        return dataset
    if not isinstance(dataset, (str, os.PathLike)):
        raise TypeError(f"expected a datasets.Dataset, DatasetDict or a path, got {type(dataset).__name__}")
    location = Path(dataset)
    if location.is_dir():
        return datasets.load_from_disk(str(location))
    if location.is_file() and location.suffix in _FILE_BUILDERS:
        return datasets.load_dataset(_FILE_BUILDERS[location.suffix], data_files=str(location), split="train")
    if not location.exists():
        raise MissingFileError(f"no dataset at {location}")
    raise InputError(f"cannot read {location}: expected a save_to_disk folder or a {sorted(_FILE_BUILDERS)} file")


def _write_dataset(data: Any, out: Path) -> None:
    import datasets

    if isinstance(data, datasets.Dataset) and out.suffix == ".parquet":
        data.to_parquet(str(out))
    elif isinstance(data, datasets.Dataset) and out.suffix in (".jsonl", ".json"):
        data.to_json(str(out), lines=True, force_ascii=False)
    else:
        data.save_to_disk(str(out))
