"""Read a finished output folder and turn it into a visual HTML report.

`OutputFolder` is the one place that knows the folder layout (`summary.json`, `dataset/`,
`drops.jsonl`, `runs/<key>/manifest.json`, `runs/<key>/stages/*.jsonl`); the dataset card and the
report both read through it. Missing pieces read as empty, so a partial folder still reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FolderKind = Literal["generation", "evaluation"]


class ReportError(ValueError):
    """A folder that is not an orca-math output folder."""


@dataclass
class OutputFolder:
    """A generation or evaluation output folder, read lazily.

    Args:
        path: the folder holding `summary.json`.
        summary: the parsed `summary.json`.
        manifest: the run's parsed `manifest.json`, or None when there is none.
    """

    path: Path
    summary: dict[str, Any]
    manifest: dict[str, Any] | None = None

    @classmethod
    def open(cls, path: str | Path) -> OutputFolder:
        """Open an output folder, or a run folder inside one (`OUT/runs/<key>`).

        Raises:
            ReportError: the folder does not exist or holds neither `summary.json` nor `manifest.json`.
        """
        path = Path(path)
        if not path.is_dir():
            raise ReportError(f"{path} is not a folder; pass the output folder of `orca-math generate` or an evaluation.")
        if not (path / "summary.json").exists() and (path / "manifest.json").exists():
            return cls._from_run_folder(path)
        if not (path / "summary.json").exists():
            raise ReportError(f"{path} has no summary.json; pass the output folder of `orca-math generate` or an evaluation.")
        summary = _read_json(path / "summary.json")
        manifest = None
        key = summary.get("run_key")
        if key and (path / "runs" / key / "manifest.json").exists():
            manifest = _read_json(path / "runs" / key / "manifest.json")
        return cls(path, summary, manifest)

    @classmethod
    def _from_run_folder(cls, run_dir: Path) -> OutputFolder:
        manifest = _read_json(run_dir / "manifest.json")
        out = run_dir.parent.parent
        if (out / "summary.json").exists():
            summary = _read_json(out / "summary.json")
            if summary.get("run_key") == manifest.get("run_key"):
                return cls(out, summary, manifest)
        # A run that never finished: the manifest may still carry a funnel.
        summary = {"run_key": manifest.get("run_key"), "run_dir": str(run_dir), "funnel": manifest.get("funnel") or {}}
        return cls(out, summary, manifest)

    @property
    def kind(self) -> FolderKind:
        """"evaluation" when the summary holds benchmark results, else "generation"."""
        if "benchmarks" in self.summary or "iterations" in self.summary:
            return "evaluation"
        return "generation"

    @property
    def run_dir(self) -> Path | None:
        key = self.summary.get("run_key")
        return self.path / "runs" / key if key else None

    @property
    def funnel(self) -> dict[str, Any]:
        return self.summary.get("funnel") or {}

    @property
    def config(self) -> dict[str, Any]:
        return (self.manifest or {}).get("config") or {}

    def stage_config(self, name: str) -> dict[str, Any] | None:
        """The manifest entry of a stage (`stage`, `class`, `params`, `agents`, `model`)."""
        return next((s for s in self.config.get("stages", []) if s.get("stage") == name), None)

    def dataset(self):
        """The final dataset as a `datasets.Dataset`, or None when `dataset/` is missing."""
        folder = self.path / "dataset"
        if not (folder / "state.json").exists() and not (folder / "dataset_dict.json").exists():
            return None
        import datasets

        return datasets.load_from_disk(str(folder))

    def drops(self) -> Iterator[dict[str, Any]]:
        """Every row of `drops.jsonl` (nothing when the file is missing)."""
        yield from _read_jsonl(self.path / "drops.jsonl")

    def failures(self) -> Iterator[dict[str, Any]]:
        """Every row of `failures.jsonl` (nothing when the file is missing)."""
        yield from _read_jsonl(self.path / "failures.jsonl")

    def stage_rows(self, stage: str) -> Iterator[dict[str, Any]]:
        """The output rows of one stage's checkpoint, last record per item (nothing when missing)."""
        if self.run_dir is None:
            return
        path = self.run_dir / "stages" / f"{stage}.jsonl"
        if not path.exists():
            return
        from orca_math.engine.checkpoint import CheckpointFile

        for record in CheckpointFile(path).latest():
            if record.get("status") == "ok":
                yield from record.get("outputs", [])

    def solved_rows(self) -> list[dict[str, Any]]:
        """Every solved problem, from the `verify` stage (which adds `verified`) or else `solve`."""
        for stage in ("verify", "solve"):
            rows = list(self.stage_rows(stage))
            if rows:
                return rows
        return []


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} should hold a JSON object, not {type(data).__name__}.")
    return data


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `report.html` with its PNG charts for an output folder.

    Args:
        run_dir: a generation or evaluation output folder (or `OUT/runs/<key>`).
        out: the folder to write into; defaults to `<run_dir>/report`.

    Returns:
        The path of `report.html`. Images sit beside it and are referenced by relative path.

    Raises:
        ReportError: `run_dir` is not an output folder.
    """
    from orca_math.report.html import render_report

    folder = OutputFolder.open(run_dir)
    target = Path(out) if out is not None else folder.path / "report"
    target.mkdir(parents=True, exist_ok=True)
    page = render_report(folder, target)
    path = target / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


__all__ = ["OutputFolder", "ReportError", "write_report"]
