"""Deprecated: the funnel moved to `orca_math.engine.summary` (every job has one)."""

from orca_math._deprecated import moved
from orca_math.engine.summary import Funnel, StageSummary, summarise_stage

moved(__name__, "orca_math.engine.summary")

__all__ = ["Funnel", "StageSummary", "summarise_stage"]
