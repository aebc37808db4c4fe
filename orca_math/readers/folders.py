"""Evaluation and learning-loop folders read for people: scores, items, samples, preference pairs.

Both are tables of plain rows (one line, one row), so they share one flat index; a learning loop
adds its iterations, each with its evaluation scores, labelled student samples and the preference
pairs built from them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from orca_math.engine.folder import MANIFEST_FILE, STAGES_DIR, SUMMARY_FILE
from orca_math.readers.generation import choose_run
from orca_math.readers.index import Entry, EntryIndex, id_hash
from orca_math.readers.rows import RowTable
from orca_math.readers.summaries import benchmark_results, flatten, learner_settings, redact, run_recipe

_ITERATION = re.compile(r"iteration-(\d+)$")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _graded(row: dict[str, Any], label_key: str) -> str:
    if row.get("error"):
        return "failed"
    value = row.get(label_key)
    return "ungraded" if value is None else ("correct" if value else "incorrect")


def _flat(stage: str, ident_key: str, label_key: str):
    def extract(row: dict[str, Any]) -> list[Entry]:
        reason = str(row.get("error") or "")[:80]
        return [Entry(0, row.get(ident_key), None, stage, _graded(row, label_key), "", str(row.get("method") or ""), reason)]

    def resolve(row: dict[str, Any], pos: int) -> dict[str, Any]:
        return {**row, "_stage": stage}

    return extract, resolve


def _shown(table_statuses: tuple[str, ...], index: EntryIndex):
    def shown(numbers: np.ndarray) -> np.ndarray:
        lookup = np.array([table_statuses.index(v) if v in table_statuses else 0 for v in index.strings.values], dtype=np.int64)
        return lookup[index.array("status")[numbers]]

    return shown


STATUSES = ("correct", "incorrect", "ungraded", "failed")


def _all(index: EntryIndex):
    return lambda query: np.arange(len(index), dtype=np.int64)


def _item_row(row: dict[str, Any]) -> dict[str, Any]:
    text = str(row.get("response") or "")
    return {"id": row.get("problem_id") or row.get("id"), "question": row.get("question") or "",
            "answer": text[:400] + ("…" if len(text) > 400 else ""), "final_answer": row.get("extracted_answer", row.get("final_answer")),
            "stage": row.get("_stage"), "verification": row.get("method"), "reason": row.get("error"),
            "gold": row.get("gold"), "sample_index": row.get("sample_index")}


def _item_entry(row: dict[str, Any], pos: int = 0) -> Entry:
    return Entry(pos, row.get("id"), None, str(row.get("benchmark") or ""), _graded(row, "correct"), "",
                 str(row.get("method") or ""), str(row.get("error") or "")[:80])


#: Where a failure sits in a checkpoint line (a graded row is at 0).
_FAILED = -1


def _checkpoint_items(stage: str):
    """A running evaluation's checkpoint: graded rows (`grade` outputs) and failures, as items.jsonl will hold them."""
    def failed_row(failure: dict[str, Any]) -> dict[str, Any]:
        item = failure.get("input") if isinstance(failure.get("input"), dict) else {}
        return {"id": failure.get("id"), **item, "correct": False, "error": failure.get("reason") or "failed",
                "raw_reply": failure.get("raw_reply")}

    def extract(record: dict[str, Any]) -> list[Entry]:
        failure = record.get("failure") if record.get("status") == "failed" else None
        if isinstance(failure, dict):
            return [_item_entry(failed_row(failure), _FAILED)]
        if stage != "grade":
            return []  # an answered item is shown once graded
        return [_item_entry(row, pos) for pos, row in enumerate(record.get("outputs") or []) if isinstance(row, dict)]

    def resolve(record: dict[str, Any], pos: int) -> dict[str, Any]:
        row = failed_row(record["failure"]) if pos == _FAILED else record["outputs"][pos]
        return {**row, "_stage": row.get("benchmark")}

    return extract, resolve


