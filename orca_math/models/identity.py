"""What identifies a local checkpoint in run keys and cache keys: its config and its weight files.

A folder's name says nothing about its weights: ``iteration-1/model`` and ``iteration-3/model`` are
both "model", and a checkpoint retrained in place keeps its path. `checkpoint_fingerprint` hashes
the config and each weight file's name, size and modification time, so a run key changes when the
weights do, without reading gigabytes of weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
