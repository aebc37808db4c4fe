"""Read seed problems lazily from files, `save_to_disk` folders, Hub datasets or in-memory rows.

`read_seeds(source)` yields one `Problem` per row, without loading the whole source: JSON Lines are
read line by line, CSV with the csv module, parquet in pyarrow batches, datasets row by row. Every
bad row raises `SeedError` with a one-sentence message that names the file and the line (or row).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from orca_math.data.writers import DataFileError, iter_jsonl
from orca_math.records import Problem

logger = logging.getLogger(__name__)

QUESTION_COLUMNS = ("question", "problem", "Question", "input", "query")
ANSWER_COLUMNS = ("answer", "solution", "Answer", "target", "gold", "final_answer")
ID_COLUMNS = ("id", "ID", "uid")
# Benchmarks that split a problem into a body and a question sentence: (body, question) columns.
SPLIT_QUESTION_COLUMNS = (("Body", "Question"), ("body", "question"))
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_HUB_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)?(:[\w.-]+)?$")


class SeedError(DataFileError):
    """A seed source can't be read or a row is unusable; the message names the file and line."""


def _seed_error(message: str, cli_message: str) -> SeedError:
    """A SeedError whose `cli_message` names the command line's options instead of keyword arguments."""
    error = SeedError(message)
    error.cli_message = cli_message  # type: ignore[attr-defined]
    return error


# --------------------------------------------------------------------------- numbers and answers

_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")
_FRACTION = re.compile(r"^([-+]?)\(?\s*([-+]?\d+)\s*/\s*(\d+)\s*\)?$")


def canonical_number(value: Any) -> str | None:
    """The canonical text of a single number ("72", "0.5", "-3", "1/6"), or None if it isn't one.

    Accepts ints, floats and text with an optional sign, `$`, thousands commas and a decimal part.
    A fraction `a/b` becomes a decimal when that is exact ("5/2" -> "2.5"), else stays `a/b` reduced.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return _format_decimal(Decimal(repr(value)))
    text = str(value).strip().replace("$", "").strip()
    fraction = _FRACTION.match(text)
    if fraction:
        sign, numerator, denominator = fraction.groups()
        if int(denominator) == 0:
            return None
        number = Fraction(int(numerator), int(denominator)) * (-1 if sign == "-" else 1)
        return _format_fraction(number)
    if not text or not _NUMBER.match(text) or not any(ch.isdigit() for ch in text):
        return None
    try:
        return _format_decimal(Decimal(text.replace(",", "")))
    except InvalidOperation:
        return None


def _format_fraction(number: Fraction) -> str:
    denominator = number.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:  # terminates as a decimal
        return _format_decimal(Decimal(number.numerator) / Decimal(number.denominator))
    return f"{number.numerator}/{number.denominator}"


def _format_decimal(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


_UNIT = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$", re.DOTALL)


def strip_unit(text: str) -> str:
    """Drop one trailing parenthesised unit, as in ASDiv's "9 (apples)" -> "9"."""
    match = _UNIT.match(text.strip())
    return match.group(1) if match and match.group(1) else text.strip()


_GUESSING_RULES = ("last_number", "none")
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_FINAL_LINE = re.compile(r"^\s*final answer\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)


def stated_final_answer(text: str) -> str | None:
    """The answer after the last `####` or `Final answer:` line, else the text if it is a plain number.

    A deterministic rule of this module (also the fallback when `orca_math.answers` is absent).
    """
    for pattern in (_HASHES, _FINAL_LINE):
        matches = pattern.findall(text)
        if matches:
            value = matches[-1].strip().rstrip(".")
            return canonical_number(value) or value or None
    return canonical_number(text)


def final_answer_of(answer: Any) -> str | None:
    """The final answer of a seed's answer: a number, or the text after `####` / `Final answer:`."""
    if answer is None:
        return None
    if not isinstance(answer, str):
        return canonical_number(answer)
    number = canonical_number(answer) or canonical_number(strip_unit(answer))
    if number is not None:
        return number
    try:  # the shared extractor, when present, keeps seeds and grading consistent
        from orca_math.answers import extract_final_answer
    except ImportError:
        return stated_final_answer(answer)
    found = extract_final_answer(answer)
    # A seed's answer must state its result; "the last number anywhere" is a guess, not a gold answer.
    if found.value is None or found.rule in _GUESSING_RULES:
        return None
    return canonical_number(found.value) or found.value.strip() or None


# --------------------------------------------------------------------------- raw rows


def _source_kind(source: Any) -> str:
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.IterableDataset, datasets.DatasetDict)):
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


