"""Deprecated: the stage contract moved to `orca_math.engine.stage` (every workload runs stages)."""

from orca_math._deprecated import moved
from orca_math.agents.base import call_agent
from orca_math.engine.stage import Row, Stage, StageError

moved(__name__, "orca_math.engine.stage")

__all__ = ["Row", "Stage", "StageError", "call_agent"]
