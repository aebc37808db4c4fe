"""The wire formats the fake batch server writes: OpenAI output lines, Anthropic results, chat completions.

Also `run_batch`, a stand-in for ``vllm run-batch`` that answers an OpenAI batch file offline.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from orca_math.tokens import estimate_tokens


@dataclass
class Batch:
    """One batch as the fake server keeps it."""

    id: str
    kind: str  # "openai" or "anthropic"
    lines: list[dict[str, Any]]
    created: float
    input_file_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    polls: int = 0
    status: str = "in_progress"
    faulty: bool = False
    results: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


def responder_reply(messages: Sequence[dict[str, Any]]) -> str:
    """The pipeline responder's reply to OpenAI-style message dicts (each agent gets its format)."""
    from autogen_core.models import AssistantMessage, SystemMessage, UserMessage

    from orca_math.testing.responders import pipeline_responder

    converted: list[Any] = []
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts: keep the text
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        role = message.get("role")
        if role == "system":
            converted.append(SystemMessage(content=content))
        elif role == "assistant":
            converted.append(AssistantMessage(content=content, source="assistant"))
        else:
            converted.append(UserMessage(content=content, source="user"))
    return pipeline_responder(converted)


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = list(body.get("messages") or [])
    system = body.get("system")
    if system:  # Anthropic keeps the system prompt beside the messages
        text = system if isinstance(system, str) else "".join(part.get("text", "") for part in system)
        messages.insert(0, {"role": "system", "content": text})
    return messages


def usage(body: dict[str, Any], content: str) -> tuple[int, int]:
    prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in messages_of(body))
    return prompt, estimate_tokens(content)


def openai_line(result: dict[str, Any], batch_id: str) -> dict[str, Any]:
    if not result["ok"]:
        code = {"expired": "batch_expired", "cancelled": "batch_cancelled"}.get(result["why"], "server_error")
        return {"id": f"req-{result['custom_id']}", "custom_id": result["custom_id"], "response": None,
                "error": {"code": code, "message": f"This request was not executed: the batch {result['why']}."}}
    return {"id": f"req-{result['custom_id']}", "custom_id": result["custom_id"], "error": None,
            "response": {"status_code": 200, "request_id": f"r-{batch_id}", "body": completion_body(result["body"], result["content"])}}


def completion_body(body: dict[str, Any], content: str) -> dict[str, Any]:
    """A ``chat.completion`` object answering `body` with `content`, with usage counts."""
    prompt, completion = usage(body, content)
    return {"id": "chatcmpl-batch", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "batch-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


def anthropic_line(result: dict[str, Any], batch_id: str) -> dict[str, Any]:
    if not result["ok"]:
        kind = {"cancelled": "canceled", "failed": "errored"}.get(result["why"], result["why"])
        out: dict[str, Any] = {"type": kind}
        if kind == "errored":
            out["error"] = {"type": "error", "error": {"type": "api_error", "message": "Internal server error."}}
        return {"custom_id": result["custom_id"], "result": out}
    prompt, completion = usage(result["body"], result["content"])
    message = {"id": f"msg_{result['custom_id']}", "type": "message", "role": "assistant", "model": result["body"].get("model"),
               "content": [{"type": "text", "text": result["content"]}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": prompt, "output_tokens": completion}}
    return {"custom_id": result["custom_id"], "result": {"type": "succeeded", "message": message}}


def parse_jsonl(data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    lines = []
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            return [], f"Line {number} is not valid JSON."
        if not isinstance(line, dict) or "custom_id" not in line or "body" not in line:
            return [], f"Line {number} needs custom_id, method, url and body."
        lines.append(line)
    return lines, None


def file_object(file_id: str, size: int, purpose: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()), "filename": f"{file_id}.jsonl",
            "purpose": purpose, "status": "processed"}


def run_batch(input_path: str, output_path: str, model: str) -> int:
    """What ``vllm run-batch -i IN -o OUT --model M`` does, with the responder's replies; returns the line count."""
    count = 0
    with open(input_path, encoding="utf-8") as source, open(output_path, "w", encoding="utf-8") as sink:
        for raw in source:
            if not raw.strip():
                continue
            line = json.loads(raw)
            body = {**line["body"], "model": model}
            result = {"custom_id": line["custom_id"], "ok": True, "body": body, "content": responder_reply(body["messages"])}
            sink.write(json.dumps(openai_line(result, "vllm")) + "\n")
            count += 1
    return count


def openai_batch_object(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "input_file_id": batch.input_file_id, "status": batch.status, "created_at": int(time.time()),
        "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
        "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
        "request_counts": batch.counts or {"total": len(batch.lines), "completed": 0, "failed": 0},
        "metadata": batch.metadata,
    }


def anthropic_batch_object(batch: Batch) -> dict[str, Any]:
    ended = batch.status not in ("in_progress", "cancelling")
    results = batch.results or []
    counts = {"processing": 0 if ended else len(batch.lines), "succeeded": sum(r["ok"] for r in results),
              "errored": sum(not r["ok"] and r["why"] == "failed" for r in results),
              "canceled": sum(not r["ok"] and r["why"] == "cancelled" for r in results),
              "expired": sum(not r["ok"] and r["why"] == "expired" for r in results)}
    now = "2026-01-01T00:00:00Z"
    return {"id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else batch.status.replace("cancelling", "canceling"),
            "request_counts": counts, "created_at": now, "expires_at": now, "ended_at": now if ended else None,
            "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"/v1/messages/batches/{batch.id}/results" if ended else None}


def body_key(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def error_response(status: int, message: str, code: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": code, "code": code, "param": None}}, status=status)
