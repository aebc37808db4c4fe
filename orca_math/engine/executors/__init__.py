"""Executors: where a step's items run.

* `base`: the `Executor` contract, `StepTask` and `RemoteStage` (what any executor receives).
* `local`: `LocalExecutor`, asyncio workers in this process (the default).
* `remote`: what an executor that runs stages in other processes needs, with no Ray in it: the
  stage worker, error packing, how a model travels.
* `ledgers`: limits shared by remote workers: the budget leased from one ledger, split rate caps.
* `ray`: `RayExecutor` over a Ray actor pool, and the ``ray.data.llm`` path.
* `registry`: choosing an executor by name (``--executor``), open to entry points.
"""

from orca_math.engine.executors.base import Executor, Outcome, RemoteStage, StepTask
from orca_math.engine.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "Outcome", "RemoteStage", "StepTask"]
