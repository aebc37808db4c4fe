"""Write a finished run's outputs: the dataset, the drops, the failures and the summary.

Everything is rebuilt from the checkpoints, so writing is idempotent: a resumed run rewrites the
same files with the complete results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from orca_math.card import write_card
from orca_math.engine.run import RunFolder
from orca_math.pipeline.columns import ExtraColumn, describe, features, row_validator
from orca_math.pipeline.summary import Funnel
from orca_math.records import DatasetRow


def dataset_row(row: dict[str, Any], columns: Sequence[ExtraColumn] = ()) -> dict[str, Any]:
    """Project a pipeline row onto the dataset's columns (orca-math-200k's `question`, `answer` first).

    `columns` are the extra columns stages declared (`orca_math.pipeline.columns`); they follow the
    fixed ones.
    """
    record = DatasetRow(
        question=row["question"],
        answer=row.get("answer") or "",
        id=row["id"],
        parent_id=row.get("parent_id"),
        origin=row.get("origin", "seed"),
        round=row.get("round", 0),
        known_answer=row.get("known_answer"),
        final_answer=row.get("final_answer"),
        verification=row.get("verification") or "none",
        verified=row.get("verified"),
        teacher_model=row.get("teacher_model"),
        prompt_tokens=row.get("prompt_tokens", 0),
        completion_tokens=row.get("completion_tokens", 0),
        contaminated=row.get("contaminated"),
        contaminated_with=row.get("contaminated_with"),
    )
    data = record.to_row()
    for column in columns:
        data[column.name] = column.value(row)
    row_validator(tuple(columns))(data)  # DatasetRow's JSON Schema, plus the extra columns
    return data


def _final_rows(run: RunFolder, last_stage: str, columns: Sequence[ExtraColumn] = ()) -> Iterator[dict[str, Any]]:
    columns = tuple(columns)
    for record in run.checkpoint(last_stage).latest():
        if record["status"] == "ok":
            for row in record["outputs"]:
                yield dataset_row(row, columns)


def _write_jsonl(path: Path, rows) -> int:
    count = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def write_dataset_streaming(rows, out: Path, formats: Sequence[str], columns: Sequence[ExtraColumn] = ()) -> dict[str, Path]:
    """Write rows to JSONL on disk first, then build the Arrow dataset from it: memory stays flat."""
    import shutil

    import datasets

    datasets.disable_progress_bars()  # the stage bars already showed progress
    jsonl = out / "data.jsonl"
    count = _write_jsonl(jsonl, rows)
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
    _write_jsonl(out / "drops.jsonl", drops)
    failures = (record["failure"] for name in stage_names for record in run.checkpoint(name).latest() if record["status"] == "failed")
    _write_jsonl(out / "failures.jsonl", failures)
    paths = {**written, "drops": out / "drops.jsonl", "failures": out / "failures.jsonl", "summary": out / "summary.json"}
    summary = {"run_key": run.key, "run_dir": str(run.path), "outputs": {k: str(v) for k, v in paths.items()}, "funnel": funnel.to_dict(), **(extra or {})}
    if columns:
        summary["columns"] = describe(columns)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_card(out, summary, run.manifest)
    return paths
