"""Stages and the `Pipeline` that composes them: seeds → expand → harden → dedup → decontaminate → solve → verify → filter."""

from orca_math.agents.base import call_agent
from orca_math.engine.items import ItemFailedError, ItemResult
from orca_math.engine.stage import Row, Stage, StageError
from orca_math.engine.summary import Funnel, StageSummary
from orca_math.pipeline.generation import Expand, Filter, Harden, Solve, Verify
from orca_math.pipeline.pipeline import Pipeline, PipelineResult, default_stages
from orca_math.pipeline.quality_stages import Decontaminate, Dedup

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
