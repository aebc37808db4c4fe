"""Choosing and building a stage's batch backend from the registry (`orca_math.registries.BATCH_BACKENDS`).

A backend plug-in is a factory ``factory(target, options)`` returning an
`orca_math.engine.batch.backends.base.BatchBackend`, where ``target`` is a `BatchTarget` (the stage's
model client and its identity) and ``options`` the run's `BatchOptions`. Its ``accepts(target)``
says whether ``backend="auto"`` picks it for that client; the first entry that accepts wins, in
registration order. Other packages add backends through the ``orca_math.batch_backends``
entry-point group (see `orca_math.plugins` and docs/contributing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orca_math.errors import ConfigError
from orca_math.registries import AUTO_BACKEND, BATCH_BACKENDS, backend_names

if TYPE_CHECKING:
    from orca_math.engine.batch.backends.base import BatchBackend
    from orca_math.engine.batch.options import BatchOptions


@dataclass(frozen=True)
class BatchTarget:
    """What a backend is chosen for and built over.

    Attributes:
        client: the provider's client (under the engine's `ManagedClient`, if any).
        identity: its `orca_math.models.identity.ModelIdentity` (name, provider, endpoint).
    """

    client: Any
    identity: Any


def openai_backend(target: BatchTarget, options: BatchOptions) -> BatchBackend:
    """OpenAI's Batch API (or an OpenAI-compatible server's)."""
    from orca_math.engine.batch.backends.openai import OpenAIBatchBackend

    return OpenAIBatchBackend(target.client, model=target.identity.name, completion_window=options.completion_window)


def azure_backend(target: BatchTarget, options: BatchOptions) -> BatchBackend:
    """Azure OpenAI's Batch API."""
    from orca_math.engine.batch.backends.openai import AzureBatchBackend

    return AzureBatchBackend(target.client, model=target.identity.name, completion_window=options.completion_window)


def anthropic_backend(target: BatchTarget, options: BatchOptions) -> BatchBackend:
    """Anthropic's Message Batches."""
    from orca_math.engine.batch.backends.anthropic import AnthropicBatchBackend

    return AnthropicBatchBackend(target.client, model=target.identity.name)


def vllm_backend(target: BatchTarget, options: BatchOptions) -> BatchBackend:
    """``vllm run-batch`` on this machine."""
    from orca_math.engine.batch.backends.vllm import VLLMRunBatchBackend

    return VLLMRunBatchBackend(target.client, model=target.identity.name, command=options.vllm_command,
                               vllm_model=options.vllm_model, extra_args=options.vllm_args)


def make_backend(client: Any, identity: Any, options: BatchOptions) -> BatchBackend:
    """The backend for a stage's client: `options.backend`, or (``"auto"``) the first that accepts the model.

    Raises:
        ConfigError: ``"auto"`` and no backend takes the model.
    """
    target = BatchTarget(client, identity)
    auto = options.backend == AUTO_BACKEND
    plugin = BATCH_BACKENDS.choose(target) if auto else BATCH_BACKENDS.get(options.backend)
    if plugin is None:
        if not auto:  # BatchOptions validated it: only a plug-in removed since can get here
            raise ConfigError(f"batch backend {options.backend!r}: use one of {', '.join(map(repr, backend_names()))}.")
        raise ConfigError(f"batch mode needs a model served by OpenAI, Azure OpenAI, an OpenAI-compatible URL with "
                          f"/v1/batches, or Anthropic; {identity.name} is a {identity.provider} model (choose "
                          "BatchOptions(backend='vllm') to run batches with vllm run-batch here).")
    return plugin.factory(target, options)


__all__ = ["BatchTarget", "make_backend"]
