"""Scores and tables of an evaluation: pass@1 per benchmark with counts and how verdicts were decided."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orca_math.engine.folder import SUMMARY_FILE
from orca_math.files import write_json, write_jsonl, write_text


@dataclass
class BenchmarkScore:
    """One benchmark's result.

    Attributes:
        benchmark: the benchmark's name.
        n: items evaluated (failures included).
        correct: items graded Correct.
        failures: items with no verdict (the model or the grader failed after retries); they count
            as not correct in pass@1.
        exact: verdicts decided by the deterministic answer checker.
        llm: verdicts decided by the LLM grader.
        audited: deterministic verdicts also graded by the LLM (audit).
        audit_agreements: audited verdicts where the LLM agreed.
        audit_failures: items sampled for the audit whose LLM reply never parsed (not in `audited`).
    """

    benchmark: str
    n: int = 0
    correct: int = 0
    failures: int = 0
    exact: int = 0
    llm: int = 0
    audited: int = 0
    audit_agreements: int = 0
    audit_failures: int = 0

    @property
    def pass_at_1(self) -> float | None:
        """Correct / n (failures count as wrong), or None for an empty benchmark."""
        return self.correct / self.n if self.n else None

    @property
    def agreement_rate(self) -> float | None:
        return self.audit_agreements / self.audited if self.audited else None

    def add(self, row: Mapping[str, Any]) -> None:
        self.n += 1
        if row.get("error") is not None:
            self.failures += 1
            return
        self.correct += int(bool(row.get("correct")))
        if row.get("method") == "exact":
            self.exact += 1
        elif row.get("method") == "llm":
            self.llm += 1
        if row.get("audit_verdict") is not None:
            self.audited += 1
            self.audit_agreements += int(row["audit_verdict"] == row.get("verdict"))
        elif row.get("audit_error") is not None:
            self.audit_failures += 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pass@1": self.pass_at_1, "agreement_rate": self.agreement_rate}


@dataclass
class EvaluationSummary:
    """Scores of every benchmark of one evaluation, plus what was evaluated and how.

    Attributes:
        model: the student model, as named in the run config.
        grading: the grading mode ("exact", "llm" or "hybrid"); `grader` is its deprecated name.
        grader_model: the LLM Grader's model, or None in exact mode.
        scores: benchmark name -> `BenchmarkScore`, in the order evaluated.
    """

    model: str
    grading: str
    grader_model: str | None
    scores: dict[str, BenchmarkScore] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], *, benchmarks: Sequence[str], model: str, grading: str,
                  grader_model: str | None) -> EvaluationSummary:
        """Count per-item rows (columns `benchmark`, `correct`, `method`, `error`, `verdict`, `audit_verdict`, `audit_error`)."""
        summary = cls(model, grading, grader_model, {name: BenchmarkScore(name) for name in benchmarks})
        for row in rows:
            summary.scores.setdefault(row["benchmark"], BenchmarkScore(row["benchmark"])).add(row)
        return summary

    @property
    def grader(self) -> str:
        """Deprecated name of `grading`."""
        warnings.warn("EvaluationSummary.grader is now .grading; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return self.grading

    @property
    def overall(self) -> BenchmarkScore:
        """Every item of every benchmark pooled (a micro average)."""
        total = BenchmarkScore("overall")
        for score in self.scores.values():
            for name in ("n", "correct", "failures", "exact", "llm", "audited", "audit_agreements", "audit_failures"):
                setattr(total, name, getattr(total, name) + getattr(score, name))
        return total

    def pass_at_1(self, benchmark: str) -> float | None:
        """pass@1 of one benchmark."""
        return self.scores[benchmark].pass_at_1

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "grading": self.grading,
            "grader": self.grading,  # the old key, kept for readers of older summaries for one release
            "grader_model": self.grader_model,
            "benchmarks": {name: score.to_dict() for name, score in self.scores.items()},
            "overall": self.overall.to_dict(),
        }

    def table(self) -> str:
        """A Markdown table: one row per benchmark (and an overall row when there are several)."""
        return render_table(self)


_HEADER = ("benchmark", "n", "correct", "pass@1", "failed", "exact", "llm", "audit agree")


def render_table(summary: EvaluationSummary) -> str:
    """The summary as a Markdown table with pass@1 in percent, counts and the method split."""
    rows = list(summary.scores.values())
    if len(rows) > 1:
        rows.append(summary.overall)
    body = [_HEADER] + [_cells(score) for score in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(_HEADER))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in body]
    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([lines[0], rule, *lines[1:]])


def _cells(score: BenchmarkScore) -> tuple[str, ...]:
    rate = score.pass_at_1
    agreement = score.agreement_rate
    audit = "-" if agreement is None else f"{score.audit_agreements}/{score.audited} ({100 * agreement:.0f}%)"
    if score.audit_failures:
        audit = f"{audit}, {score.audit_failures} unparsed" if agreement is not None else f"{score.audit_failures} unparsed"
    return (
        score.benchmark,
        str(score.n),
        str(score.correct),
        "-" if rate is None else f"{100 * rate:.2f}%",
        str(score.failures),
        str(score.exact),
        str(score.llm),
        audit,
    )


def write_evaluation_report(out: Path, rows: Sequence[Mapping[str, Any]], summary: EvaluationSummary,
                            run_info: Mapping[str, Any]) -> dict[str, Path]:
    """Write `items.jsonl`, `summary.json` (the summary plus `run_info`) and `table.md` into `out`, atomically.

    Returns:
        "items", "summary" and "table" -> the paths written.
    """
    files = {"items": out / "items.jsonl", "summary": out / SUMMARY_FILE, "table": out / "table.md"}
    write_jsonl(rows, files["items"])
    write_json(files["summary"], {**summary.to_dict(), **run_info, "items": str(files["items"])})
    write_text(files["table"], summary.table() + "\n")
    return files


__all__ = ["BenchmarkScore", "EvaluationSummary", "render_table", "write_evaluation_report"]
