"""Helpers of the Ray tests: one local Ray cluster per test session, seeds, and run-folder readers.

Actor start-up takes seconds on 2 cores, so every Ray test shares the session's cluster (started
once, 2 CPUs, no dashboard) and keeps its runs small. Workers reserve a tenth of a CPU each, so a
new pool never waits for the previous one's CPUs to be released.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

#: What each test worker reserves: little, so pools started one after another never queue.
WORKER_RESOURCES = {"CPU": 0.1}


@pytest.fixture(scope="session")
def ray_cluster():
    """The session's local Ray cluster; yields its address (for drivers in other processes)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


def ray_executor(**options: Any):
    """A `RayExecutor` on the session's cluster: 2 workers unless told otherwise."""
    from orca_math.engine.executors.ray import RayExecutor

    return RayExecutor(**{"workers": 2, "resources": WORKER_RESOURCES, **options})


def write_seeds(path: Path, n: int, *, prefix: str = "") -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"s{i}", "question": f"{prefix}Sam has {i} apples and finds 2 more. How many apples now?",
                                     "answer": str(i + 2)}) + "\n")
    return path


def agent_reply(messages: Sequence[dict[str, Any]]) -> str:
    """`pipeline_responder` for the fault server's plain-dict messages: each agent answered in its format."""
    from autogen_core.models import SystemMessage, UserMessage

    from orca_math.testing.responders import pipeline_responder

    converted = [SystemMessage(content=str(m.get("content", ""))) if m.get("role") == "system"
                 else UserMessage(content=str(m.get("content", "")), source="user") for m in messages]
    return pipeline_responder(converted)


def dataset_rows(result) -> list[dict[str, Any]]:
    """The final dataset of a `PipelineResult`, sorted by id (completion order differs between runs)."""
    return sorted(result.load_dataset().to_list(), key=lambda row: row["id"])


def checkpoint_lines(out: Path, stage: str) -> list[dict[str, Any]]:
    """Every line of a stage's checkpoint in the one run under `out`."""
    files = list(Path(out).glob(f"runs/*/stages/{stage}.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]

