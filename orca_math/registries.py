"""The executor and batch backend registries, declared once (the model spec kinds are in `orca_math.models.specs`).

Light on purpose: the command line reads these tables to build ``--executor`` and
``--batch-backend`` (their choices and help) without importing the engine; each built-in entry
names its factory as ``"module:attribute"``, imported on first use, as an entry point is.

* `EXECUTORS`: ``factory(**settings) -> Executor``; the command line passes ``address=``
  (``--ray-address``) and ``workers=`` (``--workers``) when they are given. Entry-point group
  ``orca_math.executors``. `orca_math.engine.executors.registry` builds them.
* `BATCH_BACKENDS`: ``factory(target, options) -> BatchBackend``, ``accepts(target)`` for
  ``backend="auto"`` (first that accepts wins); ``target`` is an
  `orca_math.engine.batch.backends.BatchTarget`. Entry-point group ``orca_math.batch_backends``.

See `orca_math.plugins` for how other packages add entries, and docs/contributing.md.
"""

from __future__ import annotations

from typing import Any

from orca_math.plugins import Registry, check_name, lazy

EXECUTORS = Registry("executor", "orca_math.executors")
EXECUTORS.add("local", lazy("orca_math.engine.executors:LocalExecutor"), help="this process (default)")
EXECUTORS.add("ray", lazy("orca_math.engine.executors.ray.executor:RayExecutor"), help="a pool of Ray workers (see docs/ray.md)")

BATCH_BACKENDS = Registry("batch backend", "orca_math.batch_backends")


def _provider_is(*providers: str) -> Any:
    return lambda target: target.identity.provider in providers


def _is_anthropic(target: Any) -> bool:
    # autogen-ext's Anthropic client registers no identity of its own: its module names the provider.
    return target.identity.provider == "anthropic" or "anthropic" in type(target.client).__module__.lower()


BATCH_BACKENDS.add("openai", lazy("orca_math.engine.batch.backends:openai_backend"),
                   help="OpenAI's Batch API, or an OpenAI-compatible URL that serves /v1/batches",
                   accepts=_provider_is("openai", "openai-compatible"))
BATCH_BACKENDS.add("azure", lazy("orca_math.engine.batch.backends:azure_backend"), help="Azure OpenAI's Batch API",
                   accepts=_provider_is("azure"))
BATCH_BACKENDS.add("anthropic", lazy("orca_math.engine.batch.backends:anthropic_backend"),
                   help="Anthropic's Message Batches", accepts=_is_anthropic)
BATCH_BACKENDS.add("vllm", lazy("orca_math.engine.batch.backends:vllm_backend"), help="vllm run-batch on this machine",
                   accepts=_provider_is("vllm"))

#: The batch backend name that lets the model's provider choose.
AUTO_BACKEND = "auto"


class _BackendChoices:
    """``auto`` and the registered backends, for argparse (plug-ins read lazily: `Registry.choices`)."""

    def __contains__(self, name: object) -> bool:
        return name == AUTO_BACKEND or name in BATCH_BACKENDS.choices()

    def __iter__(self) -> Any:
        return iter(backend_names())


def backend_names(*, discover: bool = True) -> list[str]:
    """``"auto"`` and every registered backend: what ``BatchOptions(backend=)`` and ``--batch-backend`` accept."""
    return [AUTO_BACKEND, *BATCH_BACKENDS.entries(discover=discover)]


def backend_choices() -> _BackendChoices:
    """What ``--batch-backend`` accepts, as argparse ``choices=``."""
    return _BackendChoices()


def check_executor_name(name: str) -> str:
    """`name` itself when an executor is registered under it (a pydantic ``AfterValidator``; see `check_name`)."""
    return check_name(name, EXECUTORS.names(), EXECUTORS.choices().__contains__)


def check_backend_name(name: str) -> str:
    """`name` itself when it is "auto" or a registered batch backend (a pydantic ``AfterValidator``; see `check_name`)."""
    return check_name(name, backend_names(), backend_choices().__contains__)


def choices_of(registry: str) -> Any:
    """The names a flag of a recipe field with ``registry=`` accepts ("executor" or "batch backend")."""
    return {"executor": EXECUTORS.choices, "batch backend": backend_choices}[registry]()


__all__ = ["AUTO_BACKEND", "BATCH_BACKENDS", "EXECUTORS", "backend_choices", "backend_names", "check_backend_name",
           "check_executor_name", "choices_of"]