def _pick_split(dataset: Any, split: str, name: str) -> Any:
    import datasets

    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in dataset:
            raise SeedError(f"{name} has no split {split!r}; splits: {', '.join(dataset)}.")
        return dataset[split]
    return dataset


def iter_raw_rows(source: Any, *, split: str = "train") -> tuple[str, str, Iterator[tuple[int, dict]]]:
    """Open a seed source without reading it: returns `(name, unit, rows)`.

    `name` is the file or dataset name used in messages, `unit` is "line" (text files, 1-based) or
    "row" (tables, 0-based), and `rows` yields `(position, row_dict)` lazily.
    """
    kind = _source_kind(source)
    if kind == "list":
        return "<rows>", "row", _iter_list(source)
    if kind == "dataset":
        dataset = _pick_split(source, split, "the dataset")
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
        return path.name, "line", _utf8_checked(path, _iter_json(path))
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


def _iter_json(path: Path) -> Iterator[tuple[int, dict]]:
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
    yield from iter_jsonl(path, error_type=SeedError)


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
    yield from enumerate(_pick_split(dataset, split, path.name))


def _split_hub_name(source: str) -> tuple[str, str | None]:
    name, _, config = source.partition(":")
    return name, config or None


def _iter_hub(source: str, split: str) -> Iterator[tuple[int, dict]]:
    import datasets

    name, config = _split_hub_name(source)
    try:
        dataset = datasets.load_dataset(name, config, split=split, streaming=True)
        yield from enumerate(dataset)
    except Exception as exc:  # network, auth, missing dataset: one clear line instead of a deep trace
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeedError(f"cannot load {source!r} (split {split!r}) from the Hugging Face Hub: {first_line}") from None


# --------------------------------------------------------------------------- columns and problems


class _Columns:
    """Which columns hold the question (one, or a body+question pair), the answer and the id."""

    def __init__(self, question: tuple[str, ...], answer: str | None, id_: str | None):
        self.question, self.answer, self.id = question, answer, id_

    @classmethod
    def resolve(cls, found: list[str], name: str, question: str | None, answer: str | None,
                id_: str | None) -> _Columns:
        for given in (question, answer, id_):
            if given is not None and given not in found:
                raise SeedError(f"no column {given!r} in {name}; found columns: {', '.join(found)}.")
        if question is not None:
            question_columns: tuple[str, ...] = (question,)
        else:
            pairs = [pair for pair in SPLIT_QUESTION_COLUMNS if all(col in found for col in pair)]
            singles = [(col,) for col in QUESTION_COLUMNS if col in found]
            if not pairs and not singles:
                found_text = f"no question column in {name}; found columns: {', '.join(found) or '(none)'}"
                raise _seed_error(f"{found_text}; pass question_column=...", f"{found_text}; name it with --question-column.")
            question_columns = (pairs + singles)[0]
        if answer is None:
            answer = next((col for col in ANSWER_COLUMNS if col in found and col not in question_columns), None)
        if id_ is None:
            id_ = next((col for col in ID_COLUMNS if col in found), None)
        return cls(question_columns, answer, id_)


def _question_text(row: dict, columns: tuple[str, ...], where: str) -> str:
    parts = []
    for column in columns:
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise SeedError(f"{where}: no question (column {column!r} is missing or empty).")
        if not isinstance(value, str):
            raise SeedError(f"{where}: the question in column {column!r} is a {type(value).__name__}, not text.")
        parts.append(value)
    if len(parts) == 1:
        return parts[0]
    return " ".join(part.strip() for part in parts)


def _answer_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value
    return canonical_number(value) or str(value)


