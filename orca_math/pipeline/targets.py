"""Row targets: draw seeds until N rows pass every stage, then stop (``Pipeline(target_rows=N)``).

The engine runs stage after stage over a whole input, so a target is reached in *waves*: each wave
runs the job over a longer prefix of the seeds in the same run folder, where every item already
finished is skipped, so a wave pays only for its new seeds. Online, a wave draws as many seeds as
can not overshoot the target: the rows still needed divided by the most rows one seed has given so
far (at least one seed, and at most as many as were drawn before, since that most is learned from
them). The calls made beyond the target are then at most about one seed's worth. In
batch mode every wave is a batch (hours, not seconds), so a wave draws what the measured yield says
is needed, plus a tenth.

The rows come out in seed order and the dataset is cut to exactly N; the rows beyond it are
written to ``drops.jsonl`` with the reason ``beyond_target``, so nothing is lost silently. How
many seeds were drawn is kept in the run folder (``target.json``), so a rerun starts from there:
a finished run makes no calls, an interrupted one continues its wave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orca_math.errors import ConfigError
from orca_math.files import read_json, write_json

TARGET_FILE = "target.json"
BEYOND_TARGET = "beyond_target"
#: Batch waves draw this much more than the measured yield says, so the last batch rarely falls short.
BATCH_MARGIN = 0.1


#: The key of every row when no band shares are asked for.
ALL = ""


@dataclass
class TargetProgress:
    """Where a target run stands: asked, reached, and how many seeds it drew of how many there are.

    Attributes:
        target_rows: the rows asked for.
        quotas: rows asked for per difficulty band (``--band-shares``), or None.
        kept: rows that passed every stage (before the cut to `target_rows`).
        kept_by_band: of those, per band (with `quotas` only).
        seeds_drawn: seeds run so far.
        seeds_available: seeds in the source (after ``limit``).
        waves: job runs it took in this process.
    """

    target_rows: int
    quotas: dict[str, int] | None = None
    kept: int = 0
    kept_by_band: dict[str, int] = field(default_factory=dict)
    seeds_drawn: int = 0
    seeds_available: int = 0
    waves: int = 0

    def wanted(self) -> dict[str, int]:
        """Rows asked for, by key (each band with quotas, else `ALL`)."""
        return dict(self.quotas) if self.quotas is not None else {ALL: self.target_rows}

    def have(self) -> dict[str, int]:
        """Rows kept, by the keys of `wanted`."""
        if self.quotas is None:
            return {ALL: self.kept}
        return {band: self.kept_by_band.get(band, 0) for band in self.quotas}

    def missing(self) -> dict[str, int]:
        """Rows still needed, by key, for the keys not yet filled."""
        have = self.have()
        return {key: want - have[key] for key, want in self.wanted().items() if have[key] < want}

    @property
    def met(self) -> bool:
        return not self.missing()

    @property
    def rows(self) -> int:
        """Rows in the dataset: the target, or fewer when the seeds ran out first."""
        have = self.have()
        return sum(min(have[key], want) for key, want in self.wanted().items())

    def to_dict(self) -> dict[str, Any]:
        body = {"target_rows": self.target_rows, "rows": self.rows, "kept_before_cut": self.kept, "met": self.met,
                "beyond_target": max(0, self.kept - self.rows), "seeds_drawn": self.seeds_drawn,
                "seeds_available": self.seeds_available}
        if self.quotas is not None:
            body.update(band_quotas=self.quotas, kept_by_band=self.have())
        return body

    def message(self) -> str:
        """One line for the end of a run."""
        bands = ""
        if self.quotas is not None:
            have = self.have()
            bands = " (" + ", ".join(f"{band} {min(have[band], want)} of {want}" for band, want in self.quotas.items()) + ")"
        if self.met:
            return f"target reached: {self.target_rows} rows{bands} from {self.seeds_drawn} of {self.seeds_available} seeds"
        return (f"target not reached: {self.rows} of {self.target_rows} rows{bands}; the seeds ran out after all "
                f"{self.seeds_available} were drawn (add seeds, or raise --limit)")


class RowCut:
    """Decides, row by row in seed order, which kept rows the dataset takes: the first N (or each band's quota)."""

    def __init__(self, target_rows: int, quotas: dict[str, int] | None = None) -> None:
        self.progress = TargetProgress(target_rows, quotas=quotas)
        self.taken: dict[str, int] = {}

    def admit(self, row: dict[str, Any]) -> bool:
        """Whether `row` goes in the dataset (else it is a ``beyond_target`` drop)."""
        key = ALL if self.progress.quotas is None else row.get("difficulty")
        want = self.progress.wanted().get(key, 0)  # type: ignore[arg-type]
        if self.taken.get(key, 0) >= want:  # type: ignore[arg-type]
            return False
        self.taken[key] = self.taken.get(key, 0) + 1  # type: ignore[index]
        return True

    def why(self, row: dict[str, Any]) -> str:
        if self.progress.quotas is None:
            return f"the target is {self.progress.target_rows} rows"
        band = row.get("difficulty")
        return f"band {band}: its quota of {self.progress.quotas.get(band, 0)} rows is filled" if band in self.progress.quotas else \
            f"band {band} has no share in --band-shares"


def check_band_shares(shares: Any, target_rows: int | None) -> dict[str, float] | None:
    """`band_shares` checked: None, or shares of bands that sum to 1, with a row target.

    Raises:
        ConfigError: one sentence naming what is wrong.
    """
    if shares is None:
        return None
    from orca_math.pipeline.difficulty import BANDS

    if target_rows is None:
        raise ConfigError("band shares fill each band to its share of a row target: add --target-rows N (target_rows=).")
    if not isinstance(shares, Mapping) or not shares:
        raise ConfigError(f"band shares take band=share pairs such as hard=0.5,medium=0.3,easy=0.2, not {shares!r}.")
    unknown = [band for band in shares if band not in BANDS]
    if unknown:
        raise ConfigError(f"band shares name unknown band(s) {', '.join(map(str, unknown))}; use {', '.join(BANDS)}.")
    for band, share in shares.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ConfigError(f"the share of band {band} must be a number in (0, 1], not {share!r}.")
    if abs(sum(shares.values()) - 1) > 1e-6:
        raise ConfigError(f"band shares must add up to 1, not {sum(shares.values()):g}.")
    return {band: float(share) for band, share in shares.items()}


def parse_band_shares(text: str) -> dict[str, float]:
    """``"hard=0.5,medium=0.3,easy=0.2"`` as a dict (checked later by `check_band_shares`).

    Raises:
        ConfigError: a part that is not BAND=NUMBER.
    """
    shares: dict[str, float] = {}
    for part in text.split(","):
        band, sep, value = part.partition("=")
        try:
            shares[band.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not band.strip():
            raise ConfigError(f"--band-shares takes BAND=SHARE pairs such as hard=0.5,medium=0.3,easy=0.2; got {part!r}.")
    return shares


def band_quotas(target_rows: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Rows per band for `target_rows`: each band's share, rounded so that they add up to the target."""
    exact = {band: target_rows * share for band, share in shares.items()}
    quotas = {band: math.floor(value) for band, value in exact.items()}
    by_remainder = sorted(shares, key=lambda band: (-(exact[band] - quotas[band]), list(shares).index(band)))
    for band in by_remainder[: target_rows - sum(quotas.values())]:
        quotas[band] += 1
    return quotas


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
    # Only one stage's keys are held, never its rows: at 200K problems the rows are hundreds of MB.
    keys: list[str] = [stages[0].key({"id": seed_id}) for seed_id in seed_ids]
    for index, stage in enumerate(stages):
        outputs = (output for _, record in run.checkpoint(stage.name).in_key_order(keys) if record is not None
                   for output in record.get("outputs") or ())
        if index == len(stages) - 1:
            yield from outputs
            return
        keys = [stages[index + 1].key(row) for row in outputs]


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


def tally(progress: TargetProgress, seed_ids: Sequence[str], rows: Iterable[dict[str, Any]]) -> dict[str, int] | None:
    """Count a wave's kept rows into `progress`; return the most rows one seed gave, by key (None: ids name no seed)."""
    ids, keys = [], []
    for row in rows:
        ids.append(row["id"])
        keys.append(ALL if progress.quotas is None else row.get("difficulty"))
    progress.kept = len(ids)
    if progress.quotas is not None:
        progress.kept_by_band = {band: keys.count(band) for band in progress.quotas}
    most: dict[str, int] = {}
    for key in progress.wanted():
        per_seed = rows_per_seed(seed_ids, (row_id for row_id, k in zip(ids, keys, strict=True) if k == key))
        if per_seed is None:
            return None
        most[key] = max(per_seed, default=0)
    return most


def next_draw(progress: TargetProgress, most: dict[str, int] | None, *, batch: bool) -> int:
    """How many seeds the next wave runs in all (a prefix length), given what the run has kept so far.

    Args:
        progress: what the waves so far kept.
        most: the most rows one seed gave so far, by key (`ALL`, or each band); None when unknown.
        batch: waves are provider batches: draw by the mean yield, plus `BATCH_MARGIN`.
    """
    drawn = progress.seeds_drawn
    if drawn == 0:
        first = math.ceil(progress.target_rows / 10) if batch else 1
        return min(progress.seeds_available, max(1, first))
    have = progress.have()
    more = 1
    for key, needed in progress.missing().items():
        if have[key] == 0:
            wave = drawn  # nothing of it kept yet: no yield to go by, so double
        elif batch:
            wave = math.ceil(needed * (1 + BATCH_MARGIN) * drawn / have[key])
        else:
            # Rows still needed over the most one seed gave: these seeds cannot overshoot this key.
            largest = most.get(key, 0) if most is not None else math.ceil(2 * have[key] / drawn)
            wave = min(needed // max(1, largest), drawn)  # the most is learned from the seeds so far: at most double them
        more = max(more, wave)
    return min(progress.seeds_available, drawn + more)


async def run_to_target(
    run_wave: Callable[[int], Any],
    *,
    run_dir: Path,
    target_rows: int,
    seeds_available: int,
    seed_ids: Callable[[int], list[str]],
    final_rows: Callable[[Any, int], Iterable[dict[str, Any]]],
    quotas: dict[str, int] | None = None,
    batch: bool = False,
) -> tuple[Any, TargetProgress]:
    """Run waves over growing seed prefixes until `target_rows` rows are kept or the seeds run out.

    Args:
        run_wave: runs the job over the first n seeds and returns its `JobRun`.
        run_dir: the run's folder, where ``target.json`` records the seeds drawn.
        target_rows: the rows asked for.
        seeds_available: seeds in the source.
        seed_ids: the ids of the first n seeds, in order.
        final_rows: a finished wave's kept rows in seed order, given the wave and its n.
        quotas: rows per difficulty band, or None.
        batch: calls go out as provider batches (draw by the mean yield, with a margin).

    Returns:
        The last wave's `JobRun` and the `TargetProgress`.
    """
    state_path = Path(run_dir) / TARGET_FILE
    state = read_json(state_path) if state_path.is_file() else {}
    progress = TargetProgress(target_rows, quotas=quotas, seeds_available=seeds_available)
    # A rerun first finishes (or just re-reads) what the last run drew: no call is made twice.
    draw = min(int(state.get("seeds_drawn", 0)), seeds_available) or next_draw(progress, None, batch=batch)
    earlier = None
    while True:
        write_json(state_path, {"target_rows": target_rows, "band_quotas": quotas, "seeds_drawn": draw})
        finished = await run_wave(draw)
        if earlier is not None:  # the funnel's time (and each stage's) is the whole run's, every wave's
            finished.funnel.add_time(earlier)
        earlier = finished.funnel
        progress.seeds_drawn, progress.waves = draw, progress.waves + 1
        most = tally(progress, seed_ids(draw), final_rows(finished, draw))
        if progress.met or draw >= seeds_available:
            return finished, progress
        draw = next_draw(progress, most, batch=batch)


__all__ = ["ALL", "BEYOND_TARGET", "TARGET_FILE", "RowCut", "TargetProgress", "band_quotas", "check_band_shares",
           "check_target_executor", "check_target_rows", "next_draw", "parse_band_shares", "rows_in_seed_order",
           "rows_per_seed", "run_to_target", "tally"]
