"""Turn a finished output folder into a visual HTML report.

The folder is read through `orca_math.readers`, the reader `orca-math view` serves pages from: its
summary and dataset through `OutputFolder`, its checkpoint rows through `GenerationReader`. Missing
pieces read as empty, so a partial folder still reports.
"""

from __future__ import annotations

from pathlib import Path

from orca_math.errors import ConfigError
from orca_math.readers import OutputFolder, OutputFolderError

#: Raised for a folder that is not an orca-math output folder (the layout module's error).
ReportError = OutputFolderError


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `report.html` with its PNG charts for an output folder.

    Args:
        run_dir: a generation or evaluation output folder (or `OUT/runs/<key>`).
        out: the folder to write into; defaults to `<run_dir>/report`.

    Returns:
        The path of `report.html`. Images sit beside it and are referenced by relative path.

    Raises:
        ReportError: `run_dir` is not an output folder.
        ConfigError: matplotlib (the `report` extra) is not installed.
    """
    folder = OutputFolder.open(run_dir)
    render_report = _renderer()
    target = Path(out) if out is not None else folder.path / "report"
    target.mkdir(parents=True, exist_ok=True)
    page = render_report(folder, target)
    path = target / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _renderer():
    """`render_report`, or one sentence naming the extra when matplotlib (the charts) is not installed."""
    try:
        from orca_math.report.html import render_report
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "matplotlib":
            raise
        raise ConfigError("The report draws its charts with matplotlib, which is not installed: "
                          "pip install 'orca-math[report]'.") from None
    return render_report


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Deprecated name of `write_run_report`."""
    import warnings

    warnings.warn("orca_math.report.write_report is now write_run_report; the old name goes in the next release",
                  DeprecationWarning, stacklevel=2)
    return write_run_report(run_dir, out)


__all__ = ["OutputFolder", "ReportError", "write_report", "write_run_report"]