class EvaluationReader:
    """An `orca-math evaluate` folder: `summary.json` and `items.jsonl` (the benchmark is the row's stage).

    While the evaluation runs (no items.jsonl yet), the rows are its run's checkpoints: each graded
    item, and each item that failed; the scores are counted from them.
    """

    kind = "evaluation"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.summary_data = _read_json(self.path / SUMMARY_FILE) or {}
        self._build()

    def _items_file(self) -> Path:
        items = Path(self.summary_data.get("items") or self.path / "items.jsonl")
        return items if items.is_absolute() and items.exists() else self.path / "items.jsonl"

    def _build(self) -> None:
        items = self._items_file()
        self.running_run = None if items.exists() else choose_run(self.path)
        self.manifest = (_read_json(self.running_run / MANIFEST_FILE) or {}) if self.running_run else {}
        if self.running_run is not None:
            stages = self.running_run / STAGES_DIR
            files = [(stages / f"{name}.jsonl", *_checkpoint_items(name), 0) for name in ("answer", "grade")]
        else:
            files = [(items, lambda row: [_item_entry(row)], lambda row, pos: {**row, "_stage": row.get("benchmark")}, 0)]
        version = getattr(getattr(self, "index", None), "version", 0)
        self.index = EntryIndex(files)
        self.index.version = version + 1  # the page sees a change when the run's items.jsonl replaces its checkpoints
        self.table = RowTable(self.index, current=_all(self.index), shown_status=_shown(STATUSES, self.index),
                              status_names=STATUSES, text_fields=("question", "response", "error", "id"), describe=_item_row)

    @property
    def title(self) -> str:
        model = self.summary_data.get("model") or (self.manifest.get("config") or {}).get("model")
        return f"evaluation of {model or '?'} in {self.path}" + ("" if self.running_run is None else " (running)")

    def refresh(self) -> None:
        self.summary_data = _read_json(self.path / SUMMARY_FILE) or self.summary_data
        if self.running_run is not None and self._items_file().exists():
            self._build()  # the evaluation finished: items.jsonl holds every item
        self.index.refresh()

    def live_results(self) -> dict[str, dict[str, Any]]:
        """Per benchmark, counted from the rows so far (a running evaluation has no summary yet)."""
        counts = self.table.facet_counts()
        stage, method = self.index.array("stage"), self.index.array("method")
        shown = _shown(STATUSES, self.index)(np.arange(len(self.index)))
        results = {}
        for name in counts["stage"]:
            chosen = stage == self.index.strings.find(name)
            mine = shown[chosen]
            n, correct, failed = len(mine), int((mine == 0).sum()), int((mine == 3).sum())
            methods = Counter(self.index.strings.values[c] for c in method[chosen].tolist() if c)
            results[name] = {"n": n, "correct": correct, "failures": failed, "pass_at_1": correct / n if n else None,
                             "methods": dict(methods), "agreement": None}
        return results

    def overview(self) -> dict[str, Any]:
        self.refresh()
        settings = {k: v for k, v in self.summary_data.items() if k not in ("benchmarks", "overall", "iterations", "items")}
        finished = self.running_run is None
        return {"kind": self.kind, "title": self.title, "path": str(self.path), "finished": finished,
                "benchmarks": benchmark_results(self.summary_data) if finished else self.live_results(),
                "iterations": self.summary_data.get("iterations") or [], "settings": redact(settings),
                "recipe": run_recipe(self.path, self.summary_data.get("run_key")),
                "rows": self.table.facet_counts()["status"], "problems": len(self.index), "version": self.index.version}

    def scores(self) -> dict[str, Any]:
        return {f"{name}.pass@1": r["pass_at_1"] for name, r in benchmark_results(self.summary_data).items()}

    def settings(self) -> dict[str, Any]:
        return flatten(self.overview()["settings"])

    def item(self, item_id: str) -> list[dict[str, Any]]:
        """Every row of one item id (one per benchmark that has it)."""
        self.index.refresh()
        numbers = np.flatnonzero(self.index.array("ident") == id_hash(item_id))
        return [r for r in self.index.read_many(numbers.tolist()) if str(r.get("id")) == str(item_id)]


