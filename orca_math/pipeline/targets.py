"""Row targets: draw seeds until N rows pass every stage, then stop (``Pipeline(target_rows=N)``).

The engine runs stage after stage over a whole input, so a target is reached in *waves*: each wave
runs the job over a longer prefix of the seeds in the same run folder, where every item already
finished is skipped, so a wave pays only for its new seeds. Online, a wave draws as many seeds as
can not overshoot the target: the rows still needed divided by the most rows one seed has given so
far (at least one seed). The calls made beyond the target are then at most one seed's worth. In
batch mode every wave is a batch (hours, not seconds), so a wave draws what the measured yield says
is needed, plus a tenth.

The rows come out in seed order and the dataset is cut to exactly N; the rows beyond it are
written to ``drops.jsonl`` with the reason ``beyond_target``, so nothing is lost silently. How
many seeds were drawn is kept in the run folder (``target.json``), so a rerun starts from there:
a finished run makes no calls, an interrupted one continues its wave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orca_math.errors import ConfigError
from orca_math.files import read_json, write_json

TARGET_FILE = "target.json"
BEYOND_TARGET = "beyond_target"
#: Batch waves draw this much more than the measured yield says, so the last batch rarely falls short.
BATCH_MARGIN = 0.1


@dataclass
class TargetProgress:
    """Where a target run stands: asked, reached, and how many seeds it drew of how many there are.

    Attributes:
        target_rows: the rows asked for.
        kept: rows that passed every stage (before the cut to `target_rows`).
        seeds_drawn: seeds run so far.
        seeds_available: seeds in the source (after ``limit``).
        waves: job runs it took in this process.
    """

    target_rows: int
    kept: int = 0
    seeds_drawn: int = 0
    seeds_available: int = 0
    waves: int = 0

    @property
    def met(self) -> bool:
        return self.kept >= self.target_rows

    @property
    def rows(self) -> int:
        """Rows in the dataset: the target, or fewer when the seeds ran out first."""
        return min(self.kept, self.target_rows)

    def to_dict(self) -> dict[str, Any]:
        return {"target_rows": self.target_rows, "rows": self.rows, "kept_before_cut": self.kept, "met": self.met,
                "beyond_target": max(0, self.kept - self.target_rows), "seeds_drawn": self.seeds_drawn,
                "seeds_available": self.seeds_available}

    def message(self) -> str:
        """One line for the end of a run."""
        if self.met:
            return f"target reached: {self.target_rows} rows from {self.seeds_drawn} of {self.seeds_available} seeds"
        return (f"target not reached: {self.rows} of {self.target_rows} rows; the seeds ran out after all "
                f"{self.seeds_available} were drawn (add seeds, or raise --limit)")


def check_target_rows(target_rows: Any) -> int | None:
    """`target_rows` checked: None, or a whole number of at least 1.

    Raises:
        ConfigError: anything else, in one sentence.
    """
    if target_rows is None:
        return None
    if isinstance(target_rows, bool) or not isinstance(target_rows, int) or target_rows < 1:
        raise ConfigError(f"target_rows must be a whole number of at least 1, not {target_rows!r}.")
    return target_rows


def check_target_executor(executor: Any) -> None:
    """Refuse Ray with a target: every wave would start and stop a worker pool (tens of seconds each).

    Raises:
        ConfigError: one sentence saying what to do.
    """
    from orca_math.engine.executors import LocalExecutor

    if executor is None or executor == "local" or isinstance(executor, LocalExecutor):
        return
    name = executor if isinstance(executor, str) else getattr(executor, "name", type(executor).__name__)
    raise ConfigError(f"--target-rows runs on the local executor, not {name}: each wave of seeds would start a new worker "
                      "pool, so drop --executor ray (executor=) or use --limit instead of a row target.")


def rows_in_seed_order(run: Any, stages: Sequence[Any], seed_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The last stage's output rows in seed order (checkpoints are in completion order).

    Each stage's inputs are the previous stage's outputs in order, so the order is rebuilt stage by
    stage from the seeds' ids, reading records back by offset (`CheckpointFile.in_key_order`).
    """
    rows: Iterable[dict[str, Any]] = ({"id": seed_id} for seed_id in seed_ids)
    for index, stage in enumerate(stages):
        keys = [stage.key(row) for row in rows]
        outputs = (output for _, record in run.checkpoint(stage.name).in_key_order(keys) if record is not None
                   for output in record.get("outputs") or ())
        if index == len(stages) - 1:
            yield from outputs
            return
        rows = list(outputs)


