"""A run is a folder: a manifest plus append-only checkpoint files per stage.

The run key hashes everything that changes results (inputs, stages, agent cards and templates,
model, parameters) and nothing that doesn't (concurrency, progress display). Running the same
command again finds the same folder and resumes it; a changed prompt, model or parameter gives a
new key and so a new folder, never a mix of old and new outputs.

One process at a time works in an output folder: a `RunFolder` holds an exclusive lock
(`fcntl.flock` on `<root>/.orca-math.lock`, which holds the PID) until it is closed or its
process ends, when the OS lets go even after a SIGKILL. A second process is refused at once with
`RunFolderBusyError`; the same process may open the folder again (a notebook rerunning a cell).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.runner import RunStopped
from orca_math.errors import RunFolderError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

#: The lock file in an output folder's root.
LOCK_FILE = ".orca-math.lock"

#: Config keys that never enter the run key.
NON_KEY_FIELDS = frozenset({"concurrency", "progress", "resume", "fresh", "out", "log_level", "dry_run"})


def run_key(config: dict[str, Any]) -> str:
    """A short stable hash of a run's config, ignoring `NON_KEY_FIELDS`."""
    keyed = {k: v for k, v in config.items() if k not in NON_KEY_FIELDS}
    body = json.dumps(keyed, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class RunFolderBusyError(RunStopped, RunFolderError):
    """Another process is running in this output folder; nothing was started."""


class _FolderLocks:
    """The output folders this process holds, each locked once and counted per `RunFolder`."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[Path, list[int]] = {}  # folder -> [lock file descriptor, RunFolders open on it]

    def acquire(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        folder = root.resolve()
        with self._guard:
            if folder in self._held:
                self._held[folder][1] += 1
                return folder
            if fcntl is None:
                self._held[folder] = [-1, 1]
                return folder
            fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                pid = f" (PID {holder})" if holder.isdigit() else ""
                raise RunFolderBusyError(
                    f"Another orca-math process{pid} is already running in {root}; wait for it to finish or choose another output folder."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._held[folder] = [fd, 1]
            return folder

    def release(self, folder: Path) -> None:
        with self._guard:
            entry = self._held.get(folder)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del self._held[folder]
                if entry[0] >= 0:
                    os.close(entry[0])  # closing the descriptor releases the flock; the file stays


_LOCKS = _FolderLocks()


class RunFolder:
    """The folder of one run: `manifest.json` and `stages/<name>.jsonl` checkpoint files.

    Opening one locks its output folder (`root`) against other processes until `close()` (or the
    object is collected, or the process ends).

    Args:
        root: the output folder the user chose; the run lives in `root/runs/<key>`.
        config: the run's config (JSON-serialisable, with no secrets).
        fresh: delete an existing run with the same key first.

    Raises:
        RunFolderBusyError: another process holds `root` (the message names its PID).
    """

    def __init__(self, root: str | Path, config: dict[str, Any], *, fresh: bool = False) -> None:
        from orca_math import __version__

        self.root = Path(root)
        # Before anything is read or deleted: a second process must not touch the first one's run.
        self._release = weakref.finalize(self, _LOCKS.release, _LOCKS.acquire(self.root))
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

    def close(self) -> None:
        """Let other processes use the output folder (idempotent)."""
        self._release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