class LoopReader:
    """An `orca-math learn` folder: `learner.json`, `iteration-<n>/` steps, `summary.json`, `iterations.json`.

    The rows table holds every labelled student sample of every iteration (the iteration is the
    row's stage); `iteration(n)` and `problem(id)` give one iteration's details and one problem's
    samples across iterations.
    """

    kind = "learning"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._build()

    def _iteration_dirs(self) -> list[tuple[int, Path]]:
        found = [(int(m.group(1)), p) for p in self.path.glob("iteration-*") if (m := _ITERATION.search(p.name)) and p.is_dir()]
        return sorted(found)

    def _build(self) -> None:
        self._dirs = self._iteration_dirs()
        files = []
        for number, folder in self._dirs:
            extract, resolve = _flat(f"iteration-{number}", "problem_id", "label")
            files.append((folder / "labels" / "labelled.jsonl", extract, resolve, number))
        self.index = EntryIndex(files)
        data = [(self.path / "data" / f"{name}.jsonl", *_flat(name, "id", "label"), 0) for name in ("train", "holdout")]
        self.problems = EntryIndex(data)
        self.table = RowTable(self.index, current=_all(self.index), shown_status=_shown(STATUSES, self.index),
                              status_names=STATUSES, text_fields=("question", "response", "problem_id"), describe=_item_row)

    @property
    def title(self) -> str:
        return f"learning loop in {self.path}"

    def refresh(self) -> None:
        if self._iteration_dirs() != self._dirs:
            self._build()  # a new iteration started: its files join the index
        self.index.refresh()
        self.problems.refresh()

    def iterations(self) -> list[dict[str, Any]]:
        """Each iteration's method, model, scores and step details (from iterations.json, else summary.json)."""
        found = _read_json(self.path / "iterations.json")
        if not isinstance(found, list):
            found = (_read_json(self.path / SUMMARY_FILE) or {}).get("iterations") or []
        by_number = {it.get("iteration"): it for it in found if isinstance(it, dict)}
        for number, _ in self._dirs:  # an iteration still running has a folder but no result yet
            by_number.setdefault(number, {"iteration": number, "running": True})
        return [by_number[k] for k in sorted(by_number, key=lambda n: (n is None, n))]

    def overview(self) -> dict[str, Any]:
        self.refresh()
        settings = learner_settings(self.path) or {}
        return {"kind": self.kind, "title": self.title, "path": str(self.path), "settings": redact(settings), "recipe": run_recipe(self.path),
                "iterations": [{k: v for k, v in it.items() if k != "details"} for it in self.iterations()],
                "rows": self.table.facet_counts()["status"], "problems": len(self.problems), "version": self.index.version}

    def scores(self) -> dict[str, Any]:
        return {f"iteration-{it.get('iteration')}.{name}": value for it in self.iterations()
                for name, value in (it.get("benchmarks") or {}).items()}

    def settings(self) -> dict[str, Any]:
        return flatten(redact(learner_settings(self.path) or {}))

    def iteration(self, number: int) -> dict[str, Any] | None:
        """One iteration: its result and details, label counts and preference statistics."""
        self.refresh()
        found = next((it for it in self.iterations() if it.get("iteration") == number), None)
        folder = self.path / f"iteration-{number}"
        if found is None or not folder.is_dir():
            return None
        prefs = _read_json(folder / "preferences" / SUMMARY_FILE) or {}
        labels = _read_json(folder / "labels" / SUMMARY_FILE) or {}
        data = folder / "preferences" / "data"
        return {**redact(found), "labels": labels.get("counts"), "preferences": prefs.get("outputs") or prefs.get("result"),
                "pair_kinds": sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []}

    def pairs(self, number: int, kind: str, offset: int = 0, limit: int = 20, problem_id: str | None = None) -> dict[str, Any]:
        """One page of an iteration's preference data (`dpo`, `kto` or `sft`), read from its Arrow files."""
        folder = self.path / f"iteration-{number}" / "preferences" / "data" / kind
        if kind not in ("dpo", "kto", "sft") or not folder.is_dir():
            return {"total": 0, "rows": [], "columns": []}
        import datasets

        data = datasets.load_from_disk(str(folder))  # memory-mapped: a page reads only its rows
        if problem_id is not None and "problem_id" in data.column_names:
            column = data.data.column("problem_id").to_numpy(zero_copy_only=False)
            chosen = np.flatnonzero(column == problem_id)
        else:
            chosen = np.arange(len(data))
        page = chosen[offset: offset + max(1, min(limit, 200))]
        return {"total": int(len(chosen)), "columns": data.column_names, "rows": data.select(page.tolist()).to_list() if len(page) else []}

    def problem(self, problem_id: str) -> dict[str, Any] | None:
        """One problem across iterations: its text and teacher answer, and each iteration's graded samples."""
        self.refresh()
        source = np.flatnonzero(self.problems.array("ident") == id_hash(problem_id))
        rows = [r for r in self.problems.read_many(source.tolist()) if str(r.get("id")) == str(problem_id)]
        numbers = np.flatnonzero(self.index.array("ident") == id_hash(problem_id))
        samples = [r for r in self.index.read_many(numbers.tolist()) if str(r.get("problem_id")) == str(problem_id)]
        if not rows and not samples:
            return None
        by_iteration: dict[str, list[dict[str, Any]]] = {}
        for sample in samples:
            by_iteration.setdefault(sample["_stage"], []).append({k: v for k, v in sample.items() if k != "_stage"})
        first = rows[0] if rows else samples[0]
        pairs = {}
        for number, _ in self._dirs:
            found = {kind: page for kind in ("dpo", "kto") if (page := self.pairs(number, kind, 0, 20, problem_id))["total"]}
            if found:
                pairs[f"iteration-{number}"] = found
        return {"id": problem_id, "question": first.get("question"), "answer": first.get("answer") or first.get("reference"),
                "split": rows[0]["_stage"] if rows else None, "iterations": by_iteration, "pairs": pairs}
