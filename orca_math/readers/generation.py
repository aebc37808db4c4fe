"""A generation output folder read for people: its funnel, its problems at their furthest stage, lineage.

The rows come from the run's stage checkpoints, not from `dataset/`: the checkpoints exist from the
first finished item on, so the same reading works while a run is writing and after it ended. A
problem is shown at the furthest stage it reached: `kept` when that is the last stage, `in progress`
before it, `dropped` or `failed` (with the stage and reason) when it stopped there.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from orca_math.engine.folder import LOCK_FILE, MANIFEST_FILE, RUNS_DIR, STAGES_DIR, SUMMARY_FILE
from orca_math.readers.index import USAGE, Entry, EntryIndex, id_hash
from orca_math.readers.rows import RowQuery, RowTable
from orca_math.readers.summaries import flatten, redact, run_recipe, verification_method

#: Where a failure sits in its checkpoint line (outputs use 0.., drops -1, -2, ...).
FAILURE_POS = -(1 << 30)
STATUSES = ("kept", "in progress", "dropped", "failed")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing, or being replaced this very moment: the next refresh reads it
    return data if isinstance(data, dict) else None


def choose_run(out: Path) -> Path | None:
    """The run folder to show in an output folder: the one being written most recently.

    `summary.json` names the last finished run, but a run started since (a changed setting gives a
    new key) is the one a user watching a live run wants; the newest manifest wins.
    """
    manifests = sorted((out / RUNS_DIR).glob(f"*/{MANIFEST_FILE}"), key=lambda p: p.stat().st_mtime)
    return manifests[-1].parent if manifests else None


def _checkpoint_extractor(stage: str):
    def extract(record: dict[str, Any]) -> list[Entry]:
        entries = []
        # The failure first: an item may have both (a seed whose expansion failed is passed on), and
        # within a stage the later entry is the one a problem is shown at.
        failure = record.get("failure") if record.get("status") == "failed" else None
        if isinstance(failure, dict):
            row = failure.get("input") or {}
            entries.append(Entry(FAILURE_POS, failure.get("id") or record.get("key"), row.get("parent_id"), stage, "failed",
                                 str(row.get("origin") or ""), "", str(failure.get("reason") or "")))
        for pos, row in enumerate(record.get("outputs") or []):
            if isinstance(row, dict):
                # Rows without an id (a sampling job's attempts) are told apart by their place.
                ident = row.get("id") if row.get("id") is not None else f"{record.get('key')}#{pos}"
                entries.append(Entry(pos, ident, row.get("parent_id"), stage, "ok", str(row.get("origin") or ""),
                                     verification_method(row)))
        for pos, drop in enumerate(record.get("drops") or []):
            if isinstance(drop, dict):
                row = drop.get("row") or {}
                entries.append(Entry(-1 - pos, drop.get("id"), row.get("parent_id"), stage, "dropped",
                                     str(row.get("origin") or ""), verification_method(row), str(drop.get("reason") or "")))
        return entries

    return extract


def _checkpoint_resolver(stage: str):
    def resolve(record: dict[str, Any], pos: int) -> dict[str, Any]:
        if pos == FAILURE_POS:
            failure = record["failure"]
            row = dict(failure.get("input") or {})
            return {**row, "id": failure.get("id") or record.get("key"), "_stage": stage, "_kind": "failed",
                    "reason": failure.get("reason"), "error_type": failure.get("error_type"),
                    "attempts": failure.get("attempts"), "raw_reply": failure.get("raw_reply"), "http_status": failure.get("status")}
        if pos < 0:
            drop = record["drops"][-1 - pos]
            return {**(drop.get("row") or {}), "id": drop.get("id"), "_stage": stage, "_kind": "dropped",
                    "reason": drop.get("reason"), "detail": drop.get("detail"), "duplicate_of": drop.get("duplicate_of")}
        return {**record["outputs"][pos], "_stage": stage, "_kind": "ok"}

    return resolve


def table_row(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of the rows table, from a full row (long texts cut; the lineage page has them whole)."""
    answer = str(row.get("answer") or "")
    return {
        "id": row.get("id"), "question": row.get("question") or "", "answer": answer[:400] + ("…" if len(answer) > 400 else ""),
        "final_answer": row.get("final_answer"), "origin": row.get("origin"), "round": row.get("round"),
        "stage": row.get("_stage"), "verification": verification_method(row), "verified": row.get("verified"),
        "difficulty": row.get("difficulty"), "reason": row.get("reason"), "detail": row.get("detail"),
    }


