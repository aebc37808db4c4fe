"""Anthropic Message Batches: ``requests: [{custom_id, params}]`` in one call, poll, stream the results.

Through the official `anthropic` SDK (the `batch` extra), with the key and base URL of the
model's client (autogen's `AnthropicChatCompletionClient`) or ``ANTHROPIC_API_KEY``. Each result's
``type`` is ``succeeded``, ``errored``, ``canceled`` or ``expired``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orca_math.engine.batch.backends.base import (
    BatchMissingError,
    BatchOutputLostError,
    RemoteStatus,
    ResultLine,
    SdkBatchBackend,
)
from orca_math.engine.batch.requests import Call, anthropic_params, result_of_anthropic_message
from orca_math.engine.batch.state import BatchRecord
from orca_math.errors import ConfigError


def _sdk_of(inner: Any):
    try:
        import anthropic
    except ImportError:
        raise ConfigError("Anthropic batches need the anthropic SDK: pip install 'orca-math[batch]'.") from None
    sdk = getattr(inner, "_client", None)
    if isinstance(sdk, anthropic.AsyncAnthropic):
        return sdk.with_options(max_retries=2)
    return anthropic.AsyncAnthropic(max_retries=2)


class AnthropicBatchBackend(SdkBatchBackend):
    """Anthropic's Message Batches API."""

    name = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def _make_sdk(self) -> Any:
        return _sdk_of(self.inner)

    def line(self, custom_id: str, call: Call) -> dict[str, Any]:
        return {"custom_id": custom_id, "params": anthropic_params(self.inner, call, model=self.model)}

    async def submit(self, record: BatchRecord, on_file: Any) -> str:
        with open(record.input_file, encoding="utf-8") as handle:
            requests = [json.loads(raw) for raw in handle if raw.strip()]
        batch = await self._call(self.sdk.messages.batches.create(requests=requests))
        return batch.id

    async def poll(self, record: BatchRecord) -> RemoteStatus:
        import anthropic

        try:
            batch = await self.sdk.messages.batches.retrieve(record.remote_id)
        except anthropic.NotFoundError:
            raise BatchMissingError(f"{self.where} has no message batch {record.remote_id} any more") from None
        except Exception as exc:
            self._reraise(exc)
        counts = batch.request_counts.model_dump()
        if batch.processing_status == "ended":
            return RemoteStatus("ended", counts, None)
        return RemoteStatus("running", counts, None)

    async def download(self, record: BatchRecord, status: RemoteStatus, path: Path) -> None:
        import anthropic

        partial = path.with_suffix(".part")
        try:
            with open(partial, "w", encoding="utf-8") as sink:
                async for result in await self.sdk.messages.batches.results(record.remote_id):
                    sink.write(json.dumps(result.model_dump(mode="json")) + "\n")
        except anthropic.NotFoundError:
            raise BatchOutputLostError(f"the results of message batch {record.remote_id} could not be downloaded "
                                       f"from {self.where} (404)") from None
        except Exception as exc:
            self._reraise(exc)
        partial.replace(path)

    def read(self, line: dict[str, Any]) -> ResultLine:
        custom_id = str(line.get("custom_id"))
        result = line.get("result") or {}
        kind = result.get("type")
        if kind == "succeeded":
            return custom_id, "succeeded", result_of_anthropic_message(result.get("message") or {}), None
        if kind == "errored":
            error = (result.get("error") or {}).get("error") or {}
            return custom_id, "errored", None, error.get("message") or "the request errored"
        return custom_id, kind if kind in ("expired", "canceled") else "errored", None, f"the request was {kind}"

    async def cancel(self, record: BatchRecord) -> None:
        if record.remote_id:
            await self._call(self.sdk.messages.batches.cancel(record.remote_id))

    async def close(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None


__all__ = ["AnthropicBatchBackend"]
