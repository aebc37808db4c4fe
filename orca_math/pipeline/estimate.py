"""Deprecated: dry-run estimates moved to `orca_math.engine.estimate` (each stage estimates itself)."""

from orca_math._deprecated import moved
from orca_math.engine.estimate import TYPICAL_COMPLETION_TOKENS, Estimate, StageEstimate

moved(__name__, "orca_math.engine.estimate")

__all__ = ["TYPICAL_COMPLETION_TOKENS", "Estimate", "StageEstimate"]
