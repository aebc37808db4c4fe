"""Deprecated: dry-run estimates moved to `orca_math.engine.estimate` (each stage estimates itself)."""

from orca_math._deprecated import moved
from orca_math.agents.cards import typical_completion_tokens
from orca_math.engine.estimate import Estimate, StageEstimate

#: The shipped cards' typical reply lengths (read from them: `orca_math.agents.cards.typical_completion_tokens`).
TYPICAL_COMPLETION_TOKENS = typical_completion_tokens()

moved(__name__, "orca_math.engine.estimate")

__all__ = ["TYPICAL_COMPLETION_TOKENS", "Estimate", "StageEstimate"]
