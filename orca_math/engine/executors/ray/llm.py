"""Sampling and answering on GPUs: a step's model calls through `ray.data.llm`, under the same runner.

When a step's model is a ``vllm:`` checkpoint and the cluster has GPUs, `RayExecutor` runs the step
through `ray.data.llm.vLLMEngineProcessorConfig`: one vLLM engine per GPU (or per tensor-parallel
group) fed by Ray Data. The stage does not change, and neither does the run folder:

1. **Capture.** The driver runs the stage's `process` over a chunk of items with a client that
   records each request and defers it (`CallDeferred`, the batch mode's signal).
2. **Generate.** The chunk's requests become one Ray Dataset; `preprocess` turns a request into the
   processor's row (the prompt, or chat messages, and sampling params with the request's seed:
   the engine keeps only ``outputs[0]``, so k samples are k rows with seeds 0..k-1, which is what
   the sampling stage sends); `postprocess` keeps the text and token counts.
3. **Replay.** The stage runs again with the replies served. A stage that makes another call (a
   retry of a bad parse, a second turn) defers it and goes round again, at most `MAX_TURNS` times.

Every outcome goes to `task.record`, so resume, failure rows and stops are the runner's. Memory
holds one chunk (`CHUNK` items) of requests and replies at a time. No response cache: the
checkpoints keep every reply, and the engines are the user's own.

The same capture/replay, chunking, preprocess and postprocess code runs on CPU through
`HttpRequestProcessorConfig` against an OpenAI-compatible server (``RayExecutor(llm="http")``):
that is how the tests check it; the engine itself needs GPUs (see docs/ray.md for the commands).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from orca_math.engine.executors.base import StepTask
from orca_math.engine.items import CallDeferred, ItemFailedError
from orca_math.errors import ConfigError

#: Items captured, generated and replayed together (their requests are one Ray Dataset).
CHUNK = 1024
#: Rounds of capture and replay one item may take (a stage retrying a bad reply asks again).
MAX_TURNS = 4
_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop", "presence_penalty", "frequency_penalty")


def llm_path(executor: Any, remote: Any) -> _ProcessorPath | None:
    """The `ray.data.llm` path for this step, or None to run it on the executor's worker pool.

    ``llm="auto"`` takes it for a ``vllm:`` model on a cluster with GPUs; ``"vllm"`` and ``"http"``
    always (a ``vllm:`` model, an OpenAI-compatible URL); ``"off"`` never.
    """
    if executor.llm == "off" or remote is None or remote.model is None:
        return None
    from orca_math.models import ModelRef

    ref = remote.model if isinstance(remote.model, ModelRef) else None  # a ready client has no spec to give the processor
    spec, options = (ref.spec, ref.options) if ref is not None else (None, {})
    is_vllm = isinstance(spec, str) and spec.startswith("vllm:")
    if executor.llm == "auto":
        import ray

        if not (is_vllm and ray.cluster_resources().get("GPU", 0) > 0):
            return None
        return _ProcessorPath("vllm", spec, options, executor.llm_options)
    if executor.llm == "vllm" and not is_vllm:
        raise ConfigError(f"RayExecutor(llm='vllm') needs a 'vllm:<checkpoint>' model, not {spec or type(remote.model).__name__!r}.")
    if executor.llm == "http" and not (isinstance(spec, str) and spec.startswith(("http://", "https://"))):
        raise ConfigError("RayExecutor(llm='http') needs an OpenAI-compatible server URL as the model, "
                          f"not {spec or type(remote.model).__name__!r}.")
    return _ProcessorPath(executor.llm, spec, options, executor.llm_options)


# ---------------------------------------------------------------------------- requests and rows


def request_of(messages: Sequence[Any], json_output: Any, extra_create_args: Mapping[str, Any]) -> dict[str, Any]:
    """A model call as plain data: chat messages as dicts, the sampling arguments, and its key."""
    turns = [_turn(message) for message in messages]
    args = dict(extra_create_args or {})
    # orca-math's own hints (``orca_math_sample``: k ids, k distinct replies) are not sent, but keep requests apart.
    hints = {k: v for k, v in args.items() if k.startswith("orca_math_")}
    sampling = {k: v for k, v in args.items() if k in _SAMPLING_KEYS and v is not None}
    unknown = sorted(set(args) - set(_SAMPLING_KEYS) - set(hints))
    if unknown:
        raise ItemFailedError(f"the ray.data.llm path does not take the call arguments {unknown}")
    body = {"messages": turns, "sampling": sampling, "json": bool(json_output)}
    if hints:
        body["hints"] = json.dumps(hints, sort_keys=True, default=str)
    body["key"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return body


def _turn(message: Any) -> dict[str, str]:
    role = {"SystemMessage": "system", "UserMessage": "user", "AssistantMessage": "assistant"}.get(type(message).__name__)
    content = getattr(message, "content", None)
    if isinstance(content, list) and all(isinstance(part, str) for part in content):
        content = "\n".join(content)
    if role is None or not isinstance(content, str):
        raise ItemFailedError(f"the ray.data.llm path sends text messages only, not a {type(message).__name__}")
    return {"role": role, "content": content}


def preprocess_http(row: dict[str, Any], *, model: str) -> dict[str, Any]:
    """A request as `HttpRequestProcessorConfig`'s row: an OpenAI chat completions payload."""
    payload: dict[str, Any] = {"model": model, "messages": row["messages"], **row["sampling"]}
    if row["json"]:
        payload["response_format"] = {"type": "json_object"}
    return {"key": row["key"], "payload": payload}


