"""Evaluation benchmarks (GSM8K, SVAMP, ASDiv, AddSub, MultiArith, SingleOp, SingleEq) as datasets.

Every benchmark comes out with the columns `id`, `benchmark`, `question`, `gold` (the answer as a
canonical number string: "72", "0.5", "-3", "5/3"), then its own source fields under their own
names (a source field whose name is taken, such as ASDiv's `question`, becomes `source_question`).

Rows whose gold is not a single number (ASDiv ratios "2:3", clock times, names) are excluded by
default and reported: `load_benchmark_with_report` returns them with reasons, and one warning line
is logged (once per process). `include_unparsed=True` keeps them with `gold=None`, and then the line
is logged at INFO: nothing is left out, so it is a detail (decontamination loads every question
this way).

Sources: the Hugging Face Hub by default, or local files laid out as `<dir>/gsm8k/test.jsonl`,
`<dir>/svamp/test.jsonl`, `<dir>/asdiv/test.jsonl`, `<dir>/mawps/<name>.jsonl`, from `path=` or the
environment variable `ORCA_MATH_BENCHMARKS_DIR`. Before the first Hub download the Hub is checked
once, with a short timeout, so an offline machine fails at once instead of after a minute of
retries; with `HF_HUB_OFFLINE` set only the Hugging Face cache is used.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orca_math.data.seeds import SeedError, canonical_number, iter_raw_rows, stated_final_answer, strip_unit
from orca_math.data.writers import DataFileError, rows_to_dataset

if TYPE_CHECKING:  # imported where used: datasets (with pandas and pyarrow) takes about a second
    import datasets

logger = logging.getLogger(__name__)

BENCHMARKS_DIR_ENV = "ORCA_MATH_BENCHMARKS_DIR"
NORMALISED_COLUMNS = ("id", "benchmark", "question", "gold")
#: Seconds the one reachability check of the Hub may take.
HUB_CHECK_TIMEOUT = 3.0
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

# (benchmark, split, source, action, count) already logged: a run that loads a set twice says it once.
_reported: set[tuple[str, str, str, str, int]] = set()


class BenchmarkError(DataFileError):
    """An unknown benchmark or split, a missing file or column; the message says which."""


class HubUnavailableError(BenchmarkError):
    """A benchmark could not be loaded from the Hub (offline, unreachable, missing).

    `str()` tells a Python caller what to pass; `cli_message` says the same with the command line's
    options, for `orca-math` to print.
    """

    def __init__(self, name: str, repo: str, why: str) -> None:
        self.name, self.repo, self.why = name, repo, why
        where = f"cannot load {name} from the Hub ({repo}): {why}"
        super().__init__(f"{where}; pass path= or set {BENCHMARKS_DIR_ENV} to load local files.")
        self.cli_message = f"{where}; point --benchmarks-dir (or ${BENCHMARKS_DIR_ENV}) at a folder of local copies."


@dataclass(frozen=True)
class HubSource:
    """Where a benchmark split lives on the Hugging Face Hub."""

    repo: str
    config: str | None = None
    split: str = "train"
    data_files: str | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to load and normalise one benchmark.

    Attributes:
        name: the benchmark's name, as passed to `load_benchmark`.
        question_fields: source fields joined by a space to make the question.
        answer_field: the source field holding the gold answer.
        id_field: a source field with a unique id, or None to number rows.
        local_files: split -> file path relative to a benchmarks folder.
        hub: split -> `HubSource`.
        default_split: the split loaded when none is given.
    """

    name: str
    question_fields: tuple[str, ...]
    answer_field: str
    id_field: str | None
    local_files: Mapping[str, str]
    hub: Mapping[str, HubSource]
    default_split: str = "test"


