"""Pipeline stages for data quality: dedup and benchmark decontamination (see `orca_math.quality`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orca_math.engine.items import ItemResult
from orca_math.engine.stage import Row, Stage
from orca_math.records import Drop


class Dedup(Stage):
    """Drops exact (normalised) and near (MinHash LSH) duplicates; the first occurrence is kept.

    Decisions depend on every earlier row, so they are made in one pass over the stage's input in
    `prepare`, in id order (`orca_math.quality.dedup_index.rows_by_id`): the step before records
    its outputs in the order they finished, which differs between runs, executors and resumes, so
    "first" means the smallest id, and a resumed or Ray run decides exactly as an uninterrupted
    local one. `process` then only looks the decision up. Each drop names the row it duplicates.

    On resume the input may hold rows that the earlier run lacked (items that failed then and
    succeeded now); `outdated` names the recorded decisions that no longer hold, and they are
    taken again, so the rows kept are those of an uninterrupted run.
    """

    name = "dedup"
    reads = ("id", "question")
    needs_whole_input = True
    calls_model = False

    def __init__(self, *, exact: bool = True, near: bool = True, threshold: float = 0.85) -> None:
        super().__init__()
        from orca_math.quality import DedupOptions

        self.options = DedupOptions(exact=exact, near=near, threshold=threshold)
        self._duplicates: dict[str, tuple[str, str, float | None]] = {}

    def params(self) -> dict[str, Any]:
        # "order": decisions taken in id order (earlier versions took the previous step's finishing order).
        return {"exact": self.options.exact, "near": self.options.near, "threshold": self.options.threshold, "order": "id"}

    def prepare(self, rows: Iterable[Row]) -> None:
        from orca_math.quality import Deduplicator
        from orca_math.quality.dedup_index import rows_by_id

        # On disk: the index of a 200K-seed run (about a million problems) would take gigabytes in memory.
        deduplicator = Deduplicator(self.options, on_disk=True)
        self._duplicates.clear()
        try:
            for row_id, question in rows_by_id(rows):
                result = deduplicator.check(row_id, question)
                if result.duplicate_of is not None:
                    self._duplicates[row_id] = (result.duplicate_of, result.kind or "exact", result.similarity)
        finally:
            deduplicator.close()

    def outdated(self, records: Iterable[dict[str, Any]]) -> set[str]:
        """Recorded decisions that differ from `prepare`'s: kept then and a duplicate now, or the reverse,
        or a duplicate of another row."""
        changed: set[str] = set()
        for record in records:
            if record["status"] != "ok":
                continue  # failed items are retried anyway
            then = next((drop.get("duplicate_of") for drop in record.get("drops", [])), None)
            now = self._duplicates.get(record["key"])
            if then != (now[0] if now is not None else None):
                changed.add(record["key"])
        return changed

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        found = self._duplicates.get(row["id"])
        if found is None:
            return ItemResult(outputs=[row])
        duplicate_of, kind, similarity = found
        detail = f"jaccard≈{similarity:.2f}" if similarity is not None else "identical after normalisation"
        drop = Drop(id=row["id"], stage=self.name, reason=f"{kind}_duplicate", detail=detail, duplicate_of=duplicate_of, row=row)
        return ItemResult(drops=[drop.to_row()])


class Decontaminate(Stage):
    """Flags or drops rows that share an n-gram (13 by default) with a benchmark test set.

    The default sets are the GSM8K test set, SVAMP, ASDiv and the four MAWPS sets, loaded with
    `orca_math.data.load_benchmark` (from the Hub, or from `benchmarks_dir` /
    `ORCA_MATH_BENCHMARKS_DIR`); `extra` adds sets of your own by name.
    """

    name = "decontaminate"
    reads = ("id", "question")
    calls_model = False
    runtime = ("decontaminator",)  # the benchmarks' n-gram index, built by `load`

    def __init__(
        self,
        *,
        benchmarks: Sequence[str] | None = None,
        n: int = 13,
        action: str = "drop",
        benchmarks_dir: str | None = None,
        extra: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        from orca_math.quality import DEFAULT_SETS, DecontaminationOptions

        self.benchmarks = tuple(benchmarks or DEFAULT_SETS)
        self.options = DecontaminationOptions(n=n, action=action)  # type: ignore[arg-type]
        self.benchmarks_dir = benchmarks_dir
        self.extra = extra or {}
        self.decontaminator: Any

    def params(self) -> dict[str, Any]:
        return {"benchmarks": list(self.benchmarks), "n": self.options.n, "action": self.options.action, "extra": sorted(self.extra)}

    def load(self) -> None:
        from orca_math.quality import Decontaminator

        self.decontaminator = Decontaminator.from_benchmarks(self.benchmarks, path=self.benchmarks_dir, extra=self.extra, options=self.options)

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        result = self.decontaminator.check(row["question"])
        if self.options.action == "flag":
            return ItemResult(outputs=[{**row, "contaminated": result.contaminated, "contaminated_with": list(result.benchmarks)}])
        if not result.contaminated:
            return ItemResult(outputs=[row])
        detail = "; ".join(f"{name}: '{ngram}'" for name, ngram in result.examples.items())
        dropped = {**row, "contaminated_with": list(result.benchmarks)}
        return ItemResult(drops=[Drop(id=row["id"], stage=self.name, reason="contaminated", detail=detail, row=dropped).to_row()])

    def report(self, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Counts per benchmark over the whole run (resumes included), for the summary and the card."""
        from orca_math.quality import ContaminationResult, DecontaminationReport

        report = DecontaminationReport(dict(self.decontaminator.sizes), self.options.n, self.options.min_overlap, self.options.action)
        for record in records:
            if record["status"] != "ok":
                continue
            rows = [drop["row"] for drop in record.get("drops", [])] or record["outputs"]
            names = tuple(rows[0].get("contaminated_with") or ()) if rows else ()
            report.add(ContaminationResult(contaminated=bool(names), benchmarks=names))
        return {"decontamination": report.to_dict()}
