"""One progress bar per stage (rich), silent when disabled or when output is not a terminal."""

from __future__ import annotations

from typing import Any


class _Hook:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_status(self, text: str) -> None:
        """Show extra live numbers (e.g. the adaptive concurrency) next to the bar."""
        if self._progress is not None:
            self._progress.update(self._task, status=text)


class StageProgress:
    """Context manager giving a progress hook per stage."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> StageProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
            )
            self._progress.start()
        return self

    def stage(self, name: str, total: int | None) -> _Hook:
        if self._progress is None:
            return _Hook(None, None)
        return _Hook(self._progress, self._progress.add_task(name, total=total, status=""))

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
