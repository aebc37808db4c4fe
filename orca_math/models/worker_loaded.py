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
from orca_math.models.ref import ModelRef

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


def worker_loaded_model(model: Any) -> WorkerLoadedModel | None:
    """A stand-in for `model` (a `ModelRef` or a spec) when it names a checkpoint whose client would load
    weights (``vllm:``, ``hf:``), else None.

    The identity is the one the workers' engines register: a ``vllm:`` engine on a GPU takes a
    per-request seed, and the weights' fingerprint names the checkpoint in run and cache keys.
    """
    spec = model.spec if isinstance(model, ModelRef) else model
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


async def name_model(model: Any) -> str:
    """`model`'s name as price tables and the usage meter name it, read in a process that makes no call.

    A checkpoint whose client loads weights is named by its stand-in (nothing is loaded). Any other
    spec or `ModelRef` is built and closed at once, with a placeholder key when the environment has
    none (nothing is sent with it: a dry run or a budget check must not need the key). A client is
    asked directly.
    """
    from orca_math.models.identity import identity_of

    if not isinstance(model, str | ModelRef):
        return identity_of(model).describe(with_url=False)
    stand_in = worker_loaded_model(model)
    if stand_in is not None:
        return identity_of(stand_in).describe(with_url=False)
    client = ModelRef(model).build_without_key()
    try:
        return identity_of(client).describe(with_url=False)
    finally:
        await client.close()


def model_name(model: Any) -> str:
    """`name_model` from sync code (the command line)."""
    from orca_math._sync import run_sync

    return run_sync(name_model(model))


def check_model(model: Any) -> None:
    """Build `model`'s client once and close it, so that a missing API key or an unreachable server is said
    before any work (a run folder, a lock, a cache); a checkpoint that loads weights is not loaded for this.

    Raises:
        ModelSpecError, MissingAPIKeyError, ServerUnreachableError: as `load_model`.
    """
    from orca_math._sync import run_sync

    if isinstance(model, str | ModelRef) and worker_loaded_model(model) is None:
        run_sync(ModelRef(model).build().close())


__all__ = ["WorkerLoadedModel", "check_model", "model_name", "name_model", "worker_loaded_model"]
