"""A run is a folder: a manifest plus append-only checkpoint files per stage.

The run key hashes everything that changes results (inputs, stages, agent cards and templates,
model, parameters) and nothing that doesn't (concurrency, progress display). Running the same
command again finds the same folder and resumes it; a changed prompt, model or parameter gives a
new key and so a new folder, never a mix of old and new outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from orca_math.engine.checkpoint import CheckpointFile

#: Config keys that never enter the run key.
NON_KEY_FIELDS = frozenset({"concurrency", "progress", "resume", "fresh", "out", "log_level", "dry_run"})


def run_key(config: dict[str, Any]) -> str:
    """A short stable hash of a run's config, ignoring `NON_KEY_FIELDS`."""
    keyed = {k: v for k, v in config.items() if k not in NON_KEY_FIELDS}
    body = json.dumps(keyed, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class RunFolder:
    """The folder of one run: `manifest.json` and `stages/<name>.jsonl` checkpoint files.

    Args:
        root: the output folder the user chose; the run lives in `root/runs/<key>`.
        config: the run's config (JSON-serialisable, with no secrets).
        fresh: delete an existing run with the same key first.
    """

    def __init__(self, root: str | Path, config: dict[str, Any], *, fresh: bool = False) -> None:
        from orca_math import __version__

        self.root = Path(root)
        self.config = config
        self.key = run_key(config)
        self.path = self.root / "runs" / self.key
        if fresh and self.path.exists():
            shutil.rmtree(self.path)
        self.resumed = (self.path / "manifest.json").exists()
        self.path.mkdir(parents=True, exist_ok=True)
        manifest_path = self.path / "manifest.json"
        if self.resumed:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.manifest["resumed_at"] = [*self.manifest.get("resumed_at", []), _now()]
        else:
            self.manifest = {"run_key": self.key, "library_version": __version__, "created_at": _now(), "config": config}
        self.write_manifest()

    def write_manifest(self) -> None:
        tmp = self.path / "manifest.json.tmp"
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str), encoding="utf-8")
        tmp.replace(self.path / "manifest.json")  # atomic: a crash never leaves half a manifest

    def checkpoint(self, stage: str) -> CheckpointFile:
        """The checkpoint file of a stage."""
        return CheckpointFile(self.path / "stages" / f"{stage}.jsonl")

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.write_manifest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