class GenerationReader:
    """A generation output folder (or one run folder in it), read live.

    Args:
        out: the output folder.
        run_dir: the run to show; by default the most recently written one.
    """

    kind = "generation"

    def __init__(self, out: Path, run_dir: Path | None = None) -> None:
        self.path = Path(out)
        self._pinned = run_dir is not None
        self._open(run_dir or choose_run(self.path))

    def _open(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self.manifest = (_read_json(run_dir / MANIFEST_FILE) if run_dir else None) or {}
        self.stages = [s.get("stage") for s in (self.manifest.get("config") or {}).get("stages", []) if s.get("stage")]
        stage_dir = run_dir / STAGES_DIR if run_dir else self.path / STAGES_DIR
        if not self.stages and stage_dir.is_dir():  # a manifest without its stage list: take the files found
            self.stages = sorted(p.stem for p in stage_dir.glob("*.jsonl"))
        self.index = EntryIndex([(stage_dir / f"{s}.jsonl", _checkpoint_extractor(s), _checkpoint_resolver(s), n)
                                 for n, s in enumerate(self.stages)])
        self._stage_codes = {s: self.index.strings.code(s) for s in self.stages}
        self.table = RowTable(self.index, current=self._current, shown_status=self._shown_status, status_names=STATUSES,
                              text_fields=("question", "answer", "final_answer", "reason", "detail", "id"), describe=table_row)

    @property
    def title(self) -> str:
        return f"generation run {self.manifest.get('run_key') or '?'} in {self.path}"

    def refresh(self) -> None:
        """Catch up with the folder: new checkpoint lines, the manifest, and a newer run started since."""
        if not self._pinned:
            newest = choose_run(self.path)
            if newest != self.run_dir:
                self._open(newest)
        self.index.refresh()
        if self.run_dir is not None:
            self.manifest = _read_json(self.run_dir / MANIFEST_FILE) or self.manifest

    # -- rows ----------------------------------------------------------------------------------
    def _stage_order(self) -> np.ndarray:
        order = np.full(len(self.index.strings.values), -1, dtype=np.int64)
        for number, stage in enumerate(self.stages):
            order[self._stage_codes[stage]] = number
        return order

    def _latest(self) -> np.ndarray:
        """Each problem's furthest entry (a later line of the same stage wins), in first-seen order."""
        def build() -> np.ndarray:
            alive = np.flatnonzero(self.index.alive())
            if not len(alive):
                return np.zeros(0, dtype=np.int64)
            ident = self.index.array("ident")[alive]
            stage = self._stage_order()[self.index.array("stage")[alive]]
            order = alive[np.lexsort((alive, stage, ident))]
            sorted_ident = self.index.array("ident")[order]
            boundary = np.flatnonzero(np.r_[True, sorted_ident[1:] != sorted_ident[:-1]])
            ends = np.r_[boundary[1:] - 1, len(order) - 1]
            first_seen = np.minimum.reduceat(order, boundary)
            return order[ends][np.argsort(first_seen, kind="stable")]

        return self.index.cached("latest", build)

    def _current(self, query) -> np.ndarray:
        """The rows a query starts from: each problem at its furthest stage; or, asked for drops or
        failures, every one of them (a seed whose expansion failed but went on is listed there too)."""
        if query.status in ("dropped", "failed"):
            def build() -> np.ndarray:
                code = self.index.strings.find(query.status)
                if code is None:
                    return np.zeros(0, dtype=np.int64)
                return np.flatnonzero(self.index.alive() & (self.index.array("status") == code))

            return self.index.cached(f"all:{query.status}", build)
        return self._latest()

    def _shown_status(self, numbers: np.ndarray) -> np.ndarray:
        strings = self.index.strings
        status = self.index.array("status")[numbers]
        last = self._stage_codes[self.stages[-1]] if self.stages else -1
        shown = np.where(self.index.array("stage")[numbers] == last, 0, 1)
        shown = np.where(status == (strings.find("dropped") or -1), 2, shown)
        return np.where(status == (strings.find("failed") or -1), 3, shown).astype(np.int64)

    # -- overview ------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any] | None:
        """`summary.json` when it belongs to the run shown (a finished run), else None."""
        summary = _read_json(self.path / SUMMARY_FILE)
        if summary and summary.get("run_key") == self.manifest.get("run_key"):
            return summary
        return None

    def live_counts(self) -> list[dict[str, Any]]:
        """Per stage, from the checkpoints as they are now: items done (inputs), rows out, drops and
        failures by reason, and the tokens and calls the items' lines record (the last line of an item)."""
        self.index.refresh()
        strings = self.index.strings.values
        stage, status, reason = (self.index.array(n) for n in ("stage", "status", "reason"))
        alive = self.index.alive()
        lines = self.index.line_alive()
        line_file = self.index.array("line_file")
        usage = {name: self.index.array(name) for name in USAGE}
        counts = []
        for number, name in enumerate(self.stages):  # the index holds one file per stage, in this order
            items = lines & (line_file == number)
            mine = alive & (stage == self._stage_codes[name])
            out = mine & (status == (self.index.strings.find("ok") or -1))
            drops = Counter(strings[c] for c in reason[mine & (status == (self.index.strings.find("dropped") or -1))].tolist())
            fails = Counter(strings[c] for c in reason[mine & (status == (self.index.strings.find("failed") or -1))].tolist())
            count = {"name": name, "inputs": int(items.sum()), "outputs": int(out.sum()), "dropped": sum(drops.values()),
                     "failed": sum(fails.values()), "drops_by_reason": dict(drops), "failures_by_reason": dict(fails),
                     **{key: int(values[items].sum()) for key, values in usage.items()}}
            count["cost_usd"] = self._live_cost(name, count)
            counts.append(count)
        return counts

    def _live_cost(self, stage: str, count: dict[str, Any]) -> float | None:
        """USD of a stage's paid calls so far, at the price its run recorded (None when it has none), as the summary prices them."""
        price = (self.manifest.get("prices") or {}).get(stage)
        if price is None:
            return None
        from orca_math.engine.costs import Price

        paid = Price(*price).cost(count["prompt_tokens"] - count["cached_prompt_tokens"],
                                  count["completion_tokens"] - count["cached_completion_tokens"])
        return round(paid, 6)

    def writer_alive(self) -> bool | None:
        """Whether the process named in the folder's lock file still runs (None when there is no lock file).

        Read from the PID the writer left there, never by taking the lock: a viewer must not make a
        run that starts at that moment find its folder busy.
        """
        try:
            text = (self.path / LOCK_FILE).read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        if not text.isdigit():
            return None
        try:
            os.kill(int(text), 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True  # it exists, owned by another user
        return True

    def run_status(self) -> str:
        """`finished`, `running`, or `stopped` (the manifest says running but its process is gone)."""
        status = str(self.manifest.get("status") or "")
        if self.summary() is not None and status != "running":
            return "finished"
        if status in ("", "running"):
            return "stopped" if self.writer_alive() is False else "running"
        return status

    def overview(self) -> dict[str, Any]:
        self.refresh()
        summary = self.summary()
        funnel = (summary or {}).get("funnel") or self.manifest.get("funnel") or {}
        latest = self._latest()
        live = self.live_counts()
        shown = Counter(STATUSES[k] for k in self._shown_status(latest).tolist() if k < 2)
        for status in ("dropped", "failed"):  # every drop and failure, as the rows table lists them
            found = len(self._current(RowQuery(status=status)))
            if found:
                shown[status] = found
        return {
            "kind": self.kind, "title": self.title, "path": str(self.path), "run_key": self.manifest.get("run_key"),
            "finished": summary is not None, "status": self.run_status(), "funnel": funnel,
            "live": live, "live_totals": {**{key: sum(s[key] for s in live) for key in USAGE}, "cost_usd": _total_cost(live)},
            "rows": {k: shown[k] for k in STATUSES if shown.get(k)},
            "problems": int(len(latest)), "version": self.index.version,
            "settings": redact(self.manifest.get("config") or {}), "recipe": run_recipe(self.path, self.manifest.get("run_key")),
            "manifest": redact({k: v for k, v in self.manifest.items() if k not in ("config", "funnel")}),
            "decontamination": (summary or {}).get("decontamination"), "columns": (summary or {}).get("columns"),
        }

    def scores(self) -> dict[str, Any]:
        """The numbers a comparison lines up: seeds, final rows, per-stage counts, tokens, cost, time."""
        funnel = self.overview()["funnel"]
        scores: dict[str, Any] = {k: funnel.get(k) for k in ("seeds", "final_rows", "prompt_tokens", "completion_tokens", "cost_usd", "seconds")}
        for stage in funnel.get("stages") or self.live_counts():
            for key in ("outputs", "dropped", "failed"):
                scores[f"{stage['name']}.{key}"] = stage.get(key)
        return scores

    def settings(self) -> dict[str, Any]:
        return flatten(redact(self.manifest.get("config") or {}))

    # -- lineage -------------------------------------------------------------------------------
    def entries_of(self, problem_id: str) -> list[dict[str, Any]]:
        """Every entry of one problem, stage by stage, read from the checkpoints."""
        self.index.refresh()
        numbers = np.flatnonzero(self.index.alive() & (self.index.array("ident") == id_hash(problem_id)))
        rows = [r for r in self.index.read_many(numbers.tolist()) if str(r.get("id")) == str(problem_id)]
        order = {s: n for n, s in enumerate(self.stages)}
        return sorted(rows, key=lambda r: order.get(r["_stage"], -1))

    def children_of(self, problem_id: str) -> list[str]:
        """The ids written from this problem (its Ask-Me-Anything problems or next hardening round)."""
        numbers = np.flatnonzero(self.index.alive() & (self.index.array("parent") == id_hash(problem_id)))
        ids: dict[str, None] = {}
        for row in self.index.read_many(numbers.tolist()):
            if str(row.get("parent_id")) == str(problem_id) and row.get("id") is not None:
                ids.setdefault(str(row["id"]))
        return list(ids)

    # -- whole stages (the static report) ------------------------------------------------------
    def stage_rows(self, stage: str, *, status: str = "ok", chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """The rows one stage wrote, last record per item, read from disk a chunk at a time.

        Args:
            stage: the stage's name.
            status: "ok" for its outputs (a failed item's too), "dropped" for the rows it dropped (each
                with its `reason` and `detail`).
        """
        self.index.refresh()
        code, wanted = self._stage_codes.get(stage), self.index.strings.find(status)
        if code is None or wanted is None:
            return
        numbers = np.flatnonzero(self.index.alive() & (self.index.array("stage") == code) & (self.index.array("status") == wanted))
        for start in range(0, len(numbers), chunk):
            for row in self.index.read_many(numbers[start:start + chunk].tolist()):
                yield {k: v for k, v in row.items() if k not in ("_stage", "_kind")}

    def solved_rows(self) -> list[dict[str, Any]]:
        """Every solved problem, from the `verify` stage (which adds `verified`) or else `solve`.

        The verify stage's drops are included (with their `verified: false` evidence): they were solved too.
        """
        for stage in ("verify", "solve"):
            rows = list(self.stage_rows(stage))
            if stage == "verify":
                rows += [row for row in self.stage_rows(stage, status="dropped") if row.get("question")]
            if rows:
                return rows
        return []


def _total_cost(stages: list[dict[str, Any]]) -> float | None:
    """The stages' cost so far, or None when a stage that made calls has no price (as `Funnel.cost_usd`)."""
    costs = [s["cost_usd"] for s in stages if s["calls"]]
    return None if not costs or any(c is None for c in costs) else round(sum(costs), 6)
