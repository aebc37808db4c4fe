"""Write a finished run's outputs: the dataset, the drops, the failures and the summary.

Everything is rebuilt from the checkpoints, so writing is idempotent: a resumed run rewrites the
same files with the complete results.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from orca_math.card import write_card
from orca_math.engine.folder import DROPS_FILE, FAILURES_FILE, SUMMARY_FILE, RunFolder
from orca_math.engine.summary import Funnel
from orca_math.files import count_lines, write_json, write_jsonl
from orca_math.pipeline.columns import ExtraColumn, describe, features
from orca_math.records import DatasetRow

#: Row fields with another name, or a fallback, in the dataset.
_FALLBACKS = {"answer": ""}


def dataset_row(row: dict[str, Any], columns: Sequence[ExtraColumn] = ()) -> dict[str, Any]:
    """Project a pipeline row onto the dataset's columns (orca-math-200k's `question`, `answer` first).

    The columns and their types are `DatasetRow`'s fields (validated once, by it); `columns` are
    the extra columns stages declared (`orca_math.pipeline.columns`), which follow them.
    """
    values = {name: row[name] for name in DatasetRow.model_fields if row.get(name) is not None}
    for name, fallback in _FALLBACKS.items():
        values.setdefault(name, fallback)
    data = DatasetRow(**values).to_row()
    for column in columns:
        data[column.name] = column.value(row)
    return data


def _final_rows(run: RunFolder, last_stage: str, columns: Sequence[ExtraColumn] = ()) -> Iterator[dict[str, Any]]:
    columns = tuple(columns)
    for record in run.checkpoint(last_stage).latest():
        for row in record.get("outputs") or ():  # a failed item's rows too (ItemFailedError.outputs)
            yield dataset_row(row, columns)


def write_dataset_streaming(rows, out: Path, formats: Sequence[str], columns: Sequence[ExtraColumn] = ()) -> dict[str, Path]:
    """Write rows to JSONL on disk first, then build the Arrow dataset from it: memory stays flat."""
    import shutil

    import datasets

    datasets.disable_progress_bars()  # the stage bars already showed progress
    jsonl = out / "data.jsonl"
    write_jsonl(rows, jsonl)
    count = count_lines(jsonl)
    cache = out / ".arrow-cache"
    dataset_features = features(columns)
    if count:
        dataset = datasets.Dataset.from_json(str(jsonl), features=dataset_features, cache_dir=str(cache), split="train")
    else:  # every row was dropped or failed: still a dataset with its columns
        from datasets.table import InMemoryTable

        # One explicit (empty) shard: datasets 5 cannot load a 0-row dataset saved with no shards.
        dataset = datasets.Dataset(InMemoryTable(dataset_features.arrow_schema.empty_table()))
    target = out / "dataset"
    tmp_target = out / "dataset.tmp"
    shutil.rmtree(tmp_target, ignore_errors=True)
    dataset.save_to_disk(str(tmp_target), num_shards=1 if not count else None)
    shutil.rmtree(target, ignore_errors=True)
    tmp_target.replace(target)
    written = {"hf": target}
    if "parquet" in formats:
        dataset.to_parquet(str(out / "data.parquet"))
        written["parquet"] = out / "data.parquet"
    del dataset
    shutil.rmtree(cache, ignore_errors=True)
    if "jsonl" in formats:
        written["jsonl"] = jsonl
    else:
        jsonl.unlink()
    return written


def write_outputs(
    out: Path, run: RunFolder, stage_names: Sequence[str], funnel: Funnel, *, formats: Sequence[str] = ("hf",),
    extra: dict[str, Any] | None = None, columns: Sequence[ExtraColumn] = (),
) -> dict[str, Path]:
    """Write `dataset/` (+ parquet/jsonl on request), `drops.jsonl`, `failures.jsonl`, `summary.json`."""
    out.mkdir(parents=True, exist_ok=True)
    written = write_dataset_streaming(_final_rows(run, stage_names[-1], columns), out, formats, columns)
    drops = (drop for name in stage_names for record in run.checkpoint(name).latest() if record["status"] == "ok" for drop in record.get("drops", []))
    write_jsonl(drops, out / DROPS_FILE)
    failures = (record["failure"] for name in stage_names for record in run.checkpoint(name).latest() if record["status"] == "failed")
    write_jsonl(failures, out / FAILURES_FILE)
    paths = {**written, "drops": out / DROPS_FILE, "failures": out / FAILURES_FILE, "summary": out / SUMMARY_FILE}
    summary = {"run_key": run.key, "run_dir": str(run.path), "outputs": {k: str(v) for k, v in paths.items()}, "funnel": funnel.to_dict(), **(extra or {})}
    if columns:
        summary["columns"] = describe(columns)
    write_json(out / SUMMARY_FILE, summary)
    write_card(out, summary, run.manifest)
    return paths
