"""Read any orca-math folder for people: the one reader behind the HTML report and the viewer.

`open_folder(path)` recognises what a folder is and returns its reader:

* a generation output folder (or `OUT/runs/<key>`), finished or still being written:
  `GenerationReader` (funnel, problems at their furthest stage, lineage);
* an `orca-math evaluate` folder: `EvaluationReader` (scores per benchmark, graded items);
* an `orca-math learn` folder: `LoopReader` (iterations, student samples, preference pairs).

Every reader has `title`, `overview()`, `scores()`, `settings()` and a `table` of rows
(`table.page(RowQuery(...))`). Nothing here holds a folder's rows in memory: they are indexed by
byte offset (`orca_math.readers.index`) and read back a page at a time.
"""

from __future__ import annotations

from pathlib import Path

from orca_math.engine.folder import MANIFEST_FILE, RUNS_DIR, SUMMARY_FILE, OutputFolder, OutputFolderError
from orca_math.readers.folders import EvaluationReader, LoopReader
from orca_math.readers.generation import GenerationReader, choose_run
from orca_math.readers.rows import RowQuery
from orca_math.readers.summaries import benchmark_results, learner_settings

FolderReader = GenerationReader | EvaluationReader | LoopReader


def open_folder(path: str | Path) -> FolderReader:
    """The reader for an orca-math folder.

    Raises:
        OutputFolderError: the path is not a folder, or holds nothing an orca-math command writes
            (the message names the path and what was looked for).
    """
    path = Path(path)
    if not path.is_dir():
        raise OutputFolderError(f"{path} is not a folder; pass the output folder of an orca-math command.")
    if (path / "learner.json").exists():
        return LoopReader(path)
    if (path / MANIFEST_FILE).exists() and path.parent.name == RUNS_DIR:
        return GenerationReader(path.parent.parent, run_dir=path)
    summary = OutputFolder.open(path).summary if (path / SUMMARY_FILE).exists() else {}
    if "benchmarks" in summary:
        return EvaluationReader(path)
    if summary or any((path / RUNS_DIR).glob(f"*/{MANIFEST_FILE}")):
        newest = choose_run(path)
        if not summary and newest is not None and _job(newest) == "evaluate":
            return EvaluationReader(path)  # an evaluation still running: no summary.json yet
        return GenerationReader(path)
    raise OutputFolderError(f"{path} has no {SUMMARY_FILE}, learner.json or {RUNS_DIR}/<key>/{MANIFEST_FILE}; "
                            "pass the output folder of an orca-math command.")


def _job(run_dir: Path) -> str | None:
    """The job a run folder's manifest names (`generate`, `evaluate`, ...), or None when unreadable."""
    import json

    try:
        return (json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8")).get("config") or {}).get("job")
    except (OSError, ValueError, AttributeError):
        return None


def run_folders(path: str | Path) -> list[Path]:
    """Every run folder (`runs/<key>`) in an output folder, oldest first, for comparing runs side by side."""
    manifests = sorted(Path(path).glob(f"{RUNS_DIR}/*/{MANIFEST_FILE}"), key=lambda p: p.stat().st_mtime)
    return [m.parent for m in manifests]


__all__ = ["EvaluationReader", "FolderReader", "GenerationReader", "LoopReader", "OutputFolder", "OutputFolderError",
           "RowQuery", "benchmark_results", "learner_settings", "open_folder", "run_folders"]
