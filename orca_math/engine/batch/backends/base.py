"""What every batch backend does: build request lines, submit a file, poll, download and read results.

A backend knows one provider's wire format; everything durable (what was sent, what came back)
is `BatchCalls`' business through `orca_math.engine.batch.state`. Results are downloaded to a
file in the run's batch folder first and read from there, so a crash after downloading never
asks the provider again, and memory stays flat however large the batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from orca_math.engine.batch.requests import Call
from orca_math.engine.batch.state import BatchRecord
from orca_math.models.errors import ModelError


class BatchOutputLostError(ModelError):
    """The provider says a batch ended, but its results cannot be downloaded."""

    stops_run = False


class BatchMissingError(ModelError):
    """The provider no longer knows a batch this run folder recorded."""

    stops_run = False


@dataclass
class RemoteStatus:
    """A batch as the provider reports it.

    Attributes:
        state: "running", "ended" (results can be downloaded, some may have failed), or "failed"
            (the whole batch was refused: nothing to download).
        counts: the provider's request counts.
        reason: why it failed, in the provider's words.
        refs: what the download needs (output and error file ids, a results URL).
    """

    state: str
    counts: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    refs: dict[str, Any] = field(default_factory=dict)


#: (custom_id, outcome, stored result or None, reason or None); outcome is "succeeded", "errored", "expired" or "canceled".
ResultLine = tuple[str, str, dict[str, Any] | None, str | None]


class BatchBackend(ABC):
    """One provider's batch API.

    Attributes:
        name: "openai", "azure", "anthropic" or "vllm".
        max_requests: requests per batch the provider takes.
        max_bytes: bytes per batch input the provider takes.
    """

    name: str = "batch"
    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024

    def __init__(self, inner: Any, *, model: str) -> None:
        self.inner = inner
        self.model = model

    @abstractmethod
    def line(self, custom_id: str, call: Call) -> dict[str, Any]:
        """The input line of one call (what goes in the batch file or request list)."""

    @abstractmethod
    async def submit(self, record: BatchRecord, on_file: Any) -> str:
        """Send the batch whose input file is `record.input_file`; returns the provider's batch id.

        Calls `on_file(file_id)` as soon as an uploaded file has an id, before the batch is created.
        """

    async def find(self, record: BatchRecord) -> str | None:
        """The provider's id of a batch created from `record`'s uploaded file whose id was never recorded."""
        return None

    @abstractmethod
    async def poll(self, record: BatchRecord) -> RemoteStatus:
        """The batch's state at the provider. Raises `BatchMissingError` when the provider has no such batch."""

    @abstractmethod
    async def download(self, record: BatchRecord, status: RemoteStatus, path: Path) -> None:
        """Write the batch's result lines to `path` (replacing it). Raises `BatchOutputLostError` when they are gone."""

    @abstractmethod
    def read(self, line: dict[str, Any]) -> ResultLine:
        """One downloaded line as (custom_id, outcome, stored result, reason)."""

    async def cancel(self, record: BatchRecord) -> None:  # noqa: B027 -- a backend without cancel ignores it
        """Ask the provider to stop the batch (finished requests keep their results)."""

    async def close(self) -> None:  # noqa: B027 -- nothing to release by default
        """Release connections."""

    def read_file(self, path: Path) -> Iterator[ResultLine]:
        """Every result line of a downloaded file, read lazily."""
        import json

        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                if raw.strip():
                    yield self.read(json.loads(raw))


class SdkBatchBackend(BatchBackend):
    """A backend that talks to its provider through an SDK client made from the inner client.

    Subclasses override `_make_sdk` (the SDK client, built on first use so a backend that is never
    used needs no SDK) and call the provider through `_call` or translate errors with `_reraise`.
    """

    def __init__(self, inner: Any, *, model: str) -> None:
        super().__init__(inner, model=model)
        self._sdk: Any = None

    @abstractmethod
    def _make_sdk(self) -> Any:
        """The provider's SDK client for the batch endpoints."""

    @property
    def sdk(self) -> Any:
        """The SDK client (made once)."""
        if self._sdk is None:
            self._sdk = self._make_sdk()
        return self._sdk

    @property
    def where(self) -> str:
        """The provider's base URL, for messages (never a key)."""
        return str(self.sdk.base_url).rstrip("/")

    async def _call(self, coroutine: Any) -> Any:
        """Await an SDK call, its errors as orca-math's `ModelError`s where they are known ones."""
        try:
            return await coroutine
        except Exception as exc:
            self._reraise(exc)

    def _reraise(self, exc: BaseException) -> NoReturn:
        """Raise `exc` as orca-math's `ModelError` (401 in one sentence, ...), or as it is when unknown."""
        translated = translate(exc, where=self.where)
        raise translated if translated is not exc else exc from None


def translate(exc: BaseException, *, where: str) -> BaseException:
    """An SDK error as orca-math's `ModelError` (401 in one sentence, ...), else `exc` itself."""
    from orca_math.models.errors import translate_error

    return translate_error(exc, where=where)


__all__ = ["BatchBackend", "BatchMissingError", "BatchOutputLostError", "RemoteStatus", "ResultLine", "SdkBatchBackend",
           "translate"]