def _mawps(name: str) -> BenchmarkSpec:
    # MAWPS subsets as in ToRA's evaluation data, mirrored in HuggingFaceTB/math_tasks (data/mawps/).
    hub = HubSource("HuggingFaceTB/math_tasks", data_files=f"data/mawps/{name}.jsonl")
    return BenchmarkSpec(name, ("input",), "target", None, {"test": f"mawps/{name}.jsonl"}, {"test": hub})


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "gsm8k": BenchmarkSpec(
        "gsm8k", ("question",), "answer", None,
        {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"},
        {"train": HubSource("openai/gsm8k", "main", "train"), "test": HubSource("openai/gsm8k", "main", "test")},
    ),
    "svamp": BenchmarkSpec(
        "svamp", ("Body", "Question"), "Answer", "ID",
        {"test": "svamp/test.jsonl"},
        {"train": HubSource("ChilleD/SVAMP", split="train"), "test": HubSource("ChilleD/SVAMP", split="test")},
    ),
    "asdiv": BenchmarkSpec(
        "asdiv", ("body", "question"), "answer", "idx",
        {"test": "asdiv/test.jsonl"},
        {"test": HubSource("HuggingFaceTB/math_tasks", data_files="data/asdiv/test.jsonl")},
    ),
    "addsub": _mawps("addsub"),
    "multiarith": _mawps("multiarith"),
    "singleop": _mawps("singleop"),
    "singleeq": _mawps("singleeq"),
}


@dataclass(frozen=True)
class Exclusion:
    """A benchmark row left out because its gold answer is not a single number."""

    id: str
    answer: str
    reason: str


@dataclass
class BenchmarkLoad:
    """A loaded benchmark and the rows excluded from it, with reasons."""

    dataset: datasets.Dataset
    excluded: list[Exclusion] = field(default_factory=list)

    @property
    def excluded_ids(self) -> list[str]:
        return [item.id for item in self.excluded]


# --------------------------------------------------------------------------- gold answers

