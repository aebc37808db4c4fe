"""The learning loop's one-item steps (data split, preferences, training, a custom evaluation) as jobs.

Sampling, labelling and evaluation are jobs over many items; the loop's other steps produce one
thing each (a data split, a preference dataset, a checkpoint). They run on the same engine as
jobs of one item, so they get the same run folder, run key, lock and resume rule: a step whose
item is "ok" in its checkpoint is done and is never redone; one that failed keeps its reason in a
failure row and is tried again on the next run. No marker files.
"""

from __future__ import annotations

import inspect
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orca_math.engine.config import EngineConfig
from orca_math.engine.items import ItemResult, RunStopped
from orca_math.engine.jobs import Job, run_job, write_summary
from orca_math.engine.stage import Row, Stage

#: One-item steps call no model through the engine and need no cache or GC tuning.
STEP_ENGINE = EngineConfig(progress=False, cache=False, tune_gc=False)


class StepFailedError(RunStopped):
    """A step of the learning loop failed; its reason is in the step's failure row, and a rerun retries it."""


class FunctionStage(Stage):
    """A one-item stage that runs `function()` (sync or async) and records what it returns.

    Args:
        name: the step's name.
        function: returns a JSON-serialisable dict (the step's result).
        params: what identifies the step's result (enters the run key).
    """

    calls_model = False

    def __init__(self, name: str, function: Callable[[], Any], params: Mapping[str, Any]) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]  # one class serves every named step
        self._function = function
        self._params = dict(params)

    def params(self) -> dict[str, Any]:
        return self._params

    async def process(self, row: Row) -> ItemResult:
        result = self._function()
        if inspect.isawaitable(result):
            result = await result
        return ItemResult(outputs=[dict(result)])


async def run_step(name: str, function: Callable[[], Any], *, out: str | Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run a one-item step in its own run folder under `out`, or return its recorded result.

    Raises:
        StepFailedError: the step failed (the message gives its reason; rerunning retries it).
    """
    stage = FunctionStage(name, function, params)
    job = Job(name, [stage], total=1)
    finished = await run_job(job, lambda: [{"id": name}], out=out, engine=STEP_ENGINE)
    record = next(finished.records(name))
    if record["status"] != "ok":
        reason = record["failure"]["reason"]
        raise StepFailedError(f"the {name} step in {out} failed: {reason} (fix the cause and run again: finished steps are kept)")
    result = record["outputs"][0]
    write_summary(out, finished, result=result)
    return result


def train_checkpoint(trainer: Any, dataset: Callable[[], Any], output_dir: Path, preset: Any, *, model: Path, method: str) -> dict[str, Any]:
    """Train `model` into `output_dir` (a partial checkpoint from an interrupted run is removed first)."""
    import dataclasses

    shutil.rmtree(output_dir, ignore_errors=True)
    started = time.perf_counter()
    checkpoint = trainer.train(dataset(), output_dir, preset, model=model)
    return {"method": method, "model": str(checkpoint), "base": str(model), "seconds": round(time.perf_counter() - started, 1),
            "preset": dataclasses.asdict(preset)}


__all__ = ["STEP_ENGINE", "FunctionStage", "StepFailedError", "run_step", "train_checkpoint"]
