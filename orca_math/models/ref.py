"""`ModelRef`: a model as plain data (a spec and its `load_model` options) that travels down to where calls are made.

A client holds sessions, locks and sometimes loaded weights: it cannot travel between processes,
and building one where no call is made wastes a connection or a GPU. So the command line, recipes
and the Python API hand the engine a `ModelRef`, and the client is built only where its calls are
made. The ``model`` walk goes one way, from the flag to the HTTP call:

1. ``--model`` / ``--model-name`` / ``--base-url`` (or a recipe's ``model`` section) become a
   `ModelRef` (`orca_math.cli.common.model_from_args`, `ModelSection.ref`);
2. ``Pipeline(model=...)``, ``evaluate``, ``sample_responses``, ``IterativeLearner``'s sampler and a
   stage's own ``model=`` take it as it is (a spec string becomes a `ModelRef` through `as_model`;
   a ready client is kept as it is);
3. `orca_math.engine.jobs.run_job` folds the job's load options into it (`ModelRef.with_defaults`)
   and names it in the run's manifest and key with `ModelRef.describe`;
4. locally, `Engine.client(ref)` → `build_client` → `ModelRef.build` → `load_model(spec, **options)`
   → the spec kind's factory → the provider's client, wrapped once in a `ManagedClient`, which
   makes the HTTP call;
5. on a remote executor (Ray), the `RemoteStage` carries the ref to each worker, whose
   `StageWorker` builds its client through the same `build_client` → `ModelRef.build` path; the
   driver binds a stand-in for checkpoints only the workers load (`orca_math.models.worker_loaded`).

Nothing on that path climbs back up: no layer looks a client up to find the spec it came from.

Secrets: options named like keys (``api_key``, tokens, passwords) are kept out of `repr`,
`describe` (so out of manifests and run keys) and everything written; the usual place for a key is the environment
(``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``), which `load_model` reads where the client is built.
A callable option (``azure_ad_token_provider``) is refused: pass a client built with
`load_model` instead (local executor).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orca_math.models.endpoints import normalize_endpoint, without_credentials
from orca_math.models.errors import ModelSpecError
from orca_math.models.specs import describe_spec, load_model, spec_kind

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

#: Option names whose values are secrets: never shown, described or written.
SECRET_OPTIONS = frozenset({"api_key", "azure_ad_token", "password", "token", "secret", "default_headers"})
#: Options that change how a call is sent, not what the model answers: left out of `describe` (run keys).
CALL_OPTIONS = frozenset({"transport", "timeout", "device", "n_threads", "max_retries"})


def is_secret_option(name: str) -> bool:
    """Whether a `load_model` option holds a secret (an API key, a token, a password)."""
    return name in SECRET_OPTIONS or name.endswith(("_api_key", "_token", "_secret", "_password"))


class ModelRef:
    """A model spec and its `load_model` options: frozen, picklable, key-free when shown.

    Args:
        spec: the model spec (see `orca_math.models`), e.g. ``"openai:gpt-4o-mini"``,
            ``"http://127.0.0.1:8000/v1"``, ``"hf:ckpt/m1"``.
        options: `load_model` options (``model``, ``base_url``, ``prompt_format`` ...), as a
            mapping or as keyword arguments.

    A ref without options equals (and hashes as) its spec string, so ``ModelRef("local") == "local"``.

    Raises:
        ModelSpecError: an empty or unknown spec, or an option that is a callable (it cannot travel).

    Example:
        >>> ref = ModelRef("http://127.0.0.1:8000/v1", model="qwen2.5-7b")
        >>> client = ref.build()  # load_model("http://127.0.0.1:8000/v1", model="qwen2.5-7b")
    """

    __slots__ = ("_options", "spec")

    def __init__(self, spec: str, options: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        if isinstance(spec, ModelRef):
            options, spec = {**spec.options, **(options or {})}, spec.spec
        spec_kind(spec)  # an unknown spec is refused here, before any work, not where it is built
        merged = {**(options or {}), **more}
        for name, value in merged.items():
            if callable(value):
                raise ModelSpecError(f"ModelRef option {name!r} is a {type(value).__name__}, which cannot travel to "
                                     "where clients are built; pass a client made by load_model(spec, ...) instead.")
        object.__setattr__(self, "spec", spec.strip())
        object.__setattr__(self, "_options", tuple(sorted(merged.items())))

    @property
    def options(self) -> dict[str, Any]:
        """The `load_model` options (a copy)."""
        return dict(self._options)

    def build(self, **overrides: Any) -> ChatCompletionClient:
        """The client: ``load_model(spec, **options, **overrides)`` (the only place a ref becomes a client).

        Raises:
            ModelSpecError, MissingAPIKeyError, ServerUnreachableError: as `load_model`.
        """
        return load_model(self.spec, **{**self.options, **overrides})

    def build_without_key(self) -> ChatCompletionClient:
        """The client, with a placeholder API key when the environment has none: for work that sends no
        request with it (naming the model, estimating a run), which must not need the key.

        Raises:
            ModelSpecError, ServerUnreachableError: as `load_model`.
        """
        from orca_math.models.errors import MissingAPIKeyError

        try:
            return self.build()
        except MissingAPIKeyError:
            return self.build(api_key="placeholder-never-sent")

    def with_options(self, **options: Any) -> ModelRef:
        """A copy with `options` added (they win over the ref's own)."""
        return ModelRef(self.spec, {**self.options, **options})

    def with_defaults(self, defaults: Mapping[str, Any] | None) -> ModelRef:
        """A copy with `defaults` under the ref's own options (the ref's win): a job's load options."""
        return ModelRef(self.spec, {**(defaults or {}), **self.options}) if defaults else self

    @property
    def kind(self) -> str:
        """The spec's kind, as the registry names it ("openai", "hf", "url" for an http(s) URL, ...)."""
        if self.spec.startswith(("http://", "https://")):
            return "url"
        return self.spec.partition(":")[0]

    def describe(self) -> str:
        """A key-free description for manifests and run keys.

        The spec as `describe_spec` names it (no credentials, a local checkpoint's fingerprint),
        then the options that change what the model answers (a served model's name, a prompt
        format), never secrets and never how calls are sent (transport, timeout, device).
        """
        named = describe_spec(self.spec)
        shown = {name: value for name, value in self._options if not is_secret_option(name) and name not in CALL_OPTIONS}
        if not shown:
            return named
        if "base_url" in shown:
            shown["base_url"] = normalize_endpoint(without_credentials(str(shown["base_url"])))
        return f"{named} {json.dumps(shown, sort_keys=True, default=str)}"

    def _public(self) -> tuple[tuple[str, Any], ...]:
        return tuple((name, "***" if is_secret_option(name) else value) for name, value in self._options)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._public())
        return f"ModelRef({without_credentials(self.spec)!r}{', ' + shown if shown else ''})"

    def __str__(self) -> str:
        return without_credentials(self.spec) if not self._options else repr(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return not self._options and self.spec == other.strip()
        if not isinstance(other, ModelRef):
            return NotImplemented
        return self.spec == other.spec and self._options == other._options

    def __hash__(self) -> int:
        if not self._options:
            return hash(self.spec)
        try:
            return hash((self.spec, self._options))
        except TypeError:  # an unhashable option value (a list of stop words)
            return hash((self.spec, repr(self._options)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ModelRef is frozen: make a new one with with_options(...)")

    def __reduce__(self) -> tuple[Any, ...]:
        return ModelRef, (self.spec, self.options)


def as_model(model: Any, **options: Any) -> Any:
    """What `model=` arguments become: a spec string (or a `ModelRef`) a `ModelRef`, a client itself.

    Args:
        model: a spec, a `ModelRef`, a `ChatCompletionClient`, or None (kept: no model).
        **options: `load_model` options under a spec's or ref's own (a ref's options win); ignored
            for a client, which is built already.
    """
    if model is None or isinstance(model, ModelRef) and not options:
        return model
    if isinstance(model, str | ModelRef):
        return ModelRef(model).with_defaults(options)
    return model


__all__ = ["CALL_OPTIONS", "SECRET_OPTIONS", "ModelRef", "as_model", "is_secret_option"]
