"""Deprecated: the generation stages moved to `orca_math.pipeline.generation`."""

from orca_math._deprecated import moved
from orca_math.pipeline.generation import Expand, Filter, Harden, Solve, Verify

moved(__name__, "orca_math.pipeline.generation")

__all__ = ["Expand", "Filter", "Harden", "Solve", "Verify"]
