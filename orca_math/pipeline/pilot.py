"""Cost per kept row before the run: a pilot on a few seeds, projected to a row target.

``generate --dry-run --pilot 50 --target-rows 10000`` runs the whole recipe for real on the first 50
seeds (in ``OUT/pilot``, with the response cache of ``OUT``, so the real run gets those replies
for free), measures each stage's yield, calls, tokens and failures, and projects the calls, tokens,
cost and wall time the target needs:

* **online**, at the model's price (``--price``);
* **batch**, at the batch price (half, by default);
* **self-hosted**, from the pilot's measured throughput (tokens per second at the run's concurrency)
  and, with ``--hourly-usd``, the endpoint's price per hour.

The range is a 90% bootstrap interval over the pilot's seeds (each seed's rows and calls resampled),
so a pilot of 50 seeds whose yields vary a lot says so. The projection goes to ``OUT/estimate.json``;
after the real run, the dataset card shows the actual cost per kept row next to it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orca_math.files import read_json, write_json

ESTIMATE_FILE = "estimate.json"
PILOT_DIR = "pilot"
#: Bootstrap resamples of the pilot's seeds for the range, and its fixed seed (the same pilot gives the same range).
RESAMPLES = 1000
RANGE = (0.05, 0.95)


@dataclass
class SeedTally:
    """What one pilot seed cost and gave: its kept rows (by difficulty band too), calls, tokens and priced USD over every stage."""

    rows: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    rows_by_band: dict[str, int] = field(default_factory=dict)


@dataclass
class Projection:
    """A pilot's measurements and what they project for a row target.

    Attributes:
        pilot_seeds: seeds the pilot ran.
        target_rows: the rows projected for.
        rows_per_seed: kept rows per seed in the pilot.
        stages: per stage: inputs, outputs, yield (outputs / inputs), calls, tokens per call, failure rate.
        seeds: seeds the target needs, with its range.
        calls, prompt_tokens, completion_tokens: projected totals (``{"expected", "low", "high"}``).
        cost_usd: projected cost by call mode: ``online``, ``batch``, ``self_hosted`` (None where no price is known).
        cost_per_row_usd: the same, per kept row.
        wall_seconds: projected wall time online at the pilot's concurrency, and self-hosted.
        tokens_per_second: the pilot's measured throughput (prompt + completion tokens).
        model: the priced model's name.
        band_quotas: with ``--band-shares``, the rows asked of each band (the seeds are those the
            scarcest band needs).
        cached_share: share of the pilot's calls served from the cache (a rerun pilot measures less time).
    """

    pilot_seeds: int
    target_rows: int
    rows_per_seed: float
    stages: list[dict[str, Any]]
    seeds: dict[str, float]
    calls: dict[str, float]
    prompt_tokens: dict[str, float]
    completion_tokens: dict[str, float]
    cost_usd: dict[str, dict[str, float] | None]
    cost_per_row_usd: dict[str, dict[str, float] | None]
    wall_seconds: dict[str, dict[str, float] | None]
    tokens_per_second: float
    model: str
    cached_share: float = 0.0
    notes: list[str] = field(default_factory=list)
    band_quotas: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        """One table: calls, tokens, cost and time for the target, expected with its 90% range."""
        def cell(values: dict[str, float] | None, money: bool = False, unit: str = "") -> str:
            if values is None:
                return "n/a (no price)"
            form = (lambda v: f"${v:,.2f}" if v >= 1 else f"${v:.6f}") if money else (lambda v: f"{v:,.0f}{unit}")
            return f"{form(values['expected'])} ({form(values['low'])} - {form(values['high'])})"

        lines = [f"pilot: {self.pilot_seeds} seeds, {self.rows_per_seed:.2f} kept rows per seed; "
                 f"projection for --target-rows {self.target_rows} (90% range from the pilot's spread)"]
        if self.band_quotas is not None:
            lines.append("band quotas: " + ", ".join(f"{band} {rows}" for band, rows in self.band_quotas.items())
                         + " (the seeds are those the scarcest band needs)")
        lines.append("")
        header = f"{'stage':<16}{'in':>7}{'out':>7}{'yield':>8}{'calls':>8}{'tok/call':>10}{'failed':>8}"
        lines += [header, "-" * len(header)]
        for s in self.stages:
            lines.append(f"{s['name']:<16}{s['inputs']:>7}{s['outputs']:>7}{s['yield']:>8.2f}{s['calls']:>8}"
                         f"{s['tokens_per_call']:>10.0f}{s['failure_rate']:>8.1%}")
        lines += ["", f"{'':<18}expected (90% range)",
                  f"{'seeds':<18}{cell(self.seeds)}",
                  f"{'calls':<18}{cell(self.calls)}",
                  f"{'tokens in':<18}{cell(self.prompt_tokens)}",
                  f"{'tokens out':<18}{cell(self.completion_tokens)}"]
        for mode in ("online", "batch", "self_hosted"):
            lines.append(f"{'cost ' + mode:<18}{cell(self.cost_usd.get(mode), money=True)}   per row "
                         f"{cell(self.cost_per_row_usd.get(mode), money=True)}")
        for mode, values in self.wall_seconds.items():
            lines.append(f"{'time ' + mode:<18}{cell(values, unit=' s')}")
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def seed_of(key: str, seeds: set[str]) -> str | None:
    """The seed an item key descends from (generated ids extend their parent's with ``-suffix``)."""
    while key not in seeds and "-" in key:
        key = key.rsplit("-", 1)[0]
    return key if key in seeds else None


def tally_seeds(run: Any, stage_names: Sequence[str], seed_ids: Sequence[str], final_rows: Iterable[dict[str, Any]],
                prices: dict[str, Any] | None = None) -> list[SeedTally]:
    """Each pilot seed's kept rows, calls, tokens, failures and cost, from the run's checkpoints.

    `prices` maps a stage name to the `Price` of its model (a stage missing from it adds no cost):
    a student stage is priced at the student's price, not the teacher's.
    """
    seeds = set(seed_ids)
    tallies = {seed_id: SeedTally() for seed_id in seed_ids}
    for name in stage_names:
        for record in run.checkpoint(name).latest():
            owner = seed_of(str(record["key"]), seeds)
            if owner is None:
                continue
            usage = record.get("usage") or {}
            tally = tallies[owner]
            tally.calls += usage.get("calls", 0)
            tally.prompt_tokens += usage.get("prompt_tokens", 0)
            tally.completion_tokens += usage.get("completion_tokens", 0)
            tally.failed += record["status"] != "ok"
            price = (prices or {}).get(name)
            if price is not None:
                tally.cost_usd += price.cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    for row in final_rows:
        owner = seed_of(str(row["id"]), seeds)
        if owner is not None:
            tallies[owner].rows += 1
            band = row.get("difficulty")
            if band is not None:
                tallies[owner].rows_by_band[band] = tallies[owner].rows_by_band.get(band, 0) + 1
    return [tallies[seed_id] for seed_id in seed_ids]


def _range(samples: list[float], expected: float) -> dict[str, float]:
    ordered = sorted(samples)
    low = ordered[int(RANGE[0] * (len(ordered) - 1))]
    high = ordered[int(RANGE[1] * (len(ordered) - 1))]
    return {"expected": expected, "low": min(low, expected), "high": max(high, expected)}


def _kept(tallies: Sequence[SeedTally], key: str | None) -> int:
    return sum(t.rows if key is None else t.rows_by_band.get(key, 0) for t in tallies)


def project(tallies: Sequence[SeedTally], funnel: Any, *, target_rows: int, price: Any, batch_multiplier: float,
            hourly_usd: float | None, model: str, notes: Sequence[str] = (),
            band_quotas: dict[str, int] | None = None) -> Projection:
    """Project the pilot's per-seed tallies to `target_rows`: totals scale with the seeds the target needs.

    The seeds needed are the target over the kept rows per seed; with `band_quotas` (``--band-shares``),
    the most that any band needs: its quota over its rows per seed. `price` is the teacher's (None: the
    online and batch costs are unknown); each tally's `cost_usd` already prices every stage at its own
    model's price.
    """
    n = len(tallies)
    rows = sum(t.rows for t in tallies)
    wanted = {None: target_rows} if band_quotas is None else {band: want for band, want in band_quotas.items() if want}
    totals = {name: sum(getattr(t, name) for t in tallies) for name in ("calls", "prompt_tokens", "completion_tokens", "cost_usd")}
    notes = list(notes)
    missing = [key for key in wanted if _kept(tallies, key) == 0]
    if rows == 0:
        notes.append("the pilot kept no row, so nothing can be projected: use more pilot seeds or check the funnel")
    elif missing:
        notes.append(f"the pilot kept no row of band {', '.join(map(str, missing))}, so the seeds its share needs cannot be "
                     "projected: use more pilot seeds, or a smaller share for it")
    projectable = not missing

    def seeds_needed(sample: Sequence[SeedTally]) -> float:
        # A resample with none of a key's rows: as if half a row (a wide, finite range).
        return max(want * n / (_kept(sample, key) or 0.5) for key, want in wanted.items())

    rng = random.Random(0)
    boot: dict[str, list[float]] = {"seeds": [], **{name: [] for name in totals}}
    for _ in range(RESAMPLES if projectable else 0):
        sample = [tallies[rng.randrange(n)] for _ in range(n)]
        seeds = seeds_needed(sample)
        boot["seeds"].append(seeds)
        for name in totals:
            boot[name].append(seeds * sum(getattr(t, name) for t in sample) / n)
    seeds = seeds_needed(tallies) if projectable else 0.0
    expected = {"seeds": seeds, **{name: seeds * value / n for name, value in totals.items()}}
    ranges = {name: _range(boot[name], expected[name]) if projectable else {"expected": 0.0, "low": 0.0, "high": 0.0}
              for name in expected}
    tokens = {key: ranges["prompt_tokens"][key] + ranges["completion_tokens"][key] for key in ("expected", "low", "high")}
    seconds = max(funnel.seconds, 1e-9)
    throughput = (funnel.prompt_tokens + funnel.completion_tokens) / seconds
    cost: dict[str, dict[str, float] | None] = {"online": None, "batch": None, "self_hosted": None}
    if price is not None:
        online = dict(ranges["cost_usd"])
        cost["online"] = online
        cost["batch"] = {key: value * batch_multiplier for key, value in online.items()}
    else:
        notes.append(f"no price for model {model!r}: add --price {model}=IN,OUT (USD per million tokens)")
    wall = {"online": {key: funnel.seconds * (ranges['seeds'][key] / n) for key in tokens}}
    if throughput > 0:
        wall["self_hosted"] = {key: value / throughput for key, value in tokens.items()}
        if hourly_usd is not None:
            cost["self_hosted"] = {key: value / 3600 * hourly_usd for key, value in wall["self_hosted"].items()}
    if hourly_usd is None:
        notes.append("self-hosted cost: add --hourly-usd X (the endpoint's price per hour) to price the measured throughput")
    per_row = {mode: ({key: value / target_rows for key, value in values.items()} if values else None)
               for mode, values in cost.items()}
    stages = [{"name": s.name, "inputs": s.inputs, "outputs": s.outputs, "yield": s.outputs / s.inputs if s.inputs else 0.0,
               "calls": s.calls, "tokens_per_call": (s.prompt_tokens + s.completion_tokens) / s.calls if s.calls else 0.0,
               "failure_rate": s.failed / s.inputs if s.inputs else 0.0} for s in funnel.stages]
    cached = sum(s.cached_calls for s in funnel.stages)
    calls = sum(s.calls for s in funnel.stages)
    if cached:
        notes.append(f"{cached} of the pilot's {calls} calls came from the cache, so its wall time and throughput are optimistic")
    return Projection(pilot_seeds=n, target_rows=target_rows, rows_per_seed=rows / n if n else 0.0, stages=stages,
                      seeds=ranges["seeds"], calls=ranges["calls"], prompt_tokens=ranges["prompt_tokens"],
                      completion_tokens=ranges["completion_tokens"], cost_usd=cost, cost_per_row_usd=per_row,
                      wall_seconds=wall, tokens_per_second=throughput, model=model,
                      cached_share=cached / calls if calls else 0.0, notes=notes, band_quotas=band_quotas)


async def run_pilot(pipeline: Any, seeds: Any, *, out: str | Path, pilot: int = 50, target_rows: int,
                    seed_options: dict[str, Any] | None = None, limit: int | None = None,
                    hourly_usd: float | None = None) -> Projection:
    """Run `pipeline` for real on the first `pilot` seeds and project its cost for `target_rows`.

    The pilot runs online in ``OUT/pilot`` (its dataset, drops and funnel are there to read) with the
    response cache of ``OUT`` (the pipeline's own cache path when it names one), so the real run in
    ``OUT`` is served the pilot's replies. Rerunning the pilot resumes it. With the pipeline's
    `band_shares`, the seeds projected are those the scarcest band needs. The projection is written
    to ``OUT/estimate.json``.

    Args:
        pipeline: the `Pipeline` the real run will use (its stages, model, engine and prices).
        seeds: the seed source.
        out: the real run's output folder.
        pilot: seeds to run.
        target_rows: the rows to project for.
        seed_options: column names etc. for `read_seeds`.
        limit: the real run's seed limit (the pilot takes at most that many).
        hourly_usd: the self-hosted endpoint's price per hour, to price its projected time.

    Raises:
        ConfigError: a pilot or target that is not a whole number of at least 1.
    """
    from orca_math.data.seeds import read_seeds
    from orca_math.engine.costs import PriceTable
    from orca_math.errors import check_positive_int
    from orca_math.models.worker_loaded import name_model
    from orca_math.pipeline.difficulty import name_for_prices
    from orca_math.pipeline.pipeline import Pipeline
    from orca_math.pipeline.targets import band_quotas, rows_in_seed_order

    check_positive_int("pilot", pilot)
    check_positive_int("target_rows", target_rows)
    out = Path(out)
    count = min(pilot, limit) if limit is not None else pilot
    engine = pipeline.engine
    if engine.cache is True:  # share OUT's cache, so the real run gets the pilot's replies for free
        engine = engine.model_copy(update={"cache": out / "cache.sqlite"})
    trial = Pipeline(pipeline.stages, model=pipeline.model_spec, engine=engine, executor=pipeline.executor)
    result = await trial.run(seeds, out=out / PILOT_DIR, limit=count, seed_options=seed_options)
    options = {**(seed_options or {}), "limit": count}
    seed_ids = [problem.id for problem in read_seeds(seeds, **options)]
    run = _Checkpoints(result.run_dir)
    rows = rows_in_seed_order(run, pipeline.stages, seed_ids)
    model = await name_model(pipeline.model_spec)  # named without a call (the pilot's own run built and closed its client)
    table = PriceTable(dict(engine.prices))
    prices, notes = {}, []
    if not engine.managed or not engine.cache:
        notes.append("the response cache is off (--no-cache), so the real run pays for the pilot's calls again: "
                     "keep the cache on to have them served")
    for stage in pipeline.stages:
        name = model if stage.model_spec is None else await name_for_prices(stage.model_spec)
        prices[stage.name] = table.price(name)
        if prices[stage.name] is None and stage.model_spec is not None and stage.calls_model:
            notes.append(f"the {stage.name} stage's calls ({name}) are not priced: add --price {name}=IN,OUT to count them")
    tallies = tally_seeds(run, [stage.name for stage in pipeline.stages], seed_ids, rows, prices)
    from orca_math.engine.modes import batch_price_multiplier

    quotas = band_quotas(target_rows, pipeline.band_shares) if pipeline.band_shares is not None else None
    projection = project(tallies, result.funnel, target_rows=target_rows, price=table.price(model), notes=notes,
                         batch_multiplier=batch_price_multiplier(pipeline.batch), hourly_usd=hourly_usd, model=model,
                         band_quotas=quotas)
    write_estimate(out, projection)
    return projection


def run_pilot_sync(pipeline: Any, seeds: Any, **kwargs: Any) -> Projection:
    """Synchronous `run_pilot`; also works inside a running event loop such as Jupyter's."""
    from orca_math._sync import run_sync

    return run_sync(run_pilot(pipeline, seeds, **kwargs))


class _Checkpoints:
    """The checkpoints of a finished run folder, read without opening (and locking) it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def checkpoint(self, stage: str):
        from orca_math.engine.checkpoint import CheckpointFile
        from orca_math.engine.folder import STAGES_DIR

        return CheckpointFile(self.run_dir / STAGES_DIR / f"{stage}.jsonl")


def write_estimate(out: str | Path, projection: Projection) -> Path:
    """Write ``OUT/estimate.json``."""
    return write_json(Path(out) / ESTIMATE_FILE, projection.to_dict())


def read_estimate(out: str | Path) -> dict[str, Any] | None:
    """``OUT/estimate.json`` when a pilot wrote one, else None."""
    path = Path(out) / ESTIMATE_FILE
    return read_json(path) if path.is_file() else None


__all__ = ["ESTIMATE_FILE", "PILOT_DIR", "Projection", "SeedTally", "project", "read_estimate", "run_pilot", "run_pilot_sync",
           "seed_of",
           "tally_seeds", "write_estimate"]
