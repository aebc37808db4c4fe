"""Check every path a command will write before it loads a model or makes a call.

A bad `--out` used to surface as a traceback, sometimes only after every call was paid for. Each
command now checks its output paths first, and each problem is one sentence naming the flag:

* a file where a folder is needed, or a folder where a file is needed (also inside the folder:
  `runs` or `dataset` being a file);
* a place that cannot be written (a read-only file system, no permission), found by creating and
  removing a probe file, because `os.access` says yes to root even on a read-only mount;
* an existing file or folder that this command did not write: refused unless the user passes
  `--overwrite` (or `--fresh` for `solve`), so `--out precious.jsonl` never replaces a stranger's file.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """What a command writes inside its output folder.

    Attributes:
        files: names the command writes as files.
        folders: names the command writes as folders.
        markers: names or glob patterns whose presence shows the folder is this command's own
            output (an earlier run, resumed); then nothing is refused.
        clobbers_anything: the command writes names it cannot list in advance (a model folder), so
            any entry of a folder that is not its own would be at risk.
    """

    files: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    clobbers_anything: bool = False


#: The output folder of each command (solve's run folder is a generate-style folder beside its file).
LAYOUTS: dict[str, Layout] = {
    "generate": Layout(
        files=("summary.json", "drops.jsonl", "failures.jsonl", "README.md", "cache.sqlite", "data.parquet", "data.jsonl",
               "recipe.yaml", "estimate.json"),
        folders=("dataset", "runs", "pilot"), markers=("runs", "summary.json", "estimate.json"),
    ),
    "eval": Layout(files=("items.jsonl", "summary.json", "table.md", "recipe.yaml", "cache.sqlite"), folders=("runs",), markers=("runs", "items.jsonl")),
    "sample": Layout(files=("attempts.jsonl", "failures.jsonl", "summary.json"), folders=("runs",),
                     markers=("runs", "attempts.jsonl")),
    "preferences": Layout(files=("stats.json",), folders=("labels", "dpo", "kto", "sft"), markers=("stats.json", "labels")),
    "learn": Layout(files=("learner.json", "summary.json", "iterations.md", "iterations.json", "recipe.yaml",
                           "cache.sqlite"), folders=("data",),
                    markers=("learner.json", "data", "iteration-*"), clobbers_anything=True),
    "train": Layout(files=("config.json",), markers=("config.json", "training_args.bin", "trainer_state.json",
                                                      "adapter_config.json", "checkpoint-*"), clobbers_anything=True),
    "dataset": Layout(files=("state.json", "dataset_info.json"), markers=("state.json", "dataset_dict.json"),
                      clobbers_anything=True),
    "report": Layout(files=("report.html",), markers=("report.html",)),
}


def _fail(message: str) -> None:
    from orca_math.cli.messages import UserError

    raise UserError(message)


def check_output_folder(path: str | Path, layout: Layout, *, flag: str = "--out", overwrite: bool = False) -> Path:
    """Check a folder a command will create or write into; returns it as a `Path`.

    Raises:
        UserError: the path is a file, something inside that must be a folder (or a file) is not,
            the place cannot be written, or the folder holds entries this command did not write
            (unless `overwrite`).
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        _fail(f"{flag} {folder} is a file, not a folder; choose a folder path (it is created when missing).")
    if not folder.exists():
        _check_can_create(folder, flag)
        return folder
    for name in layout.folders:
        if (folder / name).exists() and not (folder / name).is_dir():
            _fail(f"{flag} {folder}: {folder / name} is a file where this command keeps a folder; move it away or choose another {flag}.")
    for name in layout.files:
        if (folder / name).is_dir():
            _fail(f"{flag} {folder}: {folder / name} is a folder where this command writes a file; move it away or choose another {flag}.")
    entries = sorted(entry.name for entry in folder.iterdir())
    if not overwrite and not _matches(entries, layout.markers):
        at_risk = entries if layout.clobbers_anything else [name for name in entries if name in (*layout.files, *layout.folders)]
        if at_risk:
            shown = ", ".join(at_risk[:3]) + (", ..." if len(at_risk) > 3 else "")
            _fail(f"{flag} {folder} holds {shown}, which orca-math did not write there; choose a new or empty folder, "
                  "or pass --overwrite to write into it anyway.")
    _probe_writable(folder, folder, flag)
    return folder


def check_output_file(path: str | Path, *, flag: str = "--out", owned: bool = False, overwrite: bool = False,
                      replace_hint: str = "--overwrite") -> Path:
    """Check a file a command will (re)write; returns it as a `Path`.

    Args:
        path: the file.
        flag: the option that named it, for messages.
        owned: the existing file is this command's own earlier output (so replacing it is expected).
        overwrite: the user allowed replacing a file that is not.
        replace_hint: the option(s) that allow replacing, for the message.

    Raises:
        UserError: the path is a folder, cannot be written, or is an existing file this command did
            not write (unless `owned` or `overwrite`).
    """
    file = Path(path).expanduser()
    if file.is_dir():
        _fail(f"{flag} {file} is a folder; give the path of a file to write.")
    if file.exists():
        if not (owned or overwrite):
            _fail(f"{flag} {file} already exists and this command did not write it; pass {replace_hint} to replace it, "
                  "or choose another path.")
        _probe_writable(file.parent, file, flag)  # files are replaced by a rename inside their folder
        return file
    _check_can_create(file, flag)
    return file


def check_not_input(output: str | Path, inputs: Iterable[str | Path | None], *, flag: str = "--out") -> None:
    """Refuse an output path that is one of the command's inputs (it would be destroyed while read)."""
    target = Path(output).expanduser().resolve()
    for source in inputs:
        if source is not None and Path(str(source)).expanduser().resolve() == target:
            _fail(f"{flag} {output} is also this command's input; write the output somewhere else.")


def first_row_has(path: str | Path, keys: Iterable[str]) -> bool:
    """Whether a JSON Lines file's first line is an object with all `keys` (a file this library wrote)."""
    try:
        with open(path, encoding="utf-8") as handle:
            row = json.loads(handle.readline() or "null")
    except (OSError, ValueError):
        return False
    return isinstance(row, dict) and all(key in row for key in keys)


def _matches(entries: list[str], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for name in entries for pattern in patterns)


def _check_can_create(path: Path, flag: str) -> None:
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        _fail(f"{flag} {path} cannot be created: {ancestor} is a file, not a folder.")
    _probe_writable(ancestor, path, flag)


def _probe_writable(folder: Path, target: Path, flag: str) -> None:
    try:
        handle, probe = tempfile.mkstemp(prefix=".orca-math-write-check-", dir=folder)
    except OSError as exc:
        why = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable by this user",
               errno.EPERM: "is not writable by this user"}.get(exc.errno or 0, f"cannot be written ({exc.strerror or exc})")
        if folder == target:
            _fail(f"{flag} {target} {why}; choose a place you can write to.")
        _fail(f"{flag} {target} cannot be written: {folder} {why}; choose a place you can write to.")
    os.close(handle)
    os.unlink(probe)


def add_overwrite_option(parser, what: str = "existing files") -> None:
    """The `--overwrite` flag of a command that writes outputs."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} that this command did not write (refused otherwise)")


__all__ = ["LAYOUTS", "Layout", "add_overwrite_option", "check_not_input", "check_output_file", "check_output_folder", "first_row_has"]
