"""Running items on a Ray cluster: `RayExecutor` (an actor pool) and the ``ray.data.llm`` path (`llm`).

Importing this package does not import Ray; starting an executor does.
"""

from orca_math.engine.executors.ray.executor import RayExecutor

__all__ = ["RayExecutor"]
