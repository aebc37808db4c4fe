"""What an evaluation runs on: the built-in benchmarks, a user's file, or a `load_custom` dataset.

`benchmark_sets` turns any mix of those into named sets of items (id, benchmark, question, gold,
and the reference solution the LLM grader reads), so a custom set appears in the same tables,
report and learning-loop evaluation as a built-in one.

    evaluate(model, ["gsm8k", "my_heldout.jsonl", load_custom("hard.csv", question="q", answer="a", name="hard")])
    evaluate(model, [benchmark_file("hard.csv", question="q", answer="a", name="hard")])

Golds are read as numbers wherever they are numbers: a file whose answer column holds -9867630.0 or
12.5 gives the golds "-9867630" and "12.5", so replies "-9867630" and "12.5" are equal to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from orca_math.data.benchmarks import BENCHMARKS, BenchmarkError, load_benchmark, load_custom

#: Benchmarks whose source rows hold a worked gold solution, shown to the LLM grader as the reference.
SOLUTION_FIELDS: dict[str, str] = {"gsm8k": "answer"}
#: File endings read as a benchmark file when a path is given where a name could be.
_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass
class BenchmarkSet:
    """One benchmark's items, ready to evaluate.

    Attributes:
        name: the benchmark's name (tables and the `benchmark` column).
        items: dicts with `id`, `benchmark`, `question`, `gold` and `reference_solution`.
    """

    name: str
    items: list[dict[str, Any]]


def parse_benchmarks(benchmarks: Sequence[str] | str) -> list[str]:
    """Benchmark names, lower-cased and deduplicated; a string is split on commas.

    Raises:
        BenchmarkError: an unknown name (the message lists the known ones), or no name at all.
    """
    if isinstance(benchmarks, str):
        benchmarks = benchmarks.split(",")
    names: list[str] = []
    for raw in benchmarks:
        if not isinstance(raw, str):
            raise BenchmarkError(f"benchmark names must be strings, not {type(raw).__name__}.")
        name = raw.strip().lower()
        if name and name not in names:
            names.append(name)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise BenchmarkError(f"unknown benchmark {', '.join(map(repr, unknown))}; known: {', '.join(BENCHMARKS)}; "
                             "pass a file path or a load_custom(...) dataset for others.")
    if not names:
        raise BenchmarkError(f"no benchmark given; known: {', '.join(BENCHMARKS)}.")
    return names


def benchmark_sets(benchmarks: Any, *, path: str | Path | None = None, limit: int | None = None) -> list[BenchmarkSet]:
    """Named sets of items from built-in names, file paths and `load_custom` datasets, in the order given.

    Args:
        benchmarks: a name, a comma-separated string of names, a path, a `datasets.Dataset` (from
            `load_custom`, or any with `id`, `benchmark`, `question`, `gold` columns), a
            `BenchmarkSet` (from `benchmark_file`), or a list of any of these.
        path: folder of local copies of the built-in benchmarks.
        limit: keep at most this many items of each set.

    Raises:
        BenchmarkError: an unknown name, a file that can't be read, two sets with one name, or nothing.
    """
    if isinstance(benchmarks, str | Path | datasets.Dataset | BenchmarkSet):
        benchmarks = [benchmarks]
    sets: list[BenchmarkSet] = []
    for entry in benchmarks:
        if isinstance(entry, BenchmarkSet):
            sets.append(entry if limit is None else BenchmarkSet(entry.name, entry.items[:limit]))
        elif isinstance(entry, datasets.Dataset):
            sets.append(_from_dataset(entry, limit))
        elif isinstance(entry, Path) or (isinstance(entry, str) and _looks_like_file(entry)):
            sets.append(benchmark_file(entry, limit=limit))
        elif isinstance(entry, str):
            for name in parse_benchmarks(entry):
                sets.append(_from_dataset(load_benchmark(name, path=path, limit=limit), None, name=name))
        else:
            raise BenchmarkError(f"a benchmark is a name, a file path, a load_custom(...) dataset or a benchmark_file(...) "
                                 f"set, not {type(entry).__name__}.")
    names = [s.name for s in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BenchmarkError(f"two benchmarks are named {', '.join(map(repr, repeated))}; give custom sets distinct names.")
    if not sets:
        raise BenchmarkError(f"no benchmark given; known: {', '.join(BENCHMARKS)}.")
    return sets


def benchmark_file(file: str | Path, *, question: str = "question", answer: str = "answer", name: str | None = None,
                   id: str | None = None, limit: int | None = None) -> BenchmarkSet:
    """A user's benchmark file (.jsonl, .json, .csv, .parquet) as a set; named after the file by default.

    Args:
        file: the file; each row holds a question and a gold answer (a number, or text ending in
            `#### N` / `Final answer: N`; rows whose gold is not one number are left out, with a warning).
        question: the question column.
        answer: the gold answer column.
        name: the set's name in tables and the `benchmark` column (default: the file's stem).
        id: a column of unique ids; rows are numbered when None.
        limit: keep at most this many rows.

    Raises:
        BenchmarkError: the file is missing, or lacks the question or answer column (the message
            lists the columns found), or a column holds values Arrow cannot keep in one column
            (lists beside numbers); text beside numbers is read as text.
    """
    import pyarrow

    file = Path(file)
    if not file.exists():
        raise BenchmarkError(f"benchmark file {file} does not exist.")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise BenchmarkError(f"a benchmark name must be a non-empty string, not {name!r}.")
    name = name.strip() if name else file.stem
    try:
        dataset = load_custom(str(file), question=question, answer=answer, id=id, name=name, limit=limit)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError) as exc:
        # The file's own columns are kept, each as one Arrow type; text beside numbers is made text
        # (orca_math.data.writers), but a list beside a number has no common type.
        raise BenchmarkError(f"benchmark file {file} has a column whose values have no common type ({exc}); write each "
                             "column's values all of one kind.") from None
    return _from_dataset(dataset, None, name=name)


def _looks_like_file(text: str) -> bool:
    return text.lower().endswith(_FILE_SUFFIXES) or ("/" in text and Path(text).exists())


def _from_dataset(dataset: datasets.Dataset, limit: int | None, *, name: str | None = None) -> BenchmarkSet:
    missing = [column for column in ("id", "question", "gold") if column not in dataset.column_names]
    if missing:
        raise BenchmarkError(f"a benchmark dataset needs the columns id, question and gold (load_custom makes them); "
                             f"missing {', '.join(missing)}; found: {', '.join(dataset.column_names)}.")
    rows = dataset if limit is None else dataset.select(range(min(limit, len(dataset))))
    if name is None:
        names = set(rows["benchmark"]) if "benchmark" in rows.column_names else {"custom"}
        name = names.pop() if len(names) == 1 else "custom"
    items = []
    for row in rows:
        solution_field = SOLUTION_FIELDS.get(name)
        solution = row.get(solution_field) if solution_field else None
        gold = row["gold"]
        items.append({
            "id": str(row["id"]), "benchmark": name, "question": row["question"], "gold": gold,
            "reference_solution": solution if isinstance(solution, str) and solution.strip() else f"Final answer: {gold}",
        })
    return BenchmarkSet(name, items)


__all__ = ["SOLUTION_FIELDS", "BenchmarkSet", "benchmark_file", "benchmark_sets", "parse_benchmarks"]