def rows_per_seed(seed_ids: Sequence[str], row_ids: Iterable[str]) -> list[int] | None:
    """Kept rows per seed, from the ids of the final rows in seed order (generated ids start with their seed's id).

    Returns None when a row's id names no seed (a custom stage that renames rows): the caller then
    falls back on the mean yield.
    """
    counts = [0] * len(seed_ids)
    position = 0
    for row_id in row_ids:
        while position < len(seed_ids) and not (row_id == seed_ids[position] or row_id.startswith(seed_ids[position] + "-")):
            position += 1
        if position == len(seed_ids):
            return None
        counts[position] += 1
    return counts


def next_draw(progress: TargetProgress, per_seed: list[int] | None, *, batch: bool) -> int:
    """How many seeds the next wave runs in all (a prefix length), given what the run has kept so far."""
    drawn, needed = progress.seeds_drawn, progress.target_rows - progress.kept
    if drawn == 0:
        first = math.ceil(progress.target_rows / 10) if batch else 1
        return min(progress.seeds_available, max(1, first))
    if progress.kept == 0:
        more = drawn  # nothing kept yet: no yield to go by, so double
    elif batch:
        more = math.ceil(needed * (1 + BATCH_MARGIN) * drawn / progress.kept)
    else:
        most = max(per_seed) if per_seed else math.ceil(2 * progress.kept / drawn)
        more = max(1, needed // max(1, most))
    return min(progress.seeds_available, drawn + max(1, more))


async def run_to_target(
    run_wave: Callable[[int], Any],
    *,
    run_dir: Path,
    target_rows: int,
    seeds_available: int,
    seed_ids: Callable[[int], list[str]],
    final_ids: Callable[[Any], Iterable[str]],
    kept: Callable[[Any], int],
    batch: bool = False,
) -> tuple[Any, TargetProgress]:
    """Run waves over growing seed prefixes until `target_rows` rows are kept or the seeds run out.

    Args:
        run_wave: runs the job over the first n seeds and returns its `JobRun`.
        run_dir: the run's folder, where ``target.json`` records the seeds drawn.
        target_rows: the rows asked for.
        seeds_available: seeds in the source.
        seed_ids: the ids of the first n seeds, in order.
        final_ids: the ids of a finished wave's final rows, in order.
        kept: a finished wave's kept rows.
        batch: calls go out as provider batches (draw by the mean yield, with a margin).

    Returns:
        The last wave's `JobRun` and the `TargetProgress`.
    """
    state_path = Path(run_dir) / TARGET_FILE
    state = read_json(state_path) if state_path.is_file() else {}
    progress = TargetProgress(target_rows, seeds_available=seeds_available)
    # A rerun first finishes (or just re-reads) what the last run drew: no call is made twice.
    draw = min(int(state.get("seeds_drawn", 0)), seeds_available) or next_draw(progress, None, batch=batch)
    while True:
        write_json(state_path, {"target_rows": target_rows, "seeds_drawn": draw})
        finished = await run_wave(draw)
        progress.seeds_drawn, progress.waves = draw, progress.waves + 1
        progress.kept = kept(finished)
        if progress.met or draw >= seeds_available:
            return finished, progress
        per_seed = None if batch else rows_per_seed(seed_ids(draw), final_ids(finished))
        draw = next_draw(progress, per_seed, batch=batch)


__all__ = ["BEYOND_TARGET", "TARGET_FILE", "TargetProgress", "check_target_executor", "check_target_rows", "next_draw",
           "rows_in_seed_order", "rows_per_seed", "run_to_target"]