def preprocess_vllm(row: dict[str, Any], *, orca: bool, max_tokens: int) -> dict[str, Any]:
    """A request as `vLLMEngineProcessorConfig`'s row: the prompt text (Orca format) or chat messages, and sampling params."""
    from orca_math.models.hf import ORCA_PROMPT_TEMPLATE

    sampling = {"max_tokens": max_tokens, **row["sampling"]}
    if orca:  # our checkpoints are trained on the Orca text: render it as the hf:/vllm: clients do
        system = "\n".join(t["content"] for t in row["messages"] if t["role"] == "system")
        text = system + "\n" if system else ""
        for turn in row["messages"]:
            if turn["role"] == "user":
                text += ORCA_PROMPT_TEMPLATE.format(question=turn["content"].strip())
            elif turn["role"] == "assistant":
                text += " " + turn["content"].strip() + "\n"
        stops = sampling.get("stop") or []
        sampling["stop"] = [*([stops] if isinstance(stops, str) else stops), "\nUSER:"]
        return {"key": row["key"], "prompt": text, "sampling_params": sampling}
    return {"key": row["key"], "messages": row["messages"], "sampling_params": sampling}


def postprocess_http(row: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat completions reply as (key, text, token counts)."""
    body = row.get("http_response") or {}
    choices = body.get("choices") or [{}]
    usage = body.get("usage") or {}
    error = body.get("error")  # the processor hands back error bodies (404, 400) as replies
    error = str(error.get("message") if isinstance(error, dict) else error or "") if error or not body.get("choices") else ""
    return {"key": row["key"], "text": (choices[0].get("message") or {}).get("content") or "",
            "error": error or ("" if body.get("choices") else "the server sent no choices"),
            "prompt_tokens": int(usage.get("prompt_tokens") or 0), "completion_tokens": int(usage.get("completion_tokens") or 0)}


def postprocess_vllm(row: dict[str, Any]) -> dict[str, Any]:
    """A vLLM engine row as (key, text, token counts); Orca-format text is stripped like the vllm: client's."""
    return {"key": row["key"], "text": str(row.get("generated_text") or "").strip(), "error": str(row.get("__inference_error__") or ""),
            "prompt_tokens": int(row.get("num_input_tokens") or 0), "completion_tokens": int(row.get("num_generated_tokens") or 0)}


# ---------------------------------------------------------------------------- the client a stage sees


class _ReplayClient:
    """The stage's model on this path: serves replies it has, records (and defers) calls it has not."""

    def __init__(self, identity: Any) -> None:
        self.replies: dict[str, Any] = {}
        self.requests: dict[str, dict[str, Any]] = {}
        self.model_info = {"vision": False, "function_calling": False, "json_output": True, "family": "unknown",
                           "structured_output": False}
        if identity is not None:
            from orca_math.models.identity import register_identity

            register_identity(self, identity)

    async def create(self, messages: Sequence[Any], *, tools: Any = (), json_output: Any = None,
                     extra_create_args: Mapping[str, Any] | None = None, **_: Any) -> Any:
        request = request_of(messages, json_output, extra_create_args or {})
        reply = self.replies.get(request["key"])
        if reply is None:
            self.requests[request["key"]] = request
            raise CallDeferred(request["key"])
        if reply["error"]:
            raise ItemFailedError(f"the engine failed this request: {reply['error'][:300]}")
        from autogen_core.models import CreateResult, RequestUsage

        usage = RequestUsage(prompt_tokens=reply["prompt_tokens"], completion_tokens=reply["completion_tokens"])
        return CreateResult(finish_reason="stop", content=reply["text"], usage=usage, cached=False)

    def count_tokens(self, messages: Sequence[Any], **_: Any) -> int:
        return sum(len(str(getattr(m, "content", ""))) for m in messages) // 4

    def remaining_tokens(self, messages: Sequence[Any], **_: Any) -> int:
        return 1 << 20

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------------------- the path


class _ProcessorPath:
    """Runs one step's items by capture, `ray.data.llm` generation and replay, in chunks."""

    def __init__(self, kind: str, spec: str | None, options: Mapping[str, Any], llm_options: Mapping[str, Any]) -> None:
        self.kind, self.spec, self.options, self.llm_options = kind, spec, dict(options), dict(llm_options)

    def processor(self, served_name: str | None = None) -> Any:
        """The `ray.data.llm` processor: vLLM engines on GPUs, or HTTP requests to the server."""
        from functools import partial

        from ray.data.llm import build_processor

        extra = dict(self.llm_options)
        if self.kind == "http":
            from ray.data.llm import HttpRequestProcessorConfig

            config = HttpRequestProcessorConfig(
                url=self.spec.rstrip("/") + "/chat/completions", headers=_auth_headers(self.options),
                concurrency=int(extra.pop("concurrency", 1)), batch_size=int(extra.pop("batch_size", 64)),
                max_retries=int(extra.pop("max_retries", 3)), **extra)
            return build_processor(config, preprocess=partial(preprocess_http, model=self.options.get("model") or served_name or "default"),
                                   postprocess=postprocess_http)
        import ray
        from ray.data.llm import vLLMEngineProcessorConfig

        tensor_parallel = int(extra.pop("tensor_parallel_size", self.options.get("tensor_parallel_size", 1)))
        engines = int(extra.pop("concurrency", max(1, int(ray.cluster_resources().get("GPU", 1)) // tensor_parallel)))
        engine_kwargs = {"tensor_parallel_size": tensor_parallel, **dict(extra.pop("engine_kwargs", {}))}
        for name in ("max_model_len", "dtype", "gpu_memory_utilization", "enforce_eager"):
            if self.options.get(name) is not None:
                engine_kwargs.setdefault(name, self.options[name])
        orca = self.options.get("prompt_format", "chat") == "orca"
        config = vLLMEngineProcessorConfig(
            model_source=self.spec.split(":", 1)[1], engine_kwargs=engine_kwargs, concurrency=engines,
            batch_size=int(extra.pop("batch_size", 64)), should_continue_on_error=True,
            chat_template_stage=not orca, tokenize_stage=True, detokenize_stage=True, **extra)
        return build_processor(config, preprocess=partial(preprocess_vllm, orca=orca,
                                                          max_tokens=int(self.options.get("max_new_tokens", 512))),
                               postprocess=postprocess_vllm)

    async def run(self, task: StepTask, shipped: Any) -> None:
        import pickle

        from ray import cloudpickle

        from orca_math.models.identity import identity_of

        identity = identity_of(task.remote.stage.model) if getattr(task.remote.stage, "model", None) is not None else None
        stage = pickle.loads(cloudpickle.dumps(shipped.stage))  # a copy bound to the replay client: the driver's stays as it is
        client = _ReplayClient(identity)
        stage.bind(client)
        processor = self.processor(getattr(identity, "name", None))
        try:
            while not task.stopped():
                chunk = [item for _, item in zip(range(CHUNK), task.items, strict=False)]
                if not chunk:
                    return
                if not await self._chunk(task, stage, client, processor, chunk, shipped.check_output):
                    return
        finally:
            await stage.close()

    async def _chunk(self, task: StepTask, stage: Any, client: _ReplayClient, processor: Any, chunk: list[dict[str, Any]],
                     check_output: Any) -> bool:
        import asyncio

        waiting = chunk
        for turn in range(MAX_TURNS + 1):
            client.requests.clear()
            outcomes = await asyncio.gather(*(_attempt(stage, item, check_output) for item in waiting))
            deferred = []
            for item, outcome in zip(waiting, outcomes, strict=True):
                if isinstance(outcome, CallDeferred):
                    deferred.append(item)
                elif not task.record(item, outcome):
                    return False
            if not deferred:
                break
            if turn == MAX_TURNS:
                for item in deferred:
                    if not task.record(item, ItemFailedError(f"the stage asked for more than {MAX_TURNS} rounds of model calls")):
                        return False
                break
            await asyncio.to_thread(self._generate, processor, list(client.requests.values()), client.replies)
            waiting = deferred
        client.replies.clear()
        return True

    @staticmethod
    def _generate(processor: Any, requests: list[dict[str, Any]], replies: dict[str, Any]) -> None:
        import ray.data

        for row in processor(ray.data.from_items(requests)).iter_rows():  # streamed back: no take_all()
            replies[row["key"]] = {name: row[name] for name in ("text", "error", "prompt_tokens", "completion_tokens")}


async def _attempt(stage: Any, item: dict[str, Any], check_output: Any) -> Any:
    import asyncio

    try:
        result = await stage.process(item)
        if check_output is not None:
            for output in result.outputs:
                check_output(stage, output)
        return result
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # CallDeferred included: the caller sorts them
        return exc


def _auth_headers(options: Mapping[str, Any]) -> dict[str, str]:
    # The key goes in a header of the processor's config, never into a row (rows can be logged).
    key = options.get("api_key")
    return {"Authorization": f"Bearer {key}"} if key else {}


__all__ = ["CHUNK", "MAX_TURNS", "llm_path", "postprocess_http", "postprocess_vllm", "preprocess_http", "preprocess_vllm",
           "request_of"]