def read_seeds(
    source: Any,
    *,
    question_column: str | None = None,
    answer_column: str | None = None,
    id_column: str | None = None,
    split: str = "train",
    limit: int | None = None,
    require_answers: bool = False,
) -> Iterator[Problem]:
    """Yield seed problems one at a time from a file, folder, Hub dataset or in-memory rows.

    Args:
        source: a .jsonl/.json/.csv/.parquet path, a `save_to_disk` folder, a Hub dataset name
            ("name" or "name:config"), a `datasets.Dataset`, or a list of dicts.
        question_column: the question's column; found automatically when None (see docs/data.md).
        answer_column: the answer's column; optional, found automatically when None.
        id_column: the id's column; ids must be unique. Without one, ids are derived from the row
            position and the question (`seed-000012-1a2b3c4d`), stable across runs.
        split: the split of a Hub dataset or a saved DatasetDict.
        limit: stop after this many problems.
        require_answers: raise on a row without an answer, instead of yielding it with none.

    Yields:
        `Problem(origin="seed")` with `known_answer` (the answer's final value) and `gold_solution`
        (the answer text), and `metadata={"source": name, "line" or "row": position}`.

    Raises:
        SeedError: the source is missing, unreadable or empty, or a row is malformed.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise SeedError(f"limit must be a non-negative integer or None, not {limit!r}.")
    name, unit, rows = iter_raw_rows(source, split=split)
    return _problems(name, unit, rows, question_column, answer_column, id_column, limit, require_answers)


def _problems(name: str, unit: str, rows: Iterator[tuple[int, dict]], question_column: str | None,
              answer_column: str | None, id_column: str | None, limit: int | None,
              require_answers: bool) -> Iterator[Problem]:
    first = next(rows, None)
    if first is None:
        raise SeedError(f"{name} is empty: it holds no rows.")
    columns = _Columns.resolve(list(first[1]), name, question_column, answer_column, id_column)
    seen_ids: dict[str, int] = {}
    for index, (position, row) in enumerate(itertools.chain([first], rows)):
        if limit is not None and index >= limit:
            return
        where = f"{name}, {unit} {position}"
        question = _question_text(row, columns.question, where)
        answer = _answer_text(row.get(columns.answer)) if columns.answer else None
        if require_answers and answer is None:
            raise _seed_error(f"{where}: no answer, and require_answers=True.",
                              f"{where}: no answer, and this command needs one in every row (name the column with "
                              "--answer-column; for generate, --no-expand takes seeds without answers).")
        raw_id = row.get(columns.id) if columns.id else None
        if raw_id is not None and str(raw_id).strip():
            problem_id = str(raw_id)
            if problem_id in seen_ids:
                raise SeedError(f"{where}: duplicate id {problem_id!r} (first seen at {unit} {seen_ids[problem_id]}).")
            seen_ids[problem_id] = position
        else:
            digest = hashlib.sha1(question.encode("utf-8")).hexdigest()[:8]
            problem_id = f"seed-{index:06d}-{digest}"
        yield Problem(
            id=problem_id,
            question=question,
            origin="seed",
            known_answer=final_answer_of(answer) if answer is not None else None,
            gold_solution=answer,
            metadata={"source": name, unit: position},
        )


def count_seeds(source: Any, **options: Any) -> int:
    """How many problems `read_seeds(source, **options)` yields, counted cheaply for progress bars.

    JSON Lines count non-blank lines, parquet reads its metadata and datasets their length; other
    sources are read once. Rows are not validated here: `read_seeds` does that.
    """
    unknown = set(options) - {"question_column", "answer_column", "id_column", "split", "limit", "require_answers"}
    if unknown:
        raise TypeError(f"count_seeds() got unexpected option(s): {', '.join(sorted(unknown))}.")
    limit = options.get("limit")
    total = _fast_count(source, options.get("split", "train"))
    if total is None:
        total = sum(1 for _ in read_seeds(source, **{**options, "limit": None}))
    return total if limit is None else min(total, limit)


def _fast_count(source: Any, split: str) -> int | None:
    kind = _source_kind(source)
    if kind == "list":
        return len(source)
    if kind == "dataset":
        dataset = _pick_split(source, split, "the dataset")
        return len(dataset) if hasattr(dataset, "__len__") else None
    if kind != "path":
        return None
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".jsonl":
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    if path.is_file() and path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if path.is_dir():
        import datasets

        return len(_pick_split(datasets.load_from_disk(str(path)), split, path.name))
    return None


def source_fingerprint(source: Any, *, split: str = "train") -> str:
    """A stable hash of a seed source, for run keys: same bytes (or same dataset), same fingerprint.

    Files hash their bytes; `save_to_disk` folders hash every file in them; Hub datasets hash their
    name, split and the Hub revision (name and split alone when the Hub can't be reached, with a
    warning); in-memory datasets use their `datasets` fingerprint; lists hash their JSON.
    """
    digest = hashlib.sha256()
    kind = _source_kind(source)
    if kind == "list":
        for row in source:
            digest.update(json.dumps(row, sort_keys=True, default=str).encode("utf-8") + b"\n")
    elif kind == "dataset":
        dataset = _pick_split(source, split, "the dataset")
        digest.update(f"dataset:{getattr(dataset, '_fingerprint', None) or id(dataset)}".encode())
    elif kind == "hub":
        digest.update(f"hub:{source}:{split}:{_hub_revision(source)}".encode())
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise SeedError(f"seed source {source} does not exist.")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path)).encode() + b"\0" if path.is_dir() else b"")
            with file.open("rb") as handle:
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _hub_revision(source: str) -> str:
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(_split_hub_name(source)[0]).sha or "unknown"
    except Exception as exc:  # offline: fall back to the name, and say so
        logger.warning("could not read the Hub revision of %s (%s); its fingerprint uses the name only.",
                       source, type(exc).__name__)
        return "unknown"
