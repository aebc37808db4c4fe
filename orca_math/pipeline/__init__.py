"""Stages and the `Pipeline` that composes them: seeds → expand → harden → solve → verify → filter."""

from orca_math.engine.runner import ItemFailedError, ItemResult
from orca_math.pipeline.pipeline import Pipeline, PipelineResult, default_stages
from orca_math.pipeline.quality_stages import Decontaminate, Dedup
from orca_math.pipeline.stage import Row, Stage, StageError, call_agent
from orca_math.pipeline.stages import Expand, Filter, Harden, Solve, Verify
from orca_math.pipeline.summary import Funnel, StageSummary

__all__ = [
    "Decontaminate",
    "Dedup",
    "Expand",
    "Filter",
    "Funnel",
    "Harden",
    "ItemFailedError",
    "ItemResult",
    "Pipeline",
    "PipelineResult",
    "Row",
    "Solve",
    "Stage",
    "StageError",
    "StageSummary",
    "Verify",
    "call_agent",
    "default_stages",
]
