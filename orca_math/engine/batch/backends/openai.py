"""OpenAI and Azure OpenAI batches: upload a JSONL file (purpose "batch"), create a 24 h batch, poll, download.

Through the official `openai` SDK, with the same key, base URL (or Azure endpoint and API
version) as the model's online client. Input lines are ``{custom_id, method: "POST", url, body}``;
output and error files carry ``{custom_id, response: {status_code, body}, error}``, in any order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orca_math.engine.batch.backends.base import (
    BatchMissingError,
    BatchOutputLostError,
    RemoteStatus,
    ResultLine,
    SdkBatchBackend,
)
from orca_math.engine.batch.requests import Call, openai_body, result_of_chat_completion
from orca_math.engine.batch.state import BatchRecord

_ENDED = ("completed", "expired", "cancelled")
_RUNNING = ("validating", "in_progress", "finalizing", "cancelling")


def _sdk_of(inner: Any):
    """The inner client's own AsyncOpenAI (or AsyncAzureOpenAI), copied with retries of its own for batch calls."""
    import openai

    sdk = getattr(inner, "_client", None)
    if isinstance(sdk, openai.AsyncOpenAI):
        # The files and batches endpoints are few and slow: the SDK's own retries (2) are enough,
        # and its httpx transport handles multipart uploads.
        return sdk.copy(max_retries=2, http_client=openai.DefaultAsyncHttpxClient())
    import os

    return openai.AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY"), max_retries=2)


class OpenAIBatchBackend(SdkBatchBackend):
    """OpenAI's (and Azure OpenAI's) Files and Batches API."""

    name = "openai"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024
    url = "/v1/chat/completions"

    def __init__(self, inner: Any, *, model: str, completion_window: str = "24h") -> None:
        super().__init__(inner, model=model)
        self.completion_window = completion_window

    def _make_sdk(self) -> Any:
        return _sdk_of(self.inner)

    def line(self, custom_id: str, call: Call) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": self.url, "body": openai_body(self.inner, call, model=self.model)}

    async def submit(self, record: BatchRecord, on_file: Any) -> str:
        file_id = record.file_id
        if file_id is None:
            with open(record.input_file, "rb") as handle:
                uploaded = await self._call(self.sdk.files.create(file=(Path(record.input_file).name, handle), purpose="batch"))
            file_id = uploaded.id
            on_file(file_id)
        batch = await self._call(self.sdk.batches.create(input_file_id=file_id, endpoint=self.url,
                                                         completion_window=self.completion_window,
                                                         metadata={"orca_math_batch": record.id}))
        return batch.id

    async def find(self, record: BatchRecord) -> str | None:
        if record.file_id is None:
            return None
        async for batch in await self._call(self.sdk.batches.list(limit=100)):
            if batch.input_file_id == record.file_id:
                return batch.id
        return None

    async def poll(self, record: BatchRecord) -> RemoteStatus:
        import openai

        try:
            batch = await self.sdk.batches.retrieve(record.remote_id)
        except openai.NotFoundError:
            raise BatchMissingError(f"{self.where} has no batch {record.remote_id} any more") from None
        except Exception as exc:
            self._reraise(exc)
        counts = batch.request_counts.model_dump() if batch.request_counts else {}
        refs = {"output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id}
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors and batch.errors.data else []
            reason = "; ".join(f"{e.message}" + (f" (line {e.line})" if e.line else "") for e in errors[:3])
            return RemoteStatus("failed", counts, reason or "the provider reported the batch as failed", refs)
        if batch.status in _ENDED:
            return RemoteStatus("ended", counts, None if batch.status == "completed" else f"the batch {batch.status}", refs)
        return RemoteStatus("running", counts, None, refs)

    async def download(self, record: BatchRecord, status: RemoteStatus, path: Path) -> None:
        import openai

        partial = path.with_suffix(".part")
        with open(partial, "wb") as sink:
            for name in ("output_file_id", "error_file_id"):
                file_id = status.refs.get(name)
                if not file_id:
                    continue
                try:
                    async with self.sdk.files.with_streaming_response.content(file_id) as response:
                        async for chunk in response.iter_bytes():
                            sink.write(chunk)
                except openai.NotFoundError:
                    raise BatchOutputLostError(f"the {name.split('_')[0]} file {file_id} of batch {record.remote_id} "
                                               f"could not be downloaded from {self.where} (404)") from None
                except Exception as exc:
                    self._reraise(exc)
                sink.write(b"\n")
        partial.replace(path)  # a half-downloaded file is never read as the whole one

    def read(self, line: dict[str, Any]) -> ResultLine:
        custom_id = str(line.get("custom_id"))
        response = line.get("response") or {}
        error = line.get("error") or {}
        if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
            return custom_id, "succeeded", result_of_chat_completion(response["body"]), None
        code = str(error.get("code") or "")
        outcome = "expired" if "expired" in code else "canceled" if "cancel" in code else "errored"
        if not error and response:
            body_error = (response.get("body") or {}).get("error") or {}
            reason = f"HTTP {response.get('status_code')}: {body_error.get('message') or 'no message'}"
        else:
            reason = error.get("message") or code or "no result"
        return custom_id, outcome, None, reason

    async def cancel(self, record: BatchRecord) -> None:
        if record.remote_id:
            await self._call(self.sdk.batches.cancel(record.remote_id))

    async def close(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None


class AzureBatchBackend(OpenAIBatchBackend):
    """Azure OpenAI's batch API: the same files, with the deployment as each body's model and a global endpoint."""

    name = "azure"
    url = "/chat/completions"

    def line(self, custom_id: str, call: Call) -> dict[str, Any]:
        line = super().line(custom_id, call)
        deployment = getattr(getattr(self.inner, "_client", None), "_azure_deployment", None)
        if deployment:
            line["body"]["model"] = deployment
        return line


__all__ = ["AzureBatchBackend", "OpenAIBatchBackend"]
