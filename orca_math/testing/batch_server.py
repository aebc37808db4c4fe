"""A fake provider batch API on 127.0.0.1, for tests and benchmarks of batch mode.

It speaks OpenAI's Files and Batches API (``/v1/files``, ``/v1/batches``; ``/v1/models`` and
``/v1/chat/completions`` too) and Anthropic's Message Batches (``/v1/messages/batches``). Replies
come from a responder (`orca_math.testing.responders.pipeline_responder` by default), so the
pipeline's agents can parse them. Its knobs make the things real providers do:

* end a batch only after a delay or after some polls;
* complete part of a batch and expire, fail or cancel the rest (`partial_fraction`, `rest_as`);
* return results out of order (`shuffle`), lose the output file (`lose_output`), fail a batch as a
  whole (`fail_batch`, also for input that is not JSONL), refuse a file over `max_file_bytes`,
  and answer 401 without the right key.

`billed` counts each result handed back as succeeded (what a provider bills), per custom_id.

    with BatchServer(BatchServerConfig(partial_fraction=0.5, rest_as="expired")) as server:
        client = load_model("openai:gpt-4o-mini", base_url=server.base_url, api_key="test")

``python -m orca_math.testing.batch_server run-batch -i IN -o OUT --model M`` is a stand-in for
``vllm run-batch`` (same files, replies from the responder).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orca_math.testing.batch_wire import (
    Batch,
    anthropic_batch_object,
    anthropic_line,
    body_key,
    completion_body,
    error_response,
    file_object,
    messages_of,
    openai_batch_object,
    openai_line,
    parse_jsonl,
    responder_reply,
    run_batch,
)
from orca_math.testing.loopback import LoopbackServer


@dataclass
class BatchServerConfig:
    """What the fake batch server does.

    Attributes:
        reply: makes a reply's content from the request's messages (OpenAI-style dicts).
        polls_before_done: a batch ends on this poll (retrieve) at the earliest; 0 ends it at once.
        delay: a batch ends this many seconds after creation at the earliest.
        partial_fraction: share of each affected batch's requests that complete; the rest end as `rest_as`.
        rest_as: "expired", "failed" (an error per request) or "cancelled" for the part not completed.
        faulty_batches: how many batches (the first ones) the partial completion and `fail_batch`
            apply to; None: all of them.
        fail_batch: when set, affected batches end "failed" with this message (no output file).
        shuffle: return results in an order other than the input's.
        lose_output: the output file of affected batches cannot be downloaded (404).
        max_file_bytes: uploads above this size are refused (400), as providers do.
        max_requests: batches with more requests end "failed" (a provider's validation).
        api_key: when set, requests without it (Bearer or x-api-key) get 401.
        seed: seed of the shuffle.
    """

    reply: Callable[[Sequence[dict[str, Any]]], str] = responder_reply
    polls_before_done: int = 0
    delay: float = 0.0
    partial_fraction: float = 1.0
    rest_as: str = "expired"
    faulty_batches: int | None = None
    fail_batch: str | None = None
    shuffle: bool = False
    lose_output: bool = False
    max_file_bytes: int | None = None
    max_requests: int | None = None
    api_key: str | None = None
    seed: int = 0


class BatchApp:
    """The aiohttp application and its state; `BatchServer` runs it in a thread."""

    def __init__(self, config: BatchServerConfig) -> None:
        self.config = config
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, Batch] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every HTTP request
        self.billed: Counter[str] = Counter()  # custom_id -> times returned as succeeded
        self.billed_bodies: Counter[str] = Counter()  # request body hash -> times returned as succeeded
        self._rng = random.Random(config.seed)
        self._created = 0
        self._prefix = uuid.uuid4().hex[:6]  # ids never repeat across servers, as at a provider
        app = self.app = web.Application(client_max_size=1024**3)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{id}", self.file_info)
        app.router.add_get("/v1/files/{id}/content", self.file_content)
        app.router.add_post("/v1/batches", self.create_openai)
        app.router.add_get("/v1/batches", self.list_openai)
        app.router.add_get("/v1/batches/{id}", self.retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self.cancel)
        app.router.add_post("/v1/messages/batches", self.create_anthropic)
        app.router.add_get("/v1/messages/batches/{id}", self.retrieve)
        app.router.add_get("/v1/messages/batches/{id}/results", self.results_anthropic)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self.cancel)

    # ------------------------------------------------------------------ plumbing

    def _authorized(self, request: web.Request) -> bool:
        key = self.config.api_key
        return key is None or key in (request.headers.get("x-api-key"), request.headers.get("Authorization", "")[7:])

    def _log(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        if not self._authorized(request):
            return error_response(401, "Incorrect API key provided.", "invalid_api_key")
        return None

    def _new_batch(self, kind: str, lines: list[dict[str, Any]], **fields: Any) -> Batch:
        self._created += 1
        number = self._created
        limit = self.config.faulty_batches
        batch = Batch(id=f"{'msgbatch' if kind == 'anthropic' else 'batch'}_{self._prefix}{number:04d}", kind=kind, lines=lines,
                       created=time.monotonic(), faulty=limit is None or number <= limit, **fields)
        self.batches[batch.id] = batch
        return batch

    def _advance(self, batch: Batch) -> None:
        """End the batch when it is due: compute its results once, with the configured faults."""
        batch.polls += 1
        if batch.status not in ("in_progress", "cancelling"):
            return
        due = batch.polls > self.config.polls_before_done and time.monotonic() - batch.created >= self.config.delay
        if not due and batch.status != "cancelling":
            return
        config = self.config
        if batch.faulty and config.fail_batch:
            batch.status, batch.errors = "failed", [{"code": "invalid_request", "message": config.fail_batch, "line": None}]
            return
        if config.max_requests is not None and len(batch.lines) > config.max_requests:
            batch.status = "failed"
            batch.errors = [{"code": "too_many_requests", "message": f"A batch holds at most {config.max_requests} requests.", "line": None}]
            return
        done = len(batch.lines) if not batch.faulty else round(len(batch.lines) * config.partial_fraction)
        rest = "cancelled" if batch.status == "cancelling" else config.rest_as
        results = []
        for index, line in enumerate(batch.lines):
            if index < done and batch.status != "cancelling":
                body = line.get("body") or line.get("params") or {}
                results.append({"custom_id": line["custom_id"], "ok": True, "body": body,
                                "content": config.reply(messages_of(body))})
            else:
                results.append({"custom_id": line["custom_id"], "ok": False, "why": rest})
        if config.shuffle:
            self._rng.shuffle(results)
        batch.results = results
        ok = sum(r["ok"] for r in results)
        partial = ok < len(results)
        batch.status = ("cancelled" if rest == "cancelled" and partial else "expired" if rest == "expired" and partial else "completed")
        batch.counts = {"total": len(results), "completed": ok, "failed": len(results) - ok}
        if batch.kind == "openai":
            batch.output_file_id = f"file-out-{batch.id}"
            if partial:
                batch.error_file_id = f"file-err-{batch.id}"

    def _bill(self, results: list[dict[str, Any]]) -> None:
        for result in results:
            if result["ok"]:
                self.billed[result["custom_id"]] += 1
                self.billed_bodies[body_key(result["body"])] += 1

    # ------------------------------------------------------------------ OpenAI

    async def models(self, request: web.Request) -> web.Response:
        return self._log(request) or web.json_response({"object": "list", "data": [{"id": "batch-model", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.Response:
        """Online calls, as a provider serves them beside its batches (billed at once)."""
        if (refused := self._log(request)) is not None:
            return refused
        body = await request.json()
        content = self.config.reply(messages_of(body))
        self.billed_bodies[body_key(body)] += 1
        return web.json_response(completion_body(body, content))

    async def upload(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        form = await request.post()
        upload = form.get("file")
        data = upload.file.read() if hasattr(upload, "file") else str(upload or "").encode()
        if self.config.max_file_bytes is not None and len(data) > self.config.max_file_bytes:
            return error_response(400, f"File is too large: {len(data)} bytes; the limit is {self.config.max_file_bytes}.", "invalid_request_error")
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = data
        return web.json_response(file_object(file_id, len(data), str(form.get("purpose", "batch"))))

    async def file_info(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return error_response(404, f"No such File object: {file_id}", "invalid_request_error")
        return web.json_response(file_object(file_id, len(self.files[file_id]), "batch"))

    async def file_content(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        file_id = request.match_info["id"]
        if file_id in self.files:
            return web.Response(body=self.files[file_id], content_type="application/octet-stream")
        batch = next((b for b in self.batches.values() if file_id in (b.output_file_id, b.error_file_id)), None)
        if batch is None or batch.results is None or (self.config.lose_output and batch.faulty):
            return error_response(404, f"No such File object: {file_id}", "invalid_request_error")
        wanted = [r for r in batch.results if r["ok"] == (file_id == batch.output_file_id)]
        if file_id == batch.output_file_id:
            self._bill(wanted)
        text = "".join(json.dumps(openai_line(r, batch.id)) + "\n" for r in wanted)
        return web.Response(text=text, content_type="application/octet-stream")

    async def create_openai(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        body = await request.json()
        data = self.files.get(body.get("input_file_id", ""))
        if data is None:
            return error_response(404, f"No such File object: {body.get('input_file_id')}", "invalid_request_error")
        if body.get("completion_window") != "24h":
            return error_response(400, "completion_window must be 24h.", "invalid_request_error")
        lines, problem = parse_jsonl(data)
        batch = self._new_batch("openai", lines, input_file_id=body["input_file_id"], metadata=body.get("metadata") or {})
        if problem:
            batch.status, batch.errors = "failed", [{"code": "invalid_json_line", "message": problem, "line": None}]
        return web.json_response(openai_batch_object(batch))

    async def list_openai(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        data = [openai_batch_object(b) for b in reversed(self.batches.values()) if b.kind == "openai"]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})

    async def retrieve(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return error_response(404, f"No batch found with id '{request.match_info['id']}'.", "invalid_request_error")
        self._advance(batch)
        return web.json_response(openai_batch_object(batch) if batch.kind == "openai" else anthropic_batch_object(batch))

    async def cancel(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return error_response(404, "No such batch.", "not_found_error")
        if batch.status == "in_progress":
            batch.status = "cancelling"
        return web.json_response(openai_batch_object(batch) if batch.kind == "openai" else anthropic_batch_object(batch))

    # ------------------------------------------------------------------ Anthropic

    async def create_anthropic(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        body = await request.json()
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return error_response(400, "requests: a non-empty list is required.", "invalid_request_error")
        return web.json_response(anthropic_batch_object(self._new_batch("anthropic", requests)))

    async def results_anthropic(self, request: web.Request) -> web.Response:
        if (refused := self._log(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.results is None or (self.config.lose_output and batch.faulty):
            return error_response(404, "No results for this batch.", "not_found_error")
        self._bill(batch.results)
        text = "".join(json.dumps(anthropic_line(r, batch.id)) + "\n" for r in batch.results)
        return web.Response(text=text, content_type="application/x-jsonl")



class BatchServer(LoopbackServer):
    """Runs a `BatchApp` on 127.0.0.1 in a background thread with its own event loop.

    Args:
        config: what the server does; defaults to a healthy server that ends batches at once.
        port: 0 picks a free port.
    """

    thread_name = "batch-server"

    def __init__(self, config: BatchServerConfig | None = None, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.config = config or BatchServerConfig()
        self.state = BatchApp(self.config)

    def _app(self) -> web.Application:
        return self.state.app

    @property
    def root_url(self) -> str:
        """The base URL without ``/v1`` (what the Anthropic SDK takes)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def billed(self) -> Counter[str]:
        """How many times each custom_id was handed back as succeeded (what a provider bills)."""
        return Counter(self.state.billed)

    def created_batches(self) -> list[Batch]:
        """Every batch created so far, in creation order."""
        return list(self.state.batches.values())


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``serve`` (prints the base URL, then serves) or ``run-batch`` (a vllm run-batch stand-in)."""
    parser = argparse.ArgumentParser(description="Fake provider batch API on 127.0.0.1.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--config", default="{}", help="BatchServerConfig fields as a JSON object")
    offline = commands.add_parser("run-batch")
    offline.add_argument("-i", "--input-file", required=True)
    offline.add_argument("-o", "--output-file", required=True)
    offline.add_argument("--model", required=True)
    args, _ = parser.parse_known_args(argv)  # vllm's other options (--max-model-len ...) are accepted and ignored
    if args.command == "run-batch":
        run_batch(args.input_file, args.output_file, args.model)
        return
    server = BatchServer(BatchServerConfig(**json.loads(args.config)), port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
