"""The folder layout, in one place: where every job writes, and the reader that reports and cards use.

An output folder (the ``--out`` a user chose) holds a job's outputs and its runs::

    OUT/
      .orca-math.lock             the lock of the process working here (holds its PID)
      summary.json                the job's summary: run key, outputs, funnel (every job writes one)
      dataset/ drops.jsonl ...    the job's outputs (generation: dataset/, drops.jsonl, failures.jsonl)
      cache.sqlite                the response cache shared by the runs in this folder
      runs/<key>/manifest.json    a run: config, library version, layout version, status, funnel
      runs/<key>/stages/<stage>.jsonl   one append-only checkpoint per stage
      runs/<key>/stages/<stage>.jsonl.damaged, .stale   lines set aside: damaged ones, and those of
                                  items no longer among the stage's inputs (see `CheckpointFile`)

A run is a folder: a manifest plus append-only checkpoint files per stage.

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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from orca_math._version import __version__
from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.items import RunStopped
from orca_math.errors import RunFolderError
from orca_math.files import read_json, read_jsonl

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

#: The lock file in an output folder's root.
LOCK_FILE = ".orca-math.lock"
#: Names inside an output folder and a run folder.
SUMMARY_FILE = "summary.json"
RUNS_DIR = "runs"
MANIFEST_FILE = "manifest.json"
STAGES_DIR = "stages"
DATASET_DIR = "dataset"
DROPS_FILE = "drops.jsonl"
FAILURES_FILE = "failures.jsonl"
CACHE_FILE = "cache.sqlite"
#: The run folder layout this version writes; a manifest without it (or with another) is refused.
LAYOUT_VERSION = 2

#: Config keys that never enter the run key.
NON_KEY_FIELDS = frozenset({"concurrency", "progress", "resume", "fresh", "out", "log_level", "dry_run"})


def run_key(config: dict[str, Any]) -> str:
    """A short stable hash of a run's config, ignoring `NON_KEY_FIELDS`."""
    keyed = {k: v for k, v in config.items() if k not in NON_KEY_FIELDS}
    body = json.dumps(keyed, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def content_fingerprint(values: Iterable[Any]) -> str:
    """A short hash of a sequence of JSON-serialisable values (a job's input rows, in order), for run keys."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


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
        self.root = Path(root)
        # Before anything is read or deleted: a second process must not touch the first one's run.
        self._release = weakref.finalize(self, _LOCKS.release, _LOCKS.acquire(self.root))
        self.config = config
        self.key = run_key(config)
        self.path = self.root / RUNS_DIR / self.key
        if fresh:
            shutil.rmtree(self.path, ignore_errors=True)
            _refuse_old_layout(self.root, fresh=True)
        else:
            _refuse_old_layout(self.root, fresh=False)
        self.resumed = (self.path / MANIFEST_FILE).exists()
        self.path.mkdir(parents=True, exist_ok=True)
        if self.resumed:
            self.manifest = read_json(self.path / MANIFEST_FILE, error_type=RunFolderError)
            self.manifest["resumed_at"] = [*self.manifest.get("resumed_at", []), _now()]
        else:
            self.manifest = {"run_key": self.key, "layout": LAYOUT_VERSION, "library_version": __version__,
                             "created_at": _now(), "config": config}
        self.write_manifest()

    def write_manifest(self) -> None:
        tmp = self.path / (MANIFEST_FILE + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str), encoding="utf-8")
        tmp.replace(self.path / MANIFEST_FILE)  # atomic: a crash never leaves half a manifest

    def checkpoint(self, stage: str) -> CheckpointFile:
        """The checkpoint file of a stage."""
        return CheckpointFile(self.path / STAGES_DIR / f"{stage}.jsonl")

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


def _refuse_old_layout(root: Path, *, fresh: bool) -> None:
    """Stop at once, in one sentence, on an output folder written by an older layout: never mix them.

    With `fresh` the old runs are removed instead, as the user asked to start again.
    """
    runs = root / RUNS_DIR
    if not runs.is_dir():
        return
    for manifest in runs.glob(f"*/{MANIFEST_FILE}"):
        try:
            layout = json.loads(manifest.read_text(encoding="utf-8")).get("layout")
        except (OSError, ValueError, AttributeError):
            continue  # a damaged manifest of another run does not concern this one
        if layout == LAYOUT_VERSION:
            continue
        if fresh:
            shutil.rmtree(manifest.parent, ignore_errors=True)
            continue
        raise RunFolderError(
            f"{root} holds a run written by an older orca-math layout ({manifest.parent.name}); rerun with --fresh "
            "(fresh=True) to start again there, or point --out at a new folder."
        )


class OutputFolderError(RunFolderError):
    """A folder that is not an orca-math output folder."""


class OutputFolder:
    """An output folder read lazily: summary, manifest, dataset, drops, failures.

    The dataset card, the Hub push and the HTML report read its files through this. A stage
    checkpoint's rows are read for people by `orca_math.readers.GenerationReader` (the report's
    solved rows, the viewer's pages), not here. Missing pieces read as empty, so a partial folder
    still reports.

    Args:
        path: the folder holding `summary.json`.
        summary: the parsed `summary.json`.
        manifest: the run's parsed `manifest.json`, or None when there is none.
    """

    def __init__(self, path: Path, summary: dict[str, Any], manifest: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.summary = summary
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | Path) -> OutputFolder:
        """Open an output folder, or a run folder inside one (`OUT/runs/<key>`).

        Raises:
            OutputFolderError: the folder does not exist or holds neither `summary.json` nor `manifest.json`.
        """
        path = Path(path)
        if not path.is_dir():
            raise OutputFolderError(f"{path} is not a folder; pass the output folder of an orca-math command.")
        if not (path / SUMMARY_FILE).exists() and (path / MANIFEST_FILE).exists():
            return cls._from_run_folder(path)
        if not (path / SUMMARY_FILE).exists():
            raise OutputFolderError(f"{path} has no {SUMMARY_FILE}; pass the output folder of an orca-math command.")
        summary = read_json(path / SUMMARY_FILE, error_type=OutputFolderError)
        manifest = None
        key = summary.get("run_key")
        if key and (path / RUNS_DIR / key / MANIFEST_FILE).exists():
            manifest = read_json(path / RUNS_DIR / key / MANIFEST_FILE, error_type=OutputFolderError)
        return cls(path, summary, manifest)

    @classmethod
    def _from_run_folder(cls, run_dir: Path) -> OutputFolder:
        manifest = read_json(run_dir / MANIFEST_FILE, error_type=OutputFolderError)
        out = run_dir.parent.parent
        if (out / SUMMARY_FILE).exists():
            summary = read_json(out / SUMMARY_FILE, error_type=OutputFolderError)
            if summary.get("run_key") == manifest.get("run_key"):
                return cls(out, summary, manifest)
        # A run that never finished: the manifest may still carry a funnel.
        summary = {"run_key": manifest.get("run_key"), "run_dir": str(run_dir), "funnel": manifest.get("funnel") or {}}
        return cls(out, summary, manifest)

    @property
    def kind(self) -> str:
        """"evaluation" when the summary holds benchmark results, else "generation"."""
        if "benchmarks" in self.summary or "iterations" in self.summary:
            return "evaluation"
        return "generation"

    @property
    def run_dir(self) -> Path | None:
        key = self.summary.get("run_key")
        return self.path / RUNS_DIR / key if key else None

    @property
    def funnel(self) -> dict[str, Any]:
        return self.summary.get("funnel") or {}

    @property
    def config(self) -> dict[str, Any]:
        return (self.manifest or {}).get("config") or {}

    def stage_config(self, name: str) -> dict[str, Any] | None:
        """The manifest entry of a stage (`stage`, `class`, `params`, `agents`, `model`)."""
        return next((s for s in self.config.get("stages", []) if s.get("stage") == name), None)

    def dataset(self):
        """The final dataset as a `datasets.Dataset`, or None when `dataset/` is missing."""
        folder = self.path / DATASET_DIR
        if not (folder / "state.json").exists() and not (folder / "dataset_dict.json").exists():
            return None
        import datasets

        return datasets.load_from_disk(str(folder))

    def drops(self) -> Iterator[dict[str, Any]]:
        """Every row of `drops.jsonl` (nothing when the file is missing)."""
        yield from read_jsonl(self.path / DROPS_FILE, missing_ok=True)

    def failures(self) -> Iterator[dict[str, Any]]:
        """Every row of `failures.jsonl` (nothing when the file is missing)."""
        yield from read_jsonl(self.path / FAILURES_FILE, missing_ok=True)
