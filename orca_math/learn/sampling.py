"""Sample k responses per problem from a student model, as resumable `Attempt` records.

Iteration 2 of Orca-Math samples 4 responses per problem from M1 at temperature 0.7, top_p 0.95.
Each sample is one item of a run (key ``"{problem_id}#{sample_index}"``, checkpointed as soon as
it finishes), so an interrupted sampling run resumes where it stopped and never asks again for a
sample it already has.

    path = await sample_responses("hf:ckpt/m1", problems, k=4, out="runs/m1-samples")

The question goes out as the only user message, so the client's own prompt format applies:
``hf:<checkpoint>`` with ``prompt_format="orca"`` renders ``USER: {q}\\nASSISTANT:`` (the format our
SFT trains on); an OpenAI-compatible server such as ``vllm serve <checkpoint>`` applies the
checkpoint's chat template (our adapters record the Orca template in checkpoints they train).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autogen_core.models import UserMessage

from orca_math.answers import extract_final_answer
from orca_math.data.writers import write_jsonl
from orca_math.engine.client import SAMPLE_KEY, ManagedClient, RetryPolicy
from orca_math.engine.run import RunFolder
from orca_math.engine.runner import ItemResult, StageStats, results_in_order, run_items
from orca_math.models import ModelLike, describe_spec, resolve_model
from orca_math.records import Attempt

logger = logging.getLogger(__name__)

ATTEMPTS_FILE = "attempts.jsonl"
FAILURES_FILE = "failures.jsonl"
STATS_FILE = "sampling.json"


def sample_key(problem_id: str, sample_index: int) -> str:
    """The item key of one sample: ``"{problem_id}#{sample_index}"``."""
    return f"{problem_id}#{sample_index}"


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
) -> Path:
    """Sample `k` responses per problem and write them as `Attempt` rows (unlabelled).

    Args:
        model: the student: a spec (``"hf:<folder>"``, loaded with ``prompt_format="orca"``; an
            OpenAI-compatible server URL such as a vLLM server, ...) or a `ChatCompletionClient`
            (e.g. a `TransformersChatCompletionClient` in the chat format). A spec is loaded here
            and closed after.
        problems: dicts with ``id``, ``question`` and ``answer`` (the teacher's solution, kept as
            `Attempt.reference`). Ids must be unique.
        k: samples per problem (the paper: 4).
        temperature: sampling temperature (the paper: 0.7); 0 is greedy.
        top_p: nucleus sampling (the paper: 0.95).
        max_tokens: the reply token limit.
        out: output folder: ``attempts.jsonl``, ``failures.jsonl``, ``sampling.json`` and ``runs/``.
        concurrency: samples in flight at once (does not change the run key). A local ``hf:`` model
            generates one reply at a time, so it gets 1.
        fresh: discard an earlier run with the same settings instead of resuming it.
        progress: show a progress bar.
        seed: send ``seed = sample_index`` with each request, so sample i of a problem is
            reproducible and the k samples of a problem use k different seeds. None (default) sends
            it to backends known to accept it: the ``hf:`` client and autogen's OpenAI clients (vLLM,
            OpenAI and llama.cpp servers read ``seed``); other clients get no seed.
        timeout: seconds allowed per attempt of a request (`RetryPolicy.timeout`); None keeps the
            default (300 s). A local model that generates one reply at a time has none.

    Returns:
        The path of ``attempts.jsonl``: one `Attempt` row per sample that succeeded, ordered by
        problem then sample index. Samples that failed (after the client's retries) are rows of
        ``failures.jsonl`` (a `Failure` with its reason); running again retries them.

    Raises:
        ValueError: bad k, temperature, top_p, max_tokens or concurrency, a problem without an id,
            question or answer, or a repeated id.
        RunStopped: an error that would fail every sample (a rejected key); finished samples are kept.
    """
    check_sampling(k=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, concurrency=concurrency)
    rows = problem_rows(problems)
    if isinstance(model, str) and model.startswith("hf:"):
        # Our checkpoints are trained on the Orca text; sample them in it (see the module docstring).
        client = resolve_model(model, prompt_format="orca", max_new_tokens=max_tokens)
    else:
        client = resolve_model(model)
    owned = isinstance(model, str)
    send_seed = accepts_seed(client) if seed is None else seed
    retry = RetryPolicy(timeout=timeout) if timeout else None
    if _generates_one_at_a_time(client):
        # Queued calls would only wait on the model's lock; a per-call timeout would cut a long local
        # generation (its thread runs on) and retry it behind the lock.
        concurrency, retry = 1, RetryPolicy(timeout=None)
    sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
    config = {
        "task": "sample", "model": describe_spec(model), "k": k, "sampling": sampling, "seed": send_seed,
        "problems": _fingerprint(rows), "concurrency": concurrency,
    }
    out = Path(out)
    run = RunFolder(out, config, fresh=fresh)
    managed = client if isinstance(client, ManagedClient) else ManagedClient(client, concurrency=concurrency, retry=retry)
    items = [
        {"id": sample_key(row["id"], index), "problem_id": row["id"], "sample_index": index,
         "question": row["question"], "reference": row["answer"]}
        for row in rows for index in range(k)
    ]

    async def process(item: dict[str, Any]) -> ItemResult:
        args: dict[str, Any] = {**sampling, SAMPLE_KEY: item["sample_index"]}
        if send_seed:
            args["seed"] = item["sample_index"]
        result = await managed.create([UserMessage(content=item["question"], source="user")], extra_create_args=args)
        response = result.content if isinstance(result.content, str) else ""
        attempt = Attempt(
            problem_id=item["problem_id"], sample_index=item["sample_index"], question=item["question"],
            response=response, reference=item["reference"], final_answer=extract_final_answer(response).value,
        )
        return ItemResult(outputs=[attempt.to_row()])

    from orca_math.engine.progress import StageProgress

    run.update(status="running")
    try:
        with StageProgress(enabled=progress) as bars:
            stats = await run_items("sample", items, process, run.checkpoint("sample"), key=lambda item: item["id"],
                                    concurrency=concurrency, progress=bars.stage("sample", len(items)))
    finally:
        if owned:
            await client.close()
    return _write_outputs(out, run, items, stats)


def check_sampling(*, k: int, temperature: float, top_p: float, max_tokens: int, concurrency: int) -> None:
    """Check `sample_responses`' numbers (before any model is loaded).

    Raises:
        ValueError: one sentence naming the bad argument.
    """
    _check_positive_int("k", k)
    _check_positive_int("max_tokens", max_tokens)
    _check_positive_int("concurrency", concurrency)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, not {temperature!r}.")
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be a number in (0, 1], not {top_p!r}.")


def problem_rows(problems: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Check and normalise problem dicts to ``{"id", "question", "answer"}`` (all strings).

    Raises:
        ValueError: a problem without a non-empty id, question or answer, or a repeated id.
    """
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, problem in enumerate(problems):
        if not isinstance(problem, Mapping):
            raise ValueError(f"Problem {index} must be a dict with id, question and answer, not {type(problem).__name__}.")
        missing = [name for name in ("id", "question", "answer")
                   if not isinstance(problem.get(name), str | int) or not str(problem.get(name)).strip()]
        if missing:
            raise ValueError(f"Problem {index} has no {', '.join(missing)}; each needs id, question and answer "
                             "(the teacher's solution).")
        problem_id = str(problem["id"])
        if problem_id in seen:
            raise ValueError(f"Problem id {problem_id!r} appears twice; ids must be unique.")
        seen.add(problem_id)
        rows.append({"id": problem_id, "question": str(problem["question"]), "answer": str(problem["answer"])})
    if not rows:
        raise ValueError("There are no problems to sample.")
    return rows


def accepts_seed(client: Any) -> bool:
    """Whether `client` is known to pass a per-request ``seed`` to its model (see `sample_responses`)."""
    inner = getattr(client, "inner", client)  # look through a ManagedClient
    return type(inner).__name__ in {
        "TransformersChatCompletionClient", "OpenAIChatCompletionClient", "AzureOpenAIChatCompletionClient",
    }


def _generates_one_at_a_time(client: Any) -> bool:
    return type(getattr(client, "inner", client)).__name__ == "TransformersChatCompletionClient"


def _write_outputs(out: Path, run: RunFolder, items: list[dict[str, Any]], stats: StageStats) -> Path:
    attempts, failures = results_in_order(run.checkpoint("sample"), (item["id"] for item in items))
    path = write_jsonl(attempts, out / ATTEMPTS_FILE)
    write_jsonl(failures, out / FAILURES_FILE)
    counts = {"samples": len(items), "ok": len(attempts), "failed": len(failures), "reused": stats.skipped,
              "run_key": run.key, "run_dir": str(run.path)}
    (out / STATS_FILE).write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    run.update(status="finished", counts=counts)
    if failures:
        logger.warning("%d of %d samples failed; see %s (run again to retry them)", len(failures), len(items),
                       out / FAILURES_FILE)
    return path


def _fingerprint(rows: list[dict[str, str]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row["id"], row["question"], row["answer"]]).encode())
    return digest.hexdigest()[:16]


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}.")
