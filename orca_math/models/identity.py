"""What identifies a model: a frozen `ModelIdentity` per client, and a local checkpoint's fingerprint.

`load_model` records a `ModelIdentity` for every client it builds (name, key-free endpoint,
provider, what it supports) in a registry keyed by the client object; nothing is patched onto
the client. `ManagedClient`, `describe_client`, sampling and the agents read it with `identity_of`.

What identifies a local checkpoint in run keys and cache keys: its config and its weight files.

A folder's name says nothing about its weights: ``iteration-1/model`` and ``iteration-3/model`` are
both "model", and a checkpoint retrained in place keeps its path. `checkpoint_fingerprint` hashes
the config and each weight file's name, size and modification time, so a run key changes when the
weights do, without reading gigabytes of weights.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Files whose bytes identify a checkpoint's weights (by name, size and modification time).
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.pt")
#: Small files hashed by content: they change what the weights mean.
CONFIG_FILES = ("config.json", "adapter_config.json")


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A short hash that changes whenever a checkpoint's config or weight files change.

    Args:
        folder: a checkpoint folder (its `CONFIG_FILES` by content, its `WEIGHT_PATTERNS` files by
            name, size and modification time), or one weight file such as a ``.gguf``.

    Raises:
        FileNotFoundError: nothing exists at `folder`.
    """
    path = Path(folder)
    digest = hashlib.sha256()
    if path.is_file():
        _add_file(digest, path)
        return digest.hexdigest()[:16]
    if not path.is_dir():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    for name in CONFIG_FILES:
        config = path / name
        if config.is_file():
            digest.update(f"{name}\0".encode())
            digest.update(config.read_bytes())
    weights = sorted({file for pattern in WEIGHT_PATTERNS for file in path.glob(pattern) if file.is_file()})
    for file in weights:
        _add_file(digest, file)
    return digest.hexdigest()[:16]


def local_checkpoint(location: str | Path) -> Path | None:
    """`location` as a local path when it names an existing file or folder (else a Hub id: None)."""
    path = Path(location).expanduser()
    return path if path.exists() else None


def _add_file(digest, file: Path) -> None:
    stat = file.stat()
    digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())


# --------------------------------------------------------------------------- model identity


@dataclass(frozen=True)
class ModelIdentity:
    """A frozen, key-free description of a model client, recorded when the client is built.

    Attributes:
        name: the model's name as providers price it ("gpt-4o", "local:SmolLM2-135M-Instruct.Q4_1").
        provider: "openai", "azure", "openai-compatible", "local", "hf", "vllm", "scripted" or "unknown".
        endpoint: where it is served, without credentials, normalised (None: in-process).
        checkpoint: the weights' `checkpoint_fingerprint` for local checkpoints, else None.
        supports_seed: a per-request ``seed`` reaches the model (k seeded samples differ reproducibly).
        one_at_a_time: the client generates one reply at a time (queued calls only wait for it).
        structured_output: replies can be constrained to a JSON Schema.
        samples_per_request: the client returns several samples from one request (``n``).
        queues_calls: calls wait in the model's own queue (an in-process batching engine), so a
            per-attempt timeout would cut calls that are late, not stuck.
    """

    name: str
    provider: str = "unknown"
    endpoint: str | None = None
    checkpoint: str | None = None
    supports_seed: bool = False
    one_at_a_time: bool = False
    structured_output: bool = False
    samples_per_request: bool = False
    queues_calls: bool = False

    def describe(self, *, with_url: bool = True) -> str:
        """"name" or "name at endpoint (checkpoint …)": what manifests, cache keys and messages show."""
        if not with_url or not self.endpoint:
            return self.name
        weights = f" (checkpoint {self.checkpoint})" if self.checkpoint else ""
        return f"{self.name} at {self.endpoint}{weights}"


_IDENTITIES: weakref.WeakKeyDictionary[Any, ModelIdentity] = weakref.WeakKeyDictionary()
_IDENTITIES_BY_ID: dict[int, ModelIdentity] = {}  # for clients that cannot be weakly referenced


def register_identity(client: Any, identity: ModelIdentity) -> Any:
    """Record `identity` for `client` (nothing is set on the client itself) and return the client."""
    try:
        _IDENTITIES[client] = identity
    except TypeError:  # not weak-referenceable (or unhashable): keyed by id for the process's life
        _IDENTITIES_BY_ID[id(client)] = identity
    return client


def identity_of(client: Any) -> ModelIdentity:
    """The identity recorded for `client` by `load_model`, or one read from its public API.

    A client built elsewhere (any autogen-ext client) is described from its component config
    (``dump_component()``: its ``model`` and ``base_url``) and its `model_info`; failing that, by its
    class name.
    """
    try:
        found = _IDENTITIES.get(client)
    except TypeError:
        found = None
    found = found or _IDENTITIES_BY_ID.get(id(client))
    if found is not None:
        return found
    return _foreign_identity(client)


def _foreign_identity(client: Any) -> ModelIdentity:
    config: dict[str, Any] = {}
    dump = getattr(client, "dump_component", None)
    if callable(dump):
        try:
            config = dict(dump().config or {})
        except Exception:  # not every client can describe itself; its class name will do
            config = {}
    name = config.get("model") or config.get("azure_deployment") or type(client).__name__
    endpoint = config.get("base_url") or config.get("azure_endpoint")
    if endpoint:
        from orca_math.models.endpoints import normalize_endpoint, without_credentials

        endpoint = normalize_endpoint(without_credentials(str(endpoint)))
    info = _model_info(client)
    return ModelIdentity(name=str(name), provider="unknown", endpoint=endpoint,
                         structured_output=bool(info.get("structured_output", False)))


def _model_info(client: Any) -> dict[str, Any]:
    try:
        return dict(client.model_info)
    except Exception:  # a duck-typed client without model_info
        return {}