_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$", re.IGNORECASE)
_ANY_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def parse_gold(value: Any, pattern: re.Pattern[str] | None = None) -> tuple[str | None, str | None]:
    """Read a gold answer as one canonical number: returns `(gold, None)` or `(None, reason)`.

    Numbers pass through `canonical_number`. Text may hold a worked solution ending in `#### N` or
    `Final answer: N`, a number with a unit in parentheses ("9 (apples)"), or an ordinal ("6th").
    With `pattern`, its first group (or whole match) of the first match is read instead.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "no gold answer"
    if not isinstance(value, str):
        number = canonical_number(value)
        return (number, None) if number is not None else (None, f"not a number: {value!r}")
    text = value.strip()
    if pattern is not None:
        match = pattern.search(text)
        if match is None:
            return None, f"answer_pattern did not match {_short(text)!r}"
        text = (match.group(1) if pattern.groups else match.group(0)).strip()
    elif "####" in text or "final answer" in text.lower():
        text = stated_final_answer(text) or text
    candidate = text if canonical_number(text) is not None else strip_unit(text)  # "-(1/3)" is not a unit
    ordinal = _ORDINAL.match(candidate)
    number = canonical_number(candidate) or (ordinal.group(1) if ordinal else None)
    if number is not None:
        return number, None
    return None, f"{_why_not_a_number(candidate)}: {_short(text)!r}"


def _why_not_a_number(text: str) -> str:
    numbers = _ANY_NUMBER.findall(text)
    if re.search(r"\d\s*:\s*\d", text):
        return "a ratio or clock time, not a single number"
    if not numbers:
        return "a text answer, not a number"
    if len(numbers) > 1:
        return "several values, not a single number"
    return "not a single number"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- loading


def _normalise(rows: Iterator[tuple[int, dict]], where_name: str, unit: str, *, name: str, split: str,
               question_fields: tuple[str, ...], answer_field: str, id_field: str | None,
               pattern: re.Pattern[str] | None, include_unparsed: bool, limit: int | None) -> BenchmarkLoad:
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise BenchmarkError(f"limit must be a non-negative integer or None, not {limit!r}.")
    kept: list[dict[str, Any]] = []
    excluded: list[Exclusion] = []
    seen: set[str] = set()
    read_any = False
    for index, (position, row) in enumerate(rows):
        if limit is not None and len(kept) >= limit:
            break
        read_any = True
        where = f"{where_name}, {unit} {position}"
        if index == 0:
            missing = [col for col in (*question_fields, answer_field, id_field) if col and col not in row]
            if missing:
                raise BenchmarkError(f"no column {missing[0]!r} in {where_name}; found columns: {', '.join(row)}.")
        parts = [row.get(col) for col in question_fields]
        if any(not isinstance(part, str) or not part.strip() for part in parts):
            raise BenchmarkError(f"{where}: no question text in {', '.join(question_fields)}.")
        question = parts[0] if len(parts) == 1 else " ".join(part.strip() for part in parts)
        row_id = f"{name}-{row[id_field]}" if id_field and row.get(id_field) is not None else f"{name}-{split}-{index:05d}"
        if row_id in seen:
            raise BenchmarkError(f"{where}: duplicate id {row_id!r}.")
        seen.add(row_id)
        gold, reason = parse_gold(row.get(answer_field), pattern)
        if gold is None:
            excluded.append(Exclusion(row_id, str(row.get(answer_field)), reason or "no gold answer"))
            if not include_unparsed:
                continue
        record: dict[str, Any] = {"id": row_id, "benchmark": name, "question": question, "gold": gold}
        for key, value in row.items():
            if key == "question" and question_fields == ("question",):
                continue  # the question is this field, verbatim
            record[f"source_{key}" if key in NORMALISED_COLUMNS else key] = value
        kept.append(record)
    if not read_any and limit != 0:
        raise BenchmarkError(f"{where_name} is empty: it holds no rows.")
    if excluded:
        shown = ", ".join(item.id for item in excluded[:5]) + (", ..." if len(excluded) > 5 else "")
        action = "kept with gold=None" if include_unparsed else "excluded"
        once = (name, split, where_name, action, len(excluded))
        if once not in _reported:
            _reported.add(once)
            level = logging.INFO if include_unparsed else logging.WARNING  # only an exclusion changes a result
            logger.log(level, "%s: %s %d row(s) whose gold is not a single number (%s).", name, action, len(excluded), shown)
    if not kept:  # every row excluded, or limit=0: still the documented columns
        import datasets

        features = datasets.Features({col: datasets.Value("string") for col in NORMALISED_COLUMNS})
        return BenchmarkLoad(datasets.Dataset.from_dict({col: [] for col in NORMALISED_COLUMNS}, features), excluded)
    return BenchmarkLoad(rows_to_dataset(kept), excluded)


def _benchmarks_dir(path: str | Path | None) -> Path | None:
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(BENCHMARKS_DIR_ENV)
    return Path(env).expanduser() if env else None


def _open_benchmark(spec: BenchmarkSpec, split: str, folder: Path | None) -> tuple[str, str, Iterator]:
    if folder is not None:
        if split not in spec.local_files:
            raise BenchmarkError(f"{spec.name} has no local split {split!r}; local splits: {', '.join(spec.local_files)}.")
        file = folder / spec.local_files[split]
        if not file.is_file():
            raise BenchmarkError(f"{file} does not exist; a benchmarks folder holds {spec.local_files[split]}.")
        return iter_raw_rows(file)
    if split not in spec.hub:
        raise BenchmarkError(f"{spec.name} has no split {split!r} on the Hub; splits: {', '.join(spec.hub)}.")
    source = spec.hub[split]
    offline = _offline_mode()
    if not offline:
        unreachable = _hub_unreachable(_hub_endpoint())
        if unreachable is not None:
            raise HubUnavailableError(spec.name, source.repo, f"the Hub cannot be reached ({unreachable})")
    import datasets

    try:
        dataset = datasets.load_dataset(source.repo, source.config, split=source.split, data_files=source.data_files)
    except Exception as exc:  # offline, renamed, gated: one line, and how to load from files instead
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if offline:
            first_line += f" ({offline} is set, so only a copy in the Hugging Face cache could be used)"
        raise HubUnavailableError(spec.name, source.repo, first_line) from None
    return source.repo, "row", enumerate(dataset)


def _offline_mode() -> str | None:
    """The variable that puts the Hugging Face libraries offline, when one is set."""
    return next((name for name in _OFFLINE_VARIABLES
                 if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")), None)


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


@functools.lru_cache(maxsize=8)
def _hub_unreachable(endpoint: str) -> str | None:
    """Why `endpoint` can't be reached (asked once per process, through the Hub's own HTTP session
    so proxies apply), or None. The datasets library would otherwise retry for about 25 s per file."""
    from huggingface_hub import get_session

    try:
        get_session().head(endpoint, timeout=HUB_CHECK_TIMEOUT)
    except Exception as exc:  # any answer at all, even an error status, means it is reachable
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def load_benchmark_with_report(name: str, *, split: str | None = None, path: str | Path | None = None,
                               limit: int | None = None, include_unparsed: bool = False) -> BenchmarkLoad:
    """Load a benchmark and report the rows excluded from it. Arguments as in `load_benchmark`."""
    spec = BENCHMARKS.get(name.lower())
    if spec is None:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}; use load_custom for others.")
    split = split or spec.default_split
    try:
        where_name, unit, rows = _open_benchmark(spec, split, _benchmarks_dir(path))
        return _normalise(rows, where_name, unit, name=spec.name, split=split, question_fields=spec.question_fields,
                          answer_field=spec.answer_field, id_field=spec.id_field, pattern=None,
                          include_unparsed=include_unparsed, limit=limit)
    except SeedError as exc:  # a malformed local file
        raise BenchmarkError(str(exc)) from None


def load_benchmark(name: str, *, split: str | None = None, path: str | Path | None = None,
                   limit: int | None = None, include_unparsed: bool = False) -> datasets.Dataset:
    """Load a known benchmark with the columns `id`, `benchmark`, `question`, `gold` + source fields.

    Args:
        name: one of `BENCHMARKS`: gsm8k, svamp, asdiv, addsub, multiarith, singleop, singleeq.
        split: the split; each benchmark's default is "test".
        path: a folder of local copies (see the module docstring); else `ORCA_MATH_BENCHMARKS_DIR`;
            else the Hugging Face Hub.
        limit: keep at most this many rows.
        include_unparsed: keep rows whose gold is not a single number, with `gold=None`.

    Raises:
        BenchmarkError: unknown name or split, missing file, or the Hub can't be reached.
    """
    return load_benchmark_with_report(name, split=split, path=path, limit=limit,
                                      include_unparsed=include_unparsed).dataset


def load_custom_with_report(source: Any, *, question: str | list[str], answer: str, id: str | None = None,
                            split: str = "test", name: str = "custom", answer_pattern: str | None = None,
                            limit: int | None = None, include_unparsed: bool = False) -> BenchmarkLoad:
    """`load_custom`, also returning the excluded rows with reasons."""
    question_fields = (question,) if isinstance(question, str) else tuple(question)
    if not question_fields:
        raise BenchmarkError("question must name at least one column.")
    try:
        pattern = re.compile(answer_pattern) if answer_pattern is not None else None
    except re.error as exc:
        raise BenchmarkError(f"answer_pattern {answer_pattern!r} is not a valid regular expression ({exc}).") from None
    try:
        where_name, unit, rows = iter_raw_rows(source, split=split)
        return _normalise(rows, where_name, unit, name=name, split=split, question_fields=question_fields,
                          answer_field=answer, id_field=id, pattern=pattern, include_unparsed=include_unparsed,
                          limit=limit)
    except SeedError as exc:
        raise BenchmarkError(str(exc)) from None


def load_custom(source: Any, *, question: str | list[str], answer: str, id: str | None = None,
                split: str = "test", name: str = "custom", answer_pattern: str | None = None,
                limit: int | None = None, include_unparsed: bool = False) -> datasets.Dataset:
    """Load any other benchmark by naming its columns; same output columns as `load_benchmark`.

    Args:
        source: a .jsonl/.json/.csv/.parquet file, a save_to_disk folder, a Hub name, a Dataset or rows.
        question: the question column, or several joined by a space (e.g. ["Body", "Question"]).
        answer: the gold answer column (a number, or text ending in `#### N` / `Final answer: N`).
        id: a column of unique ids; rows are numbered when None.
        split: the split of a Hub dataset or saved DatasetDict.
        name: the benchmark's name, used in the `benchmark` column and ids.
        answer_pattern: a regular expression that finds the number in the answer text (its first
            group, or the whole match); rows where it doesn't match are excluded.
        limit: keep at most this many rows.
        include_unparsed: keep rows whose gold is not a single number, with `gold=None`.
    """
    return load_custom_with_report(source, question=question, answer=answer, id=id, split=split, name=name,
                                   answer_pattern=answer_pattern, limit=limit,
                                   include_unparsed=include_unparsed).dataset
