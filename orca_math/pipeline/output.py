"""Write a finished run's outputs: the dataset, the drops, the failures and the summary.

Everything is rebuilt from the checkpoints, so writing is idempotent: a resumed run rewrites the
same files with the complete results.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from orca_math.dataset_card import write_card
from orca_math.engine.folder import DROPS_FILE, FAILURES_FILE, SUMMARY_FILE, RunFolder
from orca_math.engine.summary import Funnel
from orca_math.files import count_lines, write_json, write_jsonl
from orca_math.pipeline.columns import ExtraColumn, describe, features
from orca_math.pipeline.targets import BEYOND_TARGET, RowCut
from orca_math.records import DatasetRow, Drop

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
    data = DatasetRow.model_validate(values).to_row()
    for column in columns:
        data[column.name] = column.value(row)
    return data


def _final_rows(run: RunFolder, last_stage: str, columns: Sequence[ExtraColumn] = (), *, cut: RowCut | None = None,
                beyond: list[dict[str, Any]] | None = None, ordered: Iterable[dict[str, Any]] | None = None,
                ) -> Iterator[dict[str, Any]]:
    """The last stage's rows as dataset rows (`ordered` when given); rows `cut` does not admit go to `beyond` as drops."""
    columns = tuple(columns)
    count = 0
    # A failed item's rows count too (ItemFailedError.outputs).
    rows = ordered if ordered is not None else (row for record in run.checkpoint(last_stage).latest() for row in record.get("outputs") or ())
    for row in rows:
        count += 1
        if cut is not None and not cut.admit(row):
            if beyond is not None:
                beyond.append(Drop(id=row["id"], stage="target", reason=BEYOND_TARGET,
                                   detail=f"kept row {count}; {cut.why(row)}", row=row).to_row())
            continue
        yield dataset_row(row, columns)


def write_dataset_streaming(rows, out: Path, formats: Sequence[str], columns: Sequence[ExtraColumn] = (), *,
                            dataset_folder: bool = True) -> dict[str, Path]:
    """Write rows to JSONL on disk first, then build the Arrow dataset from it: memory stays flat.

    Without `dataset_folder`, and with no parquet asked for, the JSON Lines file is the whole
    output: `datasets` (with pandas and pyarrow, about half a second of CPU to import) is never loaded.
    """
    jsonl = out / "data.jsonl"
    write_jsonl(rows, jsonl)
    if not dataset_folder and "parquet" not in formats:
        return {"jsonl": jsonl}
    import shutil

    import datasets

    datasets.disable_progress_bars()  # the stage bars already showed progress
    count = count_lines(jsonl)
    cache = out / ".arrow-cache"
    dataset_features = features(columns)
    if count:
        dataset = datasets.Dataset.from_json(str(jsonl), features=dataset_features, cache_dir=str(cache), split="train")
    else:  # every row was dropped or failed: still a dataset with its columns
        from datasets.table import InMemoryTable

        # One explicit (empty) shard: datasets 5 cannot load a 0-row dataset saved with no shards.
        dataset = datasets.Dataset(InMemoryTable(dataset_features.arrow_schema.empty_table()))
    written: dict[str, Path] = {}
    if dataset_folder:
        target = out / "dataset"
        tmp_target = out / "dataset.tmp"
        shutil.rmtree(tmp_target, ignore_errors=True)
        dataset.save_to_disk(str(tmp_target), num_shards=1 if not count else None)
        shutil.rmtree(target, ignore_errors=True)
        tmp_target.replace(target)
        written["hf"] = target
    if "parquet" in formats:
        dataset.to_parquet(str(out / "data.parquet"))
        written["parquet"] = out / "data.parquet"
    del dataset
    shutil.rmtree(cache, ignore_errors=True)
    if "jsonl" in formats or not written:
        written["jsonl"] = jsonl
    else:
        jsonl.unlink()
    return written


def write_outputs(
    out: Path, run: RunFolder, stage_names: Sequence[str], funnel: Funnel, *, formats: Sequence[str] = ("hf",),
    extra: dict[str, Any] | None = None, columns: Sequence[ExtraColumn] = (), cut: RowCut | None = None,
    ordered: Iterable[dict[str, Any]] | None = None, dataset_folder: bool = True,
) -> dict[str, Path]:
    """Write `dataset/` (+ parquet/jsonl on request), `drops.jsonl`, `failures.jsonl`, `summary.json`.

    With `cut` (a row target), the dataset holds the rows of `ordered` (the last stage's rows in seed
    order) that it admits (the first N, or each band's quota); the others are drops with the reason
    ``beyond_target``. Without `dataset_folder`, the rows go only to the formats asked for, and no
    dataset card is written (it describes `dataset/`).
    """
    out.mkdir(parents=True, exist_ok=True)
    beyond: list[dict[str, Any]] = []  # about one seed's rows, or a band's surplus (see orca_math.pipeline.targets)
    written = write_dataset_streaming(_final_rows(run, stage_names[-1], columns, cut=cut, beyond=beyond, ordered=ordered),
                                      out, formats, columns, dataset_folder=dataset_folder)
    # The funnel was counted from the same checkpoints: a stage it credits with no drop (or no
    # failure) is not read again, which at 200K items saves two passes over every line per file.
    counted = {stage.name: stage for stage in funnel.stages}
    with_drops = [name for name in stage_names if name not in counted or counted[name].dropped]
    with_failures = [name for name in stage_names if name not in counted or counted[name].failed]
    drops = itertools.chain(
        (drop for name in with_drops for record in run.checkpoint(name).latest() if record["status"] == "ok" for drop in record.get("drops", [])),
        beyond)
    write_jsonl(drops, out / DROPS_FILE)
    failures = (record["failure"] for name in with_failures for record in run.checkpoint(name).latest() if record["status"] == "failed")
    write_jsonl(failures, out / FAILURES_FILE)
    paths = {**written, "drops": out / DROPS_FILE, "failures": out / FAILURES_FILE, "summary": out / SUMMARY_FILE}
    summary = {"run_key": run.key, "run_dir": str(run.path), "outputs": {k: str(v) for k, v in paths.items()}, "funnel": funnel.to_dict(), **(extra or {})}
    if columns:
        summary["columns"] = describe(columns)
    write_json(out / SUMMARY_FILE, summary)
    if dataset_folder:
        write_card(out, summary, run.manifest)
    return paths
