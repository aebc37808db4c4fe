"""The learning loop's inputs: its problems, the hold-out split, and the checks of its settings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from orca_math.answers import extract_final_answer
from orca_math.engine.folder import RUNS_DIR, content_fingerprint
from orca_math.errors import ConfigError, RunFolderError
from orca_math.learn.sampling import problem_rows
from orca_math.learn.trainers import Trainer

EvalFunction = Callable[[Path, int], Any]  # (checkpoint, iteration) -> {name: accuracy}, or an awaitable of it
EvalSpec = float | tuple[Sequence[str] | str, int | None] | EvalFunction | None


@dataclass
class IterationResult:
    """What one iteration produced.

    Attributes:
        iteration: 1 for SFT, 2, 3, ... for the preference rounds.
        method: "sft", "kto" or "dpo".
        model: the checkpoint folder of this iteration's model.
        benchmarks: accuracy (0-1) per evaluation name ("holdout" or benchmark names).
        details: counts from the steps (samples, labels, preference stats, evaluation counts).
    """

    iteration: int
    method: str
    model: Path
    benchmarks: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "method": self.method, "model": str(self.model),
                "benchmarks": self.benchmarks, "details": self.details}


def problems_of(data: Any) -> list[dict[str, str]]:
    """The loop's problems as ``{"id", "question", "answer"}`` rows, from rows with ids or any seed source."""
    from orca_math.data.seeds import read_seeds

    if isinstance(data, Sequence) and not isinstance(data, str) and data and isinstance(data[0], Mapping) \
            and all("id" in row for row in data):
        return problem_rows(data)
    return problem_rows({"id": p.id, "question": p.question, "answer": p.gold_solution, "pass_rate": p.metadata.get("pass_rate")}
                        for p in read_seeds(data, require_answers=True))


def split_holdout(rows: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """Train and held-out problems: a stable share of the problems whose teacher solution states an answer."""
    if not fraction:
        return rows, []
    # Only problems whose teacher solution states a final answer can be scored.
    scorable = [r for r in rows if extract_final_answer(r["answer"]).value is not None]
    ranked = sorted(scorable, key=lambda r: hashlib.sha256(f"holdout:{r['id']}".encode()).hexdigest())
    held = {r["id"] for r in ranked[: max(1, round(fraction * len(rows)))]}
    train = [r for r in rows if r["id"] not in held]
    if not held or not train:
        raise ConfigError(f"A hold-out share of {fraction} of {len(rows)} problems leaves no training or no "
                          "held-out problem; use more data or another share.")
    return train, [r for r in rows if r["id"] in held]


def check_eval(value: Any) -> EvalSpec:
    """An `IterativeLearner` eval setting, checked and normalised."""
    if value is None or callable(value):
        return value
    if isinstance(value, float | int) and not isinstance(value, bool):
        if not 0 < value < 1:
            raise ConfigError(f"eval={value!r}: a hold-out share must be between 0 and 1.")
        return float(value)
    if isinstance(value, tuple) and len(value) == 2:
        names, limit = value
        return ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names), limit)
    raise ConfigError(f"eval={value!r}: use a hold-out share, (benchmarks, limit), a function or None.")


def check_trainers(trainers: Mapping[str, Any]) -> dict[str, Trainer]:
    """Trainer overrides by kind, checked against the `Trainer` protocol."""
    unknown = sorted(set(trainers) - {"sft", "dpo", "kto"})
    if unknown:
        raise ConfigError(f"Unknown trainer kind {', '.join(map(repr, unknown))}: use 'sft', 'dpo' or 'kto'.")
    for kind, trainer in trainers.items():
        if not isinstance(trainer, Trainer):
            raise TypeError(f"trainers[{kind!r}] has no train(dataset, output_dir, preset, *, model, ref_model) method.")
    return dict(trainers)


def data_id(data: Any) -> str:
    """What identifies the loop's data in its settings: a path, a dataset fingerprint, or a content hash."""
    if isinstance(data, str | Path):
        return str(data)
    if isinstance(data, datasets.Dataset):
        return f"Dataset:{data._fingerprint}"
    if isinstance(data, datasets.DatasetDict):
        return "DatasetDict:" + ",".join(f"{name}={split._fingerprint}" for name, split in data.items())
    return content_fingerprint(list(data))


async def close_resource(resource: Any) -> None:
    """Close a client (async close) or a response cache (sync close)."""
    closing = resource.close()
    if hasattr(closing, "__await__"):
        await closing


def refuse_marker_layout(out: Path) -> None:
    """A loop folder from the release that wrote `<step>.done.json` markers cannot be resumed: say so once."""
    if out.is_dir() and (any(out.glob("iteration-*/*.done.json")) or (out / "data" / "train.jsonl.done").exists()):
        raise RunFolderError(f"{out} holds a learning loop written by an older orca-math layout (step marker files); "
                             "point --out at a new folder to start again.")
    if (out / RUNS_DIR).is_dir():
        raise RunFolderError(f"{out} holds another command's run folder, not a learning loop; point --out at a new folder.")


__all__ = ["EvalFunction", "EvalSpec", "IterationResult", "check_eval", "check_trainers", "close_resource", "data_id", "problems_of",
           "refuse_marker_layout", "split_holdout"]
