"""Read seed problems lazily from files, `save_to_disk` folders, Hub datasets or in-memory rows.

`read_seeds(source)` yields one `Problem` per row, without loading the whole source: JSON Lines are
read line by line, CSV with the csv module, parquet in pyarrow batches, datasets row by row. Every
bad row raises `SeedError` with a one-sentence message that names the file and the line (or row).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orca_math.answers import canonical_number, extract_final_answer, stated_final_answer  # noqa: F401 -- re-exported
from orca_math.data.sources import (  # noqa: F401
    FILE_SUFFIXES,
    SeedError,
    iter_raw_rows,
    pick_split,
    source_kind,
    split_hub_name,
)
from orca_math.records import Problem

logger = logging.getLogger(__name__)

#: The most characters a seed's question and answer may hold together (`read_seeds(max_seed_chars=)`,
#: ``--max-seed-chars``). A word problem and its worked solution are a few thousand characters; a
#: seed far above that is a broken row (a whole file on one line), and it would be sent whole in
#: every prompt written from it.
MAX_SEED_CHARS = 50_000
#: How many times a seed's limit one JSON Lines line may hold (JSON escapes: ``\\uXXXX`` is 6 characters
#: for one), plus room for other columns; a longer line is refused before it is read whole.
_LINE_CHARS_PER_SEED_CHAR = 8
_LINE_SLACK_CHARS = 65_536

QUESTION_COLUMNS = ("question", "problem", "Question", "input", "query")
ANSWER_COLUMNS = ("answer", "solution", "Answer", "target", "gold", "final_answer")
ID_COLUMNS = ("id", "ID", "uid")
# Benchmarks that split a problem into a body and a question sentence: (body, question) columns.
SPLIT_QUESTION_COLUMNS = (("Body", "Question"), ("body", "question"))


def _seed_error(message: str, cli_message: str) -> SeedError:
    """A SeedError whose `cli_message` names the command line's options instead of keyword arguments."""
    error = SeedError(message)
    error.cli_message = cli_message  # type: ignore[attr-defined]
    return error


# --------------------------------------------------------------------------- answers

_UNIT = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$", re.DOTALL)


def strip_unit(text: str) -> str:
    """Drop one trailing parenthesised unit, as in ASDiv's "9 (apples)" -> "9"."""
    match = _UNIT.match(text.strip())
    return match.group(1) if match and match.group(1) else text.strip()


def final_answer_of(answer: Any) -> str | None:
    """The final answer of a seed's answer: a number, or the answer its solution states explicitly.

    Read with `orca_math.answers`, the one implementation of final answers, so a seed's gold and a
    graded answer are normalised the same way. A seed's answer must state its result: only an
    explicit marker (`####`, `Final answer:`, `\\boxed{}`, ...) counts, never a guess from the text.
    """
    if answer is None:
        return None
    if not isinstance(answer, str):
        return canonical_number(answer)
    number = canonical_number(answer) or canonical_number(strip_unit(answer))
    if number is not None:
        return number
    found = extract_final_answer(answer)
    if found.value is None or found.confidence != "marker":
        return None
    return canonical_number(found.value) or found.value.strip() or None


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
    max_seed_chars: int = MAX_SEED_CHARS,
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
        max_seed_chars: refuse a seed whose question and answer hold more characters than this
            (default `MAX_SEED_CHARS`, 50,000). A JSON Lines line far longer than the limit is
            refused before it is read whole.

    Yields:
        `Problem(origin="seed")` with `known_answer` (the answer's final value) and `gold_solution`
        (the answer text), and `metadata={"source": name, "line" or "row": position}`.

    Raises:
        SeedError: the source is missing, unreadable or empty, or a row is malformed or too long.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise SeedError(f"limit must be a non-negative integer or None, not {limit!r}.")
    if isinstance(max_seed_chars, bool) or not isinstance(max_seed_chars, int) or max_seed_chars < 1:
        raise SeedError(f"max_seed_chars must be a positive integer, not {max_seed_chars!r}.")
    name, unit, rows = iter_raw_rows(source, split=split,
                                     max_line_chars=_LINE_CHARS_PER_SEED_CHAR * max_seed_chars + _LINE_SLACK_CHARS,
                                     too_long=f", far more than one seed may hold ({_raise_hint(max_seed_chars)})")
    return _problems(name, unit, rows, question_column, answer_column, id_column, limit, require_answers, max_seed_chars)


def _raise_hint(max_seed_chars: int) -> str:
    return (f"the limit is {max_seed_chars:,} characters of question and answer; if the seed is meant to be this "
            "long, raise it with --max-seed-chars, or max_seed_chars= in Python")


def _problems(name: str, unit: str, rows: Iterator[tuple[int, dict]], question_column: str | None,
              answer_column: str | None, id_column: str | None, limit: int | None,
              require_answers: bool, max_seed_chars: int = MAX_SEED_CHARS) -> Iterator[Problem]:
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
        size = len(question) + len(answer or "")
        if size > max_seed_chars:
            raise SeedError(f"{where}: the seed is {size:,} characters, over the limit ({_raise_hint(max_seed_chars)}).")
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
            metadata={"source": name, unit: position, **_measured(row)},
        )


def _measured(row: dict) -> dict[str, float]:
    """A pass rate measured earlier (a generated dataset's `pass_rate` column) travels in the metadata."""
    rate = row.get("pass_rate")
    return {"pass_rate": float(rate)} if isinstance(rate, int | float) and not isinstance(rate, bool) else {}


def count_seeds(source: Any, **options: Any) -> int:
    """How many problems `read_seeds(source, **options)` yields, counted cheaply for progress bars.

    JSON Lines count non-blank lines, parquet reads its metadata and datasets their length; other
    sources are read once. Rows are not validated here: `read_seeds` does that.
    """
    unknown = set(options) - {"question_column", "answer_column", "id_column", "split", "limit", "require_answers",
                              "max_seed_chars"}
    if unknown:
        raise TypeError(f"count_seeds() got unexpected option(s): {', '.join(sorted(unknown))}.")
    limit = options.get("limit")
    total = _fast_count(source, options.get("split", "train"))
    if total is None:
        total = sum(1 for _ in read_seeds(source, **{**options, "limit": None}))
    return total if limit is None else min(total, limit)


def _fast_count(source: Any, split: str) -> int | None:
    kind = source_kind(source)
    if kind == "list":
        return len(source)
    if kind == "dataset":
        dataset = pick_split(source, split, "the dataset")
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

        return len(pick_split(datasets.load_from_disk(str(path)), split, path.name))
    return None


def source_fingerprint(source: Any, *, split: str = "train") -> str:
    """A stable hash of a seed source, for run keys: same bytes (or same dataset), same fingerprint.

    Files hash their bytes; `save_to_disk` folders hash every file in them; Hub datasets hash their
    name, split and the Hub revision (name and split alone when the Hub can't be reached, with a
    warning); in-memory datasets use their `datasets` fingerprint; lists hash their JSON.
    """
    digest = hashlib.sha256()
    kind = source_kind(source)
    if kind == "list":
        for row in source:
            digest.update(json.dumps(row, sort_keys=True, default=str).encode("utf-8") + b"\n")
    elif kind == "dataset":
        dataset = pick_split(source, split, "the dataset")
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

        return HfApi().dataset_info(split_hub_name(source)[0]).sha or "unknown"
    except Exception as exc:  # offline: fall back to the name, and say so
        logger.warning("could not read the Hub revision of %s (%s); its fingerprint uses the name only.",
                       source, type(exc).__name__)
        return "unknown"
