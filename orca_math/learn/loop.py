"""The Orca-Math iterative learning loop: SFT, then rounds of sample -> label -> preferences -> KTO/DPO.

* Iteration 1: SFT of the base model on the teacher's solutions -> M1.
* Iteration n >= 2: sample `samples_per_problem` responses per problem from M(n-1) (temperature 0.7,
  top_p 0.95), label them against the teacher's solutions, build preference data (positives: the
  teacher's solution and the correct responses; negatives: the wrong ones, borrowed from other
  problems when a problem has none), train M(n-1) with KTO (or DPO) -> Mn.
* After each iteration: evaluate Mn on a held-out split, on benchmarks, or with your own function.

Every step writes its outputs into ``out/iteration-<n>/<step>`` and then a marker file
``out/iteration-<n>/<step>.done.json``, last. Running the same learner again skips every step with a
marker, and sampling and labelling also resume inside a step, so a stopped loop continues where it
stopped. `docs/learning.md` lists the files.

    learner = IterativeLearner("ckpt/base", "data/orca-200k", out="runs/loop", preset="mistral-7b")
    results = learner.run_sync()
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets

from orca_math._sync import run_sync
from orca_math.answers import check_answer, extract_final_answer
from orca_math.grading import AnswerGrader
from orca_math.learn.formats import sft_dataset
from orca_math.learn.labelling import describe_grader, label_attempts, read_attempts
from orca_math.learn.preferences import PreferenceOptions, build_preferences
from orca_math.learn.presets import TrainingPreset, get_preset
from orca_math.learn.sampling import check_sampling, problem_rows, sample_responses
from orca_math.learn.trainers import Trainer, get_trainer
from orca_math.models import ModelLike
from orca_math.models.identity import checkpoint_fingerprint, local_checkpoint

logger = logging.getLogger(__name__)

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


def default_sampler(checkpoint: Path, *, max_new_tokens: int = 1024) -> ModelLike:
    """The default student client: the checkpoint through transformers in the Orca prompt format."""
    import torch

    from orca_math.models.hf import TransformersChatCompletionClient

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return TransformersChatCompletionClient(checkpoint, prompt_format="orca", device=device,
                                            max_new_tokens=max_new_tokens)


class IterativeLearner:
    """Runs the Orca-Math loop over a base model and question/answer data, resumably.

    Args:
        base_model: the model folder (or Hub id) iteration 1 fine-tunes.
        data: ``question``/``answer`` rows (the answer is the teacher's solution): a `datasets.Dataset`,
            a list of dicts, or a file/folder `orca_math.data.read_seeds` reads.
        out: the loop's folder (see the module docstring).
        preset: "tiny", "mistral-7b" or a `TrainingPreset`.
        preference_method: "kto" (the paper's best) or "dpo".
        iterations: total iterations, SFT included (the paper: 3). Rerunning with more continues.
        samples_per_problem: responses sampled per problem (the paper: 4).
        grader: labels the samples; default ``AnswerGrader(mode="exact")``. The paper used GPT-4:
            pass ``AnswerGrader(strong_model, mode="hybrid")`` for that.
        sampler_model_factory: checkpoint folder -> the model to sample it with (a spec or a client;
            a client is not closed here). Default: `default_sampler`, ``hf:`` in the Orca format. To
            sample a served checkpoint, return its vLLM URL.
        eval: after each iteration: a float in (0, 1) holds out that share of the problems (never
            trained on) and scores greedy answers against the teacher's final answers; a tuple
            ``(benchmarks, limit)`` runs `orca_math.evaluate` (with the grader's mode); a function
            ``(checkpoint, iteration) -> {name: accuracy}`` (may be async); None skips evaluation.
        trainers: overrides for "sft", "dpo" and "kto": any object implementing `Trainer`.
        temperature, top_p, max_tokens: sampling parameters of iterations 2+ (the paper: 0.7, 0.95).
        preference_options: how preference rows are built (default: the paper's recipe).
        balance_kto_weights: when the preset leaves both KTO weights at 1, use the weights
            `PreferenceStats` suggests for the desirable/undesirable ratio.
        concurrency: samples and gradings in flight at once.
        benchmarks_dir: local benchmark copies for a ``(benchmarks, limit)`` evaluation.
        progress: show progress bars.

    Raises:
        ValueError: a bad argument, or `out` holds a loop run with different settings.
    """

    def __init__(self, base_model: str | Path, data: Any, *, out: str | Path, preset: str | TrainingPreset = "tiny",
                 preference_method: str = "kto", iterations: int = 3, samples_per_problem: int = 4,
                 grader: AnswerGrader | None = None, sampler_model_factory: Callable[[Path], ModelLike] | None = None,
                 eval: EvalSpec = 0.1, trainers: Mapping[str, Trainer] | None = None, temperature: float = 0.7,
                 top_p: float = 0.95, max_tokens: int = 1024, preference_options: PreferenceOptions | None = None,
                 balance_kto_weights: bool = True, concurrency: int = 8, benchmarks_dir: str | Path | None = None,
                 progress: bool = True) -> None:
        if preference_method not in ("kto", "dpo"):
            raise ValueError(f"preference_method={preference_method!r}: use 'kto' or 'dpo'.")
        for name, value in (("iterations", iterations), ("samples_per_problem", samples_per_problem)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}.")
        check_sampling(k=samples_per_problem, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                       concurrency=concurrency)
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(self.preset, TrainingPreset):
            raise TypeError(f"preset must be a preset name or a TrainingPreset, not {type(preset).__name__}.")
        self.trainers = _check_trainers(trainers or {})
        self.eval = _check_eval(eval)
        self.base_model = str(base_model)
        # A generator would be used up by the settings check; keep what it yields.
        self.data = data if isinstance(data, str | Path | datasets.Dataset | datasets.DatasetDict) else list(data)
        self.out = Path(out)
        self.preference_method = preference_method
        self.iterations = iterations
        self.samples_per_problem = samples_per_problem
        self.grader = grader if grader is not None else AnswerGrader(mode="exact")
        self.sampler_model_factory = sampler_model_factory or (lambda ckpt: default_sampler(ckpt, max_new_tokens=max_tokens))
        self.sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        self.preference_options = preference_options or PreferenceOptions()
        self.balance_kto_weights = balance_kto_weights
        self.concurrency = concurrency
        self.benchmarks_dir = benchmarks_dir
        self.progress = progress

    # ------------------------------------------------------------------ the loop

    async def run(self) -> list[IterationResult]:
        """Run (or continue) every iteration; returns one `IterationResult` per iteration."""
        train, holdout = self._prepare_data()
        results: list[IterationResult] = []
        model = Path(self.base_model)
        for iteration in range(1, self.iterations + 1):
            folder = self.out / f"iteration-{iteration}"
            details: dict[str, Any] = {}
            if iteration == 1:
                method = "sft"
                model = self._train_step(folder, "sft", partial(sft_dataset, train), model)
            else:
                method = self.preference_method
                data_dir = await self._preference_steps(folder, model, train, details)
                model = self._train_step(folder, method, partial(datasets.load_from_disk, str(data_dir / method)), model)
            scores = await self._eval_step(folder, model, iteration, holdout, details)
            results.append(IterationResult(iteration, method, model, scores, details))
            self._write_tables(results)
        return results

    def run_sync(self) -> list[IterationResult]:
        """Synchronous `run`; also works inside a running event loop such as Jupyter's."""
        return run_sync(self.run())

    async def _preference_steps(self, folder: Path, model: Path, train: list[dict], details: dict) -> Path:
        if not _done(folder, "sample"):
            sampler = self.sampler_model_factory(model)
            await sample_responses(sampler, train, k=self.samples_per_problem, out=folder / "samples",
                                   concurrency=self.concurrency, progress=self.progress, **self.sampling)
            _mark(folder, "sample", _read_json(folder / "samples" / "sampling.json"))
        details["samples"] = _marker(folder, "sample")
        if not _done(folder, "label"):
            await label_attempts(folder / "samples" / "attempts.jsonl", grader=self.grader, out=folder / "labels",
                                 concurrency=self.concurrency, progress=self.progress)
            _mark(folder, "label", _read_json(folder / "labels" / "labelling.json"))
        details["labels"] = _marker(folder, "label")
        data_dir = folder / "preferences"
        if not _done(folder, "preferences"):
            data = build_preferences(read_attempts(folder / "labels" / "labelled.jsonl"), self.preference_options)
            if len(getattr(data, self.preference_method)) == 0:
                raise ValueError(f"{folder.name} produced no {self.preference_method.upper()} rows "
                                 f"({json.dumps(data.stats.to_dict())}); check the labels in {folder / 'labels'}.")
            shutil.rmtree(data_dir, ignore_errors=True)
            for kind in ("dpo", "kto", "sft"):
                getattr(data, kind).save_to_disk(str(data_dir / kind))
            _mark(folder, "preferences", data.stats.to_dict())
        details["preferences"] = _marker(folder, "preferences")
        return data_dir

    def _train_step(self, folder: Path, kind: str, dataset: Callable[[], datasets.Dataset], model: Path) -> Path:
        if not _done(folder, "train"):
            preset = self._preset_for(kind, _marker(folder, "preferences") if kind == "kto" else {})
            output_dir = folder / "model"
            shutil.rmtree(output_dir, ignore_errors=True)  # a partial checkpoint from an interrupted run
            trainer = self.trainers.get(kind) or get_trainer(kind)
            started = time.perf_counter()
            checkpoint = trainer.train(dataset(), output_dir, preset, model=model)
            _mark(folder, "train", {"method": kind, "model": str(checkpoint), "base": str(model),
                                    "seconds": round(time.perf_counter() - started, 1),
                                    "preset": dataclasses.asdict(preset)})
        return Path(_marker(folder, "train")["model"])

    def _preset_for(self, kind: str, stats: Mapping[str, Any]) -> TrainingPreset:
        preset = self.preset
        default_weights = preset.kto_desirable_weight == 1.0 and preset.kto_undesirable_weight == 1.0
        if kind == "kto" and self.balance_kto_weights and default_weights and stats:
            preset = dataclasses.replace(preset, kto_desirable_weight=stats["suggested_desirable_weight"],
                                         kto_undesirable_weight=stats["suggested_undesirable_weight"])
        return preset

    async def _eval_step(self, folder: Path, model: Path, iteration: int, holdout: list[dict], details: dict):
        if self.eval is None:
            return {}
        if not _done(folder, "eval"):
            if isinstance(self.eval, float):
                result = await self._eval_holdout(folder / "eval", model, holdout)
            elif isinstance(self.eval, tuple):
                result = await self._eval_benchmarks(folder / "eval", model)
            else:
                scores = self.eval(model, iteration)
                scores = await scores if inspect.isawaitable(scores) else scores
                result = {"benchmarks": {str(k): (None if v is None else float(v)) for k, v in dict(scores).items()}}
            _mark(folder, "eval", result)
        marker = _marker(folder, "eval")
        details["eval"] = {k: v for k, v in marker.items() if k != "benchmarks"}
        return marker["benchmarks"]

    async def _eval_holdout(self, out: Path, model: Path, holdout: list[dict]) -> dict[str, Any]:
        sampler = self.sampler_model_factory(model)
        path = await sample_responses(sampler, holdout, k=1, temperature=0.0, top_p=1.0, out=out, seed=False,
                                      max_tokens=self.sampling["max_tokens"], concurrency=self.concurrency,
                                      progress=self.progress)
        answers = {row["problem_id"]: row["response"] for row in map(json.loads, path.read_text().splitlines())}
        correct = sum(
            1 for row in holdout if row["id"] in answers
            and check_answer(extract_final_answer(row["answer"]).value, answers[row["id"]]).result == "equal"
        )
        return {"benchmarks": {"holdout": correct / len(holdout)}, "holdout": len(holdout), "correct": correct,
                "failed": len(holdout) - len(answers)}

    async def _eval_benchmarks(self, out: Path, model: Path) -> dict[str, Any]:
        from orca_math.evaluate import evaluate

        names, limit = self.eval  # type: ignore[misc]
        agent = self.grader.grader
        result = await evaluate(self.sampler_model_factory(model), names, limit=limit, grader=self.grader.mode,
                                grader_model=agent.client if agent is not None else None, out=out,
                                path=self.benchmarks_dir, concurrency=self.concurrency, progress=self.progress,
                                sampling={"temperature": 0.0, "max_tokens": self.sampling["max_tokens"]})
        scores = {name: result.summary.pass_at_1(name) for name in result.summary.scores}
        return {"benchmarks": scores, "summary": str(result.files.get("summary", ""))}

    # ------------------------------------------------------------------ data and outputs

    def _prepare_data(self) -> tuple[list[dict], list[dict]]:
        data_dir = self.out / "data"
        settings = self._settings()
        saved = self.out / "learner.json"
        if saved.exists():
            previous = json.loads(saved.read_text(encoding="utf-8"))
            if previous != settings:
                changed = sorted(k for k in settings if previous.get(k) != settings[k])
                raise ValueError(f"{self.out} holds a loop run with other settings ({', '.join(changed)}); "
                                 "use a new out folder, or the same settings to resume.")
        if not (data_dir / "train.jsonl.done").exists():
            rows = _problems(self.data)
            train, holdout = _split(rows, self.eval if isinstance(self.eval, float) else 0.0)
            for name, part in (("train", train), ("holdout", holdout)):
                _write_jsonl(data_dir / f"{name}.jsonl", part)
            self.out.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
            (data_dir / "train.jsonl.done").write_text(_fingerprint(rows) + "\n", encoding="utf-8")
        read = [[json.loads(line) for line in (data_dir / f"{n}.jsonl").read_text().splitlines() if line.strip()]
                for n in ("train", "holdout")]
        return read[0], read[1]

    def _settings(self) -> dict[str, Any]:
        eval_setting = self.eval if not callable(self.eval) else getattr(self.eval, "__qualname__", "function")
        return json.loads(json.dumps({
            "base_model": self.base_model, "base_model_checkpoint": _checkpoint_id(self.base_model),
            "preset": dataclasses.asdict(self.preset),
            "preference_method": self.preference_method, "samples_per_problem": self.samples_per_problem,
            "sampling": self.sampling, "preference_options": dataclasses.asdict(self.preference_options),
            "grader": describe_grader(self.grader), "eval": eval_setting, "data": _data_id(self.data),
        }, default=str))

    def _write_tables(self, results: list[IterationResult]) -> None:
        rows = [r.to_dict() for r in results]
        _write_text(self.out / "iterations.json", json.dumps(rows, indent=2, default=str) + "\n")
        summary = {"iterations": [{k: r[k] for k in ("iteration", "model", "benchmarks", "method")} for r in rows]}
        _write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        _write_text(self.out / "iterations.md", iterations_table(results) + "\n")


def iterations_table(results: Sequence[IterationResult]) -> str:
    """Accuracy per iteration as a Markdown table."""
    names = list(dict.fromkeys(name for r in results for name in r.benchmarks))
    lines = ["| iteration | method | model | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for r in results:
        cells = ["-" if r.benchmarks.get(n) is None else f"{100 * r.benchmarks[n]:.1f}%" for n in names]
        lines.append(f"| {r.iteration} | {r.method} | {r.model} | " + " | ".join(cells) + " |")
    return "\n".join(line.replace("|  |", "|") for line in lines)


def _problems(data: Any) -> list[dict[str, str]]:
    from orca_math.data.seeds import read_seeds

    if isinstance(data, Sequence) and not isinstance(data, str) and data and isinstance(data[0], Mapping) \
            and all("id" in row for row in data):
        return problem_rows(data)
    return problem_rows({"id": p.id, "question": p.question, "answer": p.gold_solution}
                        for p in read_seeds(data, require_answers=True))


def _split(rows: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    if not fraction:
        return rows, []
    # Only problems whose teacher solution states a final answer can be scored.
    scorable = [r for r in rows if extract_final_answer(r["answer"]).value is not None]
    ranked = sorted(scorable, key=lambda r: hashlib.sha256(f"holdout:{r['id']}".encode()).hexdigest())
    held = {r["id"] for r in ranked[: max(1, round(fraction * len(rows)))]}
    train = [r for r in rows if r["id"] not in held]
    if not held or not train:
        raise ValueError(f"A hold-out share of {fraction} of {len(rows)} problems leaves no training or no "
                         "held-out problem; use more data or another share.")
    return train, [r for r in rows if r["id"] in held]


def _check_eval(value: Any) -> EvalSpec:
    if value is None or callable(value):
        return value
    if isinstance(value, float | int) and not isinstance(value, bool):
        if not 0 < value < 1:
            raise ValueError(f"eval={value!r}: a hold-out share must be between 0 and 1.")
        return float(value)
    if isinstance(value, tuple) and len(value) == 2:
        names, limit = value
        return ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names), limit)
    raise ValueError(f"eval={value!r}: use a hold-out share, (benchmarks, limit), a function or None.")


def _check_trainers(trainers: Mapping[str, Any]) -> dict[str, Trainer]:
    unknown = sorted(set(trainers) - {"sft", "dpo", "kto"})
    if unknown:
        raise ValueError(f"Unknown trainer kind {', '.join(map(repr, unknown))}: use 'sft', 'dpo' or 'kto'.")
    for kind, trainer in trainers.items():
        if not isinstance(trainer, Trainer):
            raise TypeError(f"trainers[{kind!r}] has no train(dataset, output_dir, preset, *, model, ref_model) method.")
    return dict(trainers)


def _data_id(data: Any) -> str:
    if isinstance(data, str | Path):
        return str(data)
    if isinstance(data, datasets.Dataset):
        return f"Dataset:{data._fingerprint}"
    if isinstance(data, datasets.DatasetDict):
        return "DatasetDict:" + ",".join(f"{name}={split._fingerprint}" for name, split in data.items())
    return _fingerprint(list(data))


def _checkpoint_id(model: str) -> str | None:
    """The base model's weights (`checkpoint_fingerprint`) when it is a local folder; None for a Hub id."""
    path = local_checkpoint(model)
    return checkpoint_fingerprint(path) if path is not None else None


def _fingerprint(rows: list[Any]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _done(folder: Path, step: str) -> bool:
    return (folder / f"{step}.done.json").exists()


def _mark(folder: Path, step: str, info: Mapping[str, Any]) -> None:
    _write_text(folder / f"{step}.done.json", json.dumps(dict(info), indent=2, default=str) + "\n")


def _marker(folder: Path, step: str) -> dict[str, Any]:
    return _read_json(folder / f"{step}.done.json") if _done(folder, step) else {}


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    _write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # atomic: a marker or table is whole or absent


__all__ = ["IterationResult", "IterativeLearner", "default_sampler", "iterations_table"]
