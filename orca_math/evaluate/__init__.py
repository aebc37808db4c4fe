"""Benchmark evaluation: pass@1 of a student model, graded exactly, by an LLM, or hybrid.

    >>> from orca_math.evaluate import evaluate_sync
    >>> result = evaluate_sync("http://127.0.0.1:8000/v1", ["gsm8k", "svamp"], grader_model="openai:gpt-4o",
    ...                        out="eval/m1")
    >>> print(result.table())

See docs/evaluation.md.
"""

from orca_math.evaluate.harness import ITEM_FEATURES, EvaluationResult, StudentSolver, evaluate, evaluate_sync
from orca_math.evaluate.report import BenchmarkScore, EvaluationSummary, render_table
from orca_math.evaluate.sets import (
    SOLUTION_FIELDS,
    BenchmarkSet,
    benchmark_file,
    benchmark_sets,
    parse_benchmarks,
)
from orca_math.evaluate.stages import AnswerStage, GradeStage

__all__ = [
    "ITEM_FEATURES",
    "SOLUTION_FIELDS",
    "AnswerStage",
    "BenchmarkScore",
    "BenchmarkSet",
    "EvaluationResult",
    "EvaluationSummary",
    "GradeStage",
    "StudentSolver",
    "benchmark_file",
    "benchmark_sets",
    "evaluate",
    "evaluate_sync",
    "parse_benchmarks",
    "render_table",
]
