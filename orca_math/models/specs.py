"""The model spec registry: every kind of spec `load_model` understands, declared once.

A spec is ``kind:rest`` ("openai:gpt-4o", "hf:./checkpoints/m1") or text a kind recognises by
itself (an ``http(s)://`` URL). Each kind is one `orca_math.plugins.Plugin` in `SPEC_KINDS`:

* ``factory(rest, **options)`` builds the `ChatCompletionClient` (a kind with an ``accepts`` test
  gets the whole spec instead of the part after the colon);
* ``help`` is how users write it, shown in errors and in ``--model``'s help;
* the tag "checkpoint" marks kinds whose rest names a local checkpoint (fingerprinted in run keys).

Other packages add kinds through the ``orca_math.model_specs`` entry-point group; see
docs/contributing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orca_math.models.endpoints import normalize_endpoint, without_credentials
from orca_math.models.errors import ModelSpecError
from orca_math.models.identity import checkpoint_fingerprint, identity_of, local_checkpoint
from orca_math.plugins import Registry

if TYPE_CHECKING:  # autogen is imported where a client is built: `orca-math --help` reads this registry
    from autogen_core.models import ChatCompletionClient

    from orca_math.models.ref import ModelRef

    ModelLike = str | ModelRef | ChatCompletionClient

SPEC_KINDS = Registry("model spec kind", "orca_math.model_specs")


def _local(rest: str, **options: Any) -> ChatCompletionClient:
    from orca_math.models.local import load_local_model

    return load_local_model(rest or None, **options)


def _named(rest: str, kind: str, what: str, example: str) -> str:
    """`rest` (the spec after ``kind:``), or the one-sentence error when it is empty.

    Factories call it before importing their package, so a heavy or missing one cannot hide it.
    """
    if not rest:
        raise ModelSpecError(f"The spec '{kind}:' needs {what}, for example '{kind}:{example}'.")
    return rest


def _openai(rest: str, **options: Any) -> ChatCompletionClient:
    rest = _named(rest, "openai", "a model name", "gpt-4o")
    from orca_math.models.openai_family import load_openai

    return load_openai(rest, **options)


def _azure(rest: str, **options: Any) -> ChatCompletionClient:
    rest = _named(rest, "azure", "a deployment name", "gpt-4o")
    from orca_math.models.openai_family import load_azure

    return load_azure(rest, **options)


def _hf(rest: str, **options: Any) -> ChatCompletionClient:
    rest = _named(rest, "hf", "a model folder", "./checkpoints/m1")
    from orca_math.models.hf import TransformersChatCompletionClient

    return TransformersChatCompletionClient(rest, **options)


def _vllm(rest: str, **options: Any) -> ChatCompletionClient:
    rest = _named(rest, "vllm", "a checkpoint folder", "./checkpoints/m1")
    from orca_math.models.vllm import VLLMChatCompletionClient

    return VLLMChatCompletionClient(rest, **options)


def _vllm_serve(rest: str, **options: Any) -> ChatCompletionClient:
    rest = _named(rest, "vllm-serve", "a checkpoint folder", "./checkpoints/m1")
    from orca_math.models.vllm_served import ServedVLLMClient

    return ServedVLLMClient(rest, **options)


def _url(spec: str, **options: Any) -> ChatCompletionClient:
    from orca_math.models.openai_family import load_openai_compatible

    return load_openai_compatible(base_url=spec, **options)


SPEC_KINDS.add("local", _local, help="'local', 'local:<file.gguf>'", tags={"checkpoint"})
SPEC_KINDS.add("openai", _openai, help="'openai:<model>'")
SPEC_KINDS.add("azure", _azure, help="'azure:<deployment>'")
SPEC_KINDS.add("hf", _hf, help="'hf:<path>'", tags={"checkpoint"})
SPEC_KINDS.add("vllm", _vllm, help="'vllm:<path>'", tags={"checkpoint"})
SPEC_KINDS.add("vllm-serve", _vllm_serve, help="'vllm-serve:<path>'", tags={"checkpoint"})
SPEC_KINDS.add("url", _url, help="an http(s):// URL of an OpenAI-compatible server",
               accepts=lambda spec: spec.startswith(("http://", "https://")))


def spec_forms(*, discover: bool = False) -> str:
    """How each registered kind is written, in one line (orca-math's own only, unless `discover`): for help texts."""
    return ", ".join(plugin.help or f"'{plugin.name}:...'" for plugin in SPEC_KINDS.entries(discover=discover).values())


def spec_help() -> str:
    """The spec forms every registered kind accepts (plug-ins' too), as one clause for error messages."""
    return f"use {spec_forms(discover=True)}, or pass a ChatCompletionClient"


def load_model(spec: str = "local", **options: Any) -> ChatCompletionClient:
    """Build a `ChatCompletionClient` from a spec string (see `orca_math.models`).

    Args:
        spec: the model spec.
        **options: passed to the client: e.g. ``base_url``, ``api_key``, ``model``, ``timeout``,
            ``transport`` ("aiohttp", the default for OpenAI-compatible endpoints, or "httpx"),
            ``n_ctx`` / ``n_threads`` for local models.

    Raises:
        ModelSpecError: the spec is not understood.
        MissingAPIKeyError: an OpenAI or Azure spec without a key.
        ServerUnreachableError: a URL spec whose server does not answer.
    """
    if _is_ref(spec):
        return spec.build(**options)  # type: ignore[union-attr]
    plugin, argument = spec_kind(spec)
    return plugin.factory(argument, **options)


def spec_kind(spec: str) -> tuple[Any, str]:
    """The registered kind that builds `spec`, and what its factory is given (the rest, or the whole spec).

    Nothing is built: a `ModelRef` asks this when it is made, so an unknown spec is refused at once.

    Raises:
        ModelSpecError: not a non-empty string, or no registered kind understands it.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"A model spec must be a non-empty string: {spec_help()}.")
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    # orca-math's own kinds first (a plug-in never replaces one), then the installed packages'.
    for discover in (False, True):
        recognised = SPEC_KINDS.choose(spec, discover=discover)
        if recognised is not None:
            return recognised, spec
        plugin = SPEC_KINDS.entries(discover=discover).get(kind)
        if plugin is not None and plugin.accepts is None:  # kinds with a test are never named by a prefix
            return plugin, rest
    raise ModelSpecError(f"Unknown model spec {spec!r}: {spec_help()}.")


def resolve_model(model: ModelLike, **options: Any) -> ChatCompletionClient:
    """Return `model` itself when it is a client, else the client its spec or `ModelRef` builds (with `options`)."""
    from autogen_core.models import ChatCompletionClient

    if _is_ref(model):
        return model.build(**options)  # type: ignore[union-attr]
    if isinstance(model, ChatCompletionClient):
        return model
    if hasattr(model, "create") and hasattr(model, "model_info"):  # duck-typed client
        return model  # type: ignore[return-value]
    return load_model(model, **options)


def _is_ref(model: Any) -> bool:
    """Whether `model` is a `orca_math.models.ref.ModelRef`. Asked by its two methods, not imported: the
    ref module builds on this one, and an import back would close a circle."""
    return not isinstance(model, str) and hasattr(model, "spec") and callable(getattr(model, "with_defaults", None))


def describe_client(client: ChatCompletionClient, *, with_url: bool = True) -> str:
    """A short, key-free description of a client: its model name and, optionally, its endpoint.

    Read from the client's `ModelIdentity` (see `orca_math.models.identity`).
    """
    return identity_of(client).describe(with_url=with_url)


def describe_spec(model: ModelLike) -> str:
    """A key-free string naming a model (a spec, a `ModelRef` or a client), for manifests and run keys.

    A spec naming a local checkpoint (``hf:<folder>``, ``local:<file.gguf>``) carries the
    checkpoint's `checkpoint_fingerprint`, so the run key changes when its weights do.
    """
    if _is_ref(model):
        return model.describe()  # type: ignore[union-attr]
    if isinstance(model, str):
        spec = normalize_endpoint(without_credentials(model))
        kind, _, rest = spec.partition(":")
        plugin = SPEC_KINDS.get(kind) if rest else None
        path = local_checkpoint(rest) if plugin is not None and "checkpoint" in plugin.tags else None
        return f"{spec} (checkpoint {checkpoint_fingerprint(path)})" if path is not None else spec
    return describe_client(model)


__all__ = ["SPEC_KINDS", "describe_client", "describe_spec", "load_model", "resolve_model", "spec_forms", "spec_help",
           "spec_kind"]
