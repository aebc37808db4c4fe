"""A stand-in on the driver for a checkpoint that only an executor's workers load.

With a remote executor (`RayExecutor`), a step's model calls run in the workers, each building
its own client from the model spec. Building the driver's client as well costs nothing for an API
model, but a ``vllm:`` or ``hf:`` checkpoint would load its weights in the driver too, holding a
GPU (or gigabytes of memory) that no call ever uses. For those specs the driver binds this
stand-in instead: it carries the `ModelIdentity` the workers' engines will have (name, weights
fingerprint, seeds), so run keys, costs and the `ray.data.llm` replay read the same facts, and it
refuses to be called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, LLMMessage, ModelFamily, ModelInfo

from orca_math.models.base import OwnChatClient
from orca_math.models.errors import ModelError
from orca_math.models.identity import (
    ModelIdentity,
    checkpoint_fingerprint,
    local_checkpoint,
    register_identity,
)

#: Spec kinds whose client loads weights when it is built (``vllm-serve:`` starts its server lazily).
_LOADS_WEIGHTS = {"vllm": "vLLM engines on the executor's workers", "hf": "transformers on the executor's workers"}


class WorkerLoadedModel(OwnChatClient):
    """The driver's stand-in for `spec`, a checkpoint the executor's workers load; never called.

    Build it with `worker_loaded_model`, which returns None for specs that are cheap to build here.
    """

    def __init__(self, spec: str, identity: ModelIdentity) -> None:
        super().__init__(model_info=ModelInfo(vision=False, function_calling=False, json_output=False,
                                              family=ModelFamily.UNKNOWN, structured_output=False))
        self.spec = spec
        register_identity(self, identity)

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        raise ModelError(f"{self.spec} is loaded by the executor's workers, not by this process; "
                         "its calls run there (this client only names it on the driver).")

    def __repr__(self) -> str:
        return f"WorkerLoadedModel({self.spec!r})"


def worker_loaded_model(spec: Any) -> WorkerLoadedModel | None:
    """A stand-in for `spec` when it names a checkpoint whose client would load weights (``vllm:``, ``hf:``), else None.

    The identity is the one the workers' engines register: a ``vllm:`` engine on a GPU takes a
    per-request seed, and the weights' fingerprint names the checkpoint in run and cache keys.
    """
    if not isinstance(spec, str):
        return None
    kind, _, rest = spec.partition(":")
    if kind not in _LOADS_WEIGHTS or not rest:
        return None
    path = local_checkpoint(rest)
    name = Path(rest).stem if kind == "hf" and rest.endswith(".gguf") else (Path(rest).name or rest)
    identity = ModelIdentity(name=name, provider=kind, endpoint=_LOADS_WEIGHTS[kind],
                             checkpoint=checkpoint_fingerprint(path) if path is not None else None,
                             supports_seed=True, samples_per_request=kind == "vllm", queues_calls=kind == "vllm",
                             one_at_a_time=kind == "hf")
    return WorkerLoadedModel(spec, identity)


__all__ = ["WorkerLoadedModel", "worker_loaded_model"]
