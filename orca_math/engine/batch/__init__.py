"""Batch mode: model calls sent through a provider's batch API, at its batch price, resumable across days.

Batch mode changes how calls are sent, not what they are. Each stage's client is wrapped
(`BatchCalls.wrap`) in a `BatchClient`, whose `create` returns a reply once its batch is back and
otherwise records the request and raises `CallDeferred`; the runner then calls `BatchCalls.settle`
(submit, poll, store) and offers the deferred items again. Backends: OpenAI and Azure OpenAI
(Files + Batches), Anthropic Message Batches, and local ``vllm run-batch``. See docs/batch.md.

    pipeline = Pipeline(model="openai:gpt-4o-mini", mode="batch", batch=BatchOptions(max_open=4))
    pipeline.run_sync("seeds.jsonl", out="data/run1", wait=False)   # submits, then RunPaused
"""

from orca_math.engine.batch.batch_client import BatchClient, BatchRequestFailedError
from orca_math.engine.batch.calls import BatchCalls, BatchStopped, RunPaused, choose_backend
from orca_math.engine.batch.options import BatchOptions, BatchPrices
from orca_math.engine.batch.state import BatchState, find_state, state_path

__all__ = ["BatchCalls", "BatchClient", "BatchOptions", "BatchPrices", "BatchRequestFailedError", "BatchState",
           "BatchStopped", "RunPaused", "choose_backend", "find_state", "state_path"]
