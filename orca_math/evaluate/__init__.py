"""Benchmark evaluation: pass@1 of a student model, graded exactly, by an LLM, or hybrid.

    >>> from orca_math.evaluate import evaluate_sync
    >>> result = evaluate_sync("http://127.0.0.1:8000/v1", ["gsm8k", "svamp"], grader_model="openai:gpt-4o",
    ...                        out="eval/m1")
    >>> print(result.table())

See docs/evaluation.md.
"""

from orca_math.evaluate.harness import (
    ITEM_FEATURES,
    SOLUTION_FIELDS,
    EvaluationResult,
    StudentSolver,
    evaluate,
    evaluate_sync,
)
from orca_math.evaluate.report import BenchmarkScore, EvaluationSummary, render_table

__all__ = [
    "ITEM_FEATURES",
    "SOLUTION_FIELDS",
    "BenchmarkScore",
    "EvaluationResult",
    "EvaluationSummary",
    "StudentSolver",
    "evaluate",
    "evaluate_sync",
    "render_table",
]
