"""Sample k responses per problem from a student model: a one-stage job on the engine.

Iteration 2 of Orca-Math samples 4 responses per problem from M1 at temperature 0.7, top_p 0.95.
Each sample is one item of the job (key ``"{problem_id}#{sample_index}"``, checkpointed as soon
as it finishes), so an interrupted sampling run resumes where it stopped and never asks again for
a sample it already has. Run folder, resume, retries, budgets, executors (local or Ray) and batch
mode are the engine's, as for every job.

    path = await sample_responses("hf:ckpt/m1", problems, k=4, out="runs/m1-samples")

The question goes out as the only user message, so the client's own prompt format applies:
``hf:<checkpoint>`` and ``vllm:<checkpoint>`` with ``prompt_format="orca"`` render
``USER: {q}\\nASSISTANT:`` (the format our SFT trains on); an OpenAI-compatible server such as
``vllm serve <checkpoint>`` applies the checkpoint's chat template (our adapters record the Orca
template in checkpoints they train).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autogen_core.models import UserMessage

from orca_math.answers import extract_final_answer
from orca_math.engine.client import SAMPLE_KEY
from orca_math.engine.config import EngineConfig
from orca_math.engine.folder import FAILURES_FILE, content_fingerprint
from orca_math.engine.items import ItemResult
from orca_math.engine.jobs import Job, JobRun, run_job, write_summary
from orca_math.engine.runner import outputs_in_order
from orca_math.engine.stage import Row, Stage
from orca_math.errors import ConfigError, check_positive_int
from orca_math.files import write_jsonl
from orca_math.models import ModelLike, ModelRef
from orca_math.models.identity import identity_of
from orca_math.records import Attempt, Usage

logger = logging.getLogger(__name__)

ATTEMPTS_FILE = "attempts.jsonl"
#: Model specs sampled in the Orca text format (our SFT's): the client renders the prompt itself.
ORCA_FORMAT_SPECS = ("hf:", "vllm:")


def sample_key(problem_id: str, sample_index: int) -> str:
    """The item key of one sample: ``"{problem_id}#{sample_index}"``."""
    return f"{problem_id}#{sample_index}"


class SampleStage(Stage):
    """One student response per item; an item is one (problem, sample index) pair.

    Reads `problem_id`, `sample_index`, `question`, `reference`; writes one `Attempt` row
    (unlabelled). The sample index goes into the cache key, so k samples are k distinct replies,
    and, where the model takes one (`ModelIdentity.supports_seed`) and `seed` allows, into the
    request as its ``seed``.

    Args:
        sampling: the sampling arguments sent with each request.
        seed: send ``seed = sample_index``: True, False, or None for "where the model takes one".
    """

    name = "sample"
    reads = ("id", "problem_id", "sample_index", "question", "reference")
    writes = ("problem_id", "sample_index", "question", "response", "reference", "final_answer")
    runtime = ("_send_seed",)  # depends on the bound model (`ModelIdentity.supports_seed`)

    def __init__(self, *, sampling: Mapping[str, Any], seed: bool | None = None, model: Any = None) -> None:
        super().__init__(model=model)
        self.sampling = dict(sampling)
        self.seed = seed

    def params(self) -> dict[str, Any]:
        return {"sampling": self.sampling, "seed": self.seed}

    def load(self) -> None:
        self._send_seed = identity_of(self.model).supports_seed if self.seed is None else bool(self.seed)

    async def process(self, row: Row) -> ItemResult:
        args: dict[str, Any] = {**self.sampling, SAMPLE_KEY: row["sample_index"]}
        if self._send_seed:
            args["seed"] = row["sample_index"]
        result = await self.model.create([UserMessage(content=row["question"], source="user")], extra_create_args=args)
        response = result.content if isinstance(result.content, str) else ""
        attempt = Attempt(problem_id=row["problem_id"], sample_index=row["sample_index"], question=row["question"],
                          response=response, reference=row["reference"], final_answer=extract_final_answer(response).value)
        return ItemResult(outputs=[attempt.to_row()], usage=Usage.of_reply(result))


async def sample_responses(
    model: ModelLike,
    problems: Iterable[Mapping[str, Any]],
    *,
    k: int = 4,
    temperature: float = 0.7,
    top_p: float = 0.95,
    max_tokens: int = 1024,
    out: str | Path,
    concurrency: int = 8,
    fresh: bool = False,
    progress: bool = True,
    seed: bool | None = None,
    timeout: float | None = None,
    engine: EngineConfig | None = None,
    executor: Any = None,
    calls: Any = None,
    samples: Mapping[str, int] | None = None,
) -> Path:
    """Sample `k` responses per problem and write them as `Attempt` rows (unlabelled).

    Args:
        model: the student: a spec or `ModelRef` (``"hf:<folder>"`` or ``"vllm:<folder>"``, loaded
            in the Orca prompt format; an OpenAI-compatible server URL such as a vLLM server, ...),
            built where the samples are made and closed after, or a `ChatCompletionClient`.
        problems: dicts with ``id``, ``question`` and ``answer`` (the teacher's solution, kept as
            `Attempt.reference`). Ids must be unique.
        k: samples per problem (the paper: 4).
        temperature: sampling temperature (the paper: 0.7); 0 is greedy.
        top_p: nucleus sampling (the paper: 0.95).
        max_tokens: the reply token limit.
        out: output folder: ``attempts.jsonl``, ``failures.jsonl``, ``summary.json`` and ``runs/``.
        concurrency: samples in flight at once (does not change the run key); a model that
            generates one reply at a time gets one in flight (see `build_client`).
        fresh: discard an earlier run with the same settings instead of resuming it.
        progress: show a progress bar.
        seed: send ``seed = sample_index`` with each request, so sample i of a problem is
            reproducible and the k samples of a problem use k different seeds. None (default) sends
            it to models whose identity says they take one (the ``hf:`` client, OpenAI-family
            clients: vLLM, OpenAI and llama.cpp servers read ``seed``).
        timeout: seconds allowed per attempt of a request; None keeps the default (300 s; none for
            in-process models).
        engine: the engine configuration (overrides `concurrency`, `progress` and `timeout`).
        executor: where samples run ("local", "ray" or an `Executor`).
        calls: batch-mode sender of deferred calls (see `orca_math.engine.modes.batch_calls`).
        samples: samples per problem id, overriding `k` for the ids it names (0 samples a problem
            not at all); see `orca_math.learn.allocation` (prop2diff). It enters the run key.

    Returns:
        The path of ``attempts.jsonl``: one `Attempt` row per sample that succeeded, ordered by
        problem then sample index. Samples that failed (after the client's retries) are rows of
        ``failures.jsonl`` (a `Failure` with its reason); running again retries them.

    Raises:
        ConfigError: bad k, temperature, top_p, max_tokens or concurrency, a problem without an id,
            question or answer, or a repeated id.
        RunStopped: an error that would fail every sample (a rejected key); finished samples are kept.
    """
    check_sampling(k=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, concurrency=concurrency)
    rows = problem_rows(problems)
    options = checkpoint_options(model, max_tokens=max_tokens)
    sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
    allocation = {"allocation": content_fingerprint(sorted(samples.items()))} if samples is not None else {}
    job = Job("sample", [SampleStage(sampling=sampling, seed=seed)], config={"problems": content_fingerprint([row["id"], row["question"], row["answer"]] for row in rows), "k": k, **allocation},
              total=sum(samples.get(row["id"], k) for row in rows) if samples is not None else len(rows) * k)

    def items() -> Iterable[Row]:
        return ({"id": sample_key(row["id"], index), "problem_id": row["id"], "sample_index": index,
                 "question": row["question"], "reference": row["answer"]} for row in rows
                for index in range(samples.get(row["id"], k) if samples is not None else k))

    config = engine or EngineConfig.of(concurrency=concurrency, progress=progress, cache=False,  # checkpoints keep every reply
                                       timeout=timeout)
    finished = await run_job(job, items, out=out, model=model, engine=config, fresh=fresh, executor=executor,
                             calls=calls, model_options=options)
    return _write_outputs(Path(out), finished, [row["id"] for row in items()])


def checkpoint_options(model: ModelLike, *, max_tokens: int) -> dict[str, Any]:
    """`load_model` options for sampling a checkpoint spec or `ModelRef`: the Orca text format, and a GPU when there is one.

    Our checkpoints are trained on the Orca text (see the module docstring), so ``hf:`` and ``vllm:``
    specs are loaded in it; other specs (a server URL, an API model) need nothing.
    """
    spec = model.spec if isinstance(model, ModelRef) else model  # the ref's own options win over these (`as_model`)
    if not isinstance(spec, str) or not spec.startswith(ORCA_FORMAT_SPECS):
        return {}
    if spec.startswith("vllm:"):  # the engine's load option is max_new_tokens; max_tokens is per request
        return {"prompt_format": "orca", "max_new_tokens": max_tokens}
    options: dict[str, Any] = {"prompt_format": "orca", "max_new_tokens": max_tokens}
    try:
        import torch

        if torch.cuda.is_available():
            options["device"] = "cuda"
    except ImportError:  # pragma: no cover - hf: needs the train extra, which brings torch
        pass
    return options


def check_sampling(*, k: int, temperature: float, top_p: float, max_tokens: int, concurrency: int) -> None:
    """Check `sample_responses`' numbers (before any model is loaded).

    Raises:
        ConfigError: one sentence naming the bad argument.
    """
    check_positive_int("k", k)
    check_positive_int("max_tokens", max_tokens)
    check_positive_int("concurrency", concurrency)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature < 0:
        raise ConfigError(f"temperature must be a number >= 0, not {temperature!r}.")
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be a number in (0, 1], not {top_p!r}.")


def problem_rows(problems: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Check and normalise problem dicts to ``{"id", "question", "answer"}`` (all strings).

    Raises:
        ConfigError: a problem without a non-empty id, question or answer, or a repeated id.
    """
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, problem in enumerate(problems):
        if not isinstance(problem, Mapping):
            raise ConfigError(f"Problem {index} must be a dict with id, question and answer, not {type(problem).__name__}.")
        missing = [name for name in ("id", "question", "answer")
                   if not isinstance(problem.get(name), str | int) or not str(problem.get(name)).strip()]
        if missing:
            raise ConfigError(f"Problem {index} has no {', '.join(missing)}; each needs id, question and answer "
                              "(the teacher's solution).")
        problem_id = str(problem["id"])
        if problem_id in seen:
            raise ConfigError(f"Problem id {problem_id!r} appears twice; ids must be unique.")
        seen.add(problem_id)
        row = {"id": problem_id, "question": str(problem["question"]), "answer": str(problem["answer"])}
        rate = problem.get("pass_rate")
        if isinstance(rate, int | float) and not isinstance(rate, bool):  # measured difficulty travels along (prop2diff)
            row["pass_rate"] = float(rate)
        rows.append(row)
    if not rows:
        raise ConfigError("There are no problems to sample.")
    return rows


def accepts_seed(client: Any) -> bool:
    """Whether `client` passes a per-request ``seed`` to its model (its `ModelIdentity.supports_seed`)."""
    return identity_of(client).supports_seed


def _write_outputs(out: Path, finished: JobRun, keys: list[str]) -> Path:
    failures: list[dict[str, Any]] = []
    # Streamed: at 200K samples, holding every attempt to write the file took most of the memory.
    path = write_jsonl(outputs_in_order(finished.run.checkpoint("sample"), keys, failures), out / ATTEMPTS_FILE)
    write_jsonl(failures, out / FAILURES_FILE)
    stage = finished.funnel.stages[0]
    counts = {"samples": len(keys), "ok": len(keys) - len(failures), "failed": len(failures), "reused": stage.skipped}
    write_summary(out, finished, counts=counts, outputs={"attempts": str(path), "failures": str(out / FAILURES_FILE)})
    finished.run.update(counts=counts)
    if failures:
        logger.warning("%d of %d samples failed; see %s (run again to retry them)", len(failures), len(keys),
                       out / FAILURES_FILE)
    return path


__all__ = ["ATTEMPTS_FILE", "SampleStage", "accepts_seed", "check_sampling", "checkpoint_options", "problem_rows", "sample_key",
           "sample_responses"]
