"""The folders a viewer shows, and what can be compared: whole folders, runs inside one, loop iterations.

A source id is a string: `"0"` is the first folder given, `"0:run:<key>"` one run inside a
generation output folder, `"0:iter:<n>"` one iteration of a learning loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orca_math.readers import FolderReader, GenerationReader, LoopReader, open_folder, run_folders
from orca_math.readers.summaries import flatten, redact


class SourceError(LookupError):
    """A source id that names nothing this viewer shows."""


class Sources:
    """The readers behind a viewer.

    Args:
        folders: the folders to show; the first is the main one.
    """

    def __init__(self, folders: list[str | Path]) -> None:
        self.readers: list[FolderReader] = [open_folder(f) for f in folders]
        self._runs: dict[str, GenerationReader] = {}

    def reader(self, source: str = "0") -> FolderReader:
        """The reader of a folder (or of one run inside a generation folder)."""
        number, _, rest = (source or "0").partition(":")
        try:
            reader = self.readers[int(number)]
        except (ValueError, IndexError):
            raise SourceError(f"no source {source!r}") from None
        if rest.startswith("run:") and isinstance(reader, GenerationReader):
            key = rest[4:]
            run = reader.path / "runs" / key
            if not (run / "manifest.json").exists():
                raise SourceError(f"no run {key!r} in {reader.path}")
            if source not in self._runs:
                self._runs[source] = GenerationReader(reader.path, run_dir=run)
            return self._runs[source]
        if rest and not rest.startswith("iter:"):
            raise SourceError(f"no source {source!r}")
        return reader

    def listing(self) -> list[dict[str, Any]]:
        """Every comparable source: each folder, each run of an output folder holding several, each loop iteration."""
        found = []
        for number, reader in enumerate(self.readers):
            found.append({"id": str(number), "title": reader.title, "kind": reader.kind})
            if isinstance(reader, GenerationReader):
                runs = run_folders(reader.path)
                if len(runs) > 1:
                    found += [{"id": f"{number}:run:{run.name}", "title": f"run {run.name} in {reader.path}", "kind": "generation"}
                              for run in runs]
            if isinstance(reader, LoopReader):
                found += [{"id": f"{number}:iter:{it.get('iteration')}", "title": f"iteration {it.get('iteration')} of {reader.path}",
                           "kind": "iteration"} for it in reader.iterations()]
        return found

    def _side(self, source: str) -> dict[str, Any]:
        reader = self.reader(source)
        _, _, rest = source.partition(":")
        if rest.startswith("iter:") and isinstance(reader, LoopReader):
            number = int(rest[5:]) if rest[5:].isdigit() else -1
            found = next((it for it in reader.iterations() if it.get("iteration") == number), None)
            if found is None:
                raise SourceError(f"no iteration {rest[5:]!r} in {reader.path}")
            details = found.get("details") or {}
            scores = {**{f"{name}": v for name, v in (found.get("benchmarks") or {}).items()},
                      **{k: v for k, v in flatten({n: details.get(n) for n in ("samples", "labels", "preferences", "eval")}).items()
                         if isinstance(v, int | float) or v is None}}
            settings = flatten(redact({"method": found.get("method"), "model": found.get("model"),
                                       "preset": (details.get("train") or {}).get("preset")}))
            return {"id": source, "title": f"iteration {number} of {reader.path}", "scores": scores, "settings": settings}
        return {"id": source, "title": reader.title, "scores": reader.scores(), "settings": reader.settings()}

    def compare(self, a: str, b: str) -> dict[str, Any]:
        """Two sources side by side: every score of either, and only the settings that differ."""
        left, right = self._side(a), self._side(b)
        names = list(dict.fromkeys([*left["scores"], *right["scores"]]))
        keys = sorted(set(left["settings"]) | set(right["settings"]))
        differing = [[k, left["settings"].get(k), right["settings"].get(k)] for k in keys
                     if left["settings"].get(k) != right["settings"].get(k)]
        return {"a": {"id": a, "title": left["title"]}, "b": {"id": b, "title": right["title"]},
                "scores": [[n, left["scores"].get(n), right["scores"].get(n)] for n in names],
                "settings": differing, "same_settings": len(keys) - len(differing)}
