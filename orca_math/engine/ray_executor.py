"""Deprecated: `RayExecutor` moved to `orca_math.engine.executors.ray` (docs/ray.md named this path)."""

from orca_math._deprecated import moved
from orca_math.engine.executors.ray import RayExecutor

moved(__name__, "orca_math.engine.executors.ray")

__all__ = ["RayExecutor"]
