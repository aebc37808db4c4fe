"""An OpenAI-compatible HTTP server on 127.0.0.1 that injects faults, for tests and benchmarks.

It serves ``POST /v1/chat/completions`` and ``GET /v1/models`` with real ``usage`` counts, and can
answer 429 (with ``Retry-After``), 500, 503, hang past the client's timeout, send truncated or
malformed JSON, reply with content that breaks the agent's format, drop the connection, slow
down as more requests are in flight, or refuse requests above a capacity. Every request is
logged (time, outcome, body) so tests can assert on what reached the server.

In a test::

    with FaultServer(FaultConfig(rate_429=0.3, seed=1)) as server:
        client = OpenAIChatCompletionClient(model="fault-model", base_url=server.base_url, ...)

As a subprocess (prints its base URL on the first line)::

    python -m orca_math.testing.fault_server --port 0 --config '{"base_latency": 0.1}'
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from orca_math.testing.loopback import LoopbackServer
from orca_math.tokens import estimate_tokens

OUTCOMES = ("ok", "429", "500", "503", "timeout", "truncated", "malformed", "html", "bad_format", "drop")


def teacher_reply(messages: Sequence[dict[str, Any]]) -> str:
    """The default canned content: a short teacher-style solution ending in ``Final answer: 42``."""
    return "Each box holds 6 apples and there are 7 boxes, so there are 6 * 7 = 42 apples.\nFinal answer: 42"


@dataclass
class FaultConfig:
    """What the fault server does. Fractions are per request and must sum to at most 1.

    Attributes:
        base_latency: seconds every reply takes.
        latency_per_in_flight: extra seconds per request in flight, like a saturated GPU server.
        rate_429: fraction of 429 replies (with ``Retry-After: retry_after``).
        retry_after: the ``Retry-After`` header value in seconds; None sends no header.
        headers_429: extra headers on 429 replies, e.g. ``x-ratelimit-limit-requests``.
        rate_500: fraction of 500 replies.
        rate_503: fraction of 503 replies (with ``Retry-After`` as well).
        rate_timeout: fraction of requests that hang for `timeout_hang` seconds before answering.
        timeout_hang: how long a "timeout" request hangs; set it above the client's timeout.
        rate_truncated: fraction of 200 replies whose JSON body is cut in half.
        rate_malformed: fraction of 200 replies whose body is not JSON at all.
        rate_html: fraction of 200 replies that are an HTML page (``text/html``), as a proxy's error page.
        rate_bad_format: fraction of valid replies whose content breaks the agent's format.
        rate_drop: fraction of requests whose connection is closed without a reply.
        capacity_rps: requests per second above which the server answers 429; None for no cap.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
        reply: makes the reply content from the request's messages (list of dicts).
        outcomes: outcomes used for the first requests, in order, before random draws
            (each one of `OUTCOMES`); makes sequences exact under concurrency.
        seed: seed of the random draws.
        model: the model name served by ``/v1/models``.
        include_usage: send ``usage`` in replies (False imitates servers that omit it).
        long_replies_after: after this many ok replies, every reply is padded to as long as the
            request's ``max_tokens`` allows (1024 without it), and its usage says so: replies that
            grow, for budget tests; None never.
        prompt_token_factor: reported prompt tokens are the server's own count times this (a
            provider whose tokenizer counts differently from tiktoken).
    """

    base_latency: float = 0.0
    latency_per_in_flight: float = 0.0
    rate_429: float = 0.0
    retry_after: float | None = 1.0
    headers_429: dict[str, str] = field(default_factory=dict)
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    timeout_hang: float = 30.0
    rate_truncated: float = 0.0
    rate_malformed: float = 0.0
    rate_html: float = 0.0
    rate_bad_format: float = 0.0
    rate_drop: float = 0.0
    capacity_rps: float | None = None
    api_key: str | None = None
    reply: Callable[[Sequence[dict[str, Any]]], str] = teacher_reply
    outcomes: list[str] = field(default_factory=list)
    seed: int = 0
    model: str = "fault-model"
    include_usage: bool = True
    long_replies_after: int | None = None
    prompt_token_factor: float = 1.0

    def __post_init__(self) -> None:
        rates = self._rates()
        if any(not 0.0 <= r <= 1.0 for r in rates.values()) or sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"Fault fractions must each lie in [0, 1] and sum to at most 1; got {rates}.")
        unknown = [o for o in self.outcomes if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"Unknown outcome(s) {unknown}: use {', '.join(OUTCOMES)}.")

    def _rates(self) -> dict[str, float]:
        return {
            "429": self.rate_429, "500": self.rate_500, "503": self.rate_503, "timeout": self.rate_timeout,
            "truncated": self.rate_truncated, "malformed": self.rate_malformed, "html": self.rate_html,
            "bad_format": self.rate_bad_format, "drop": self.rate_drop,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FaultConfig:
        """Build from JSON-like values; an unknown key is an error, not ignored."""
        names = {f.name for f in dataclasses.fields(cls)} - {"reply"}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown fault server option(s) {unknown}; known: {', '.join(sorted(names))}.")
        return cls(**values)


@dataclass
class RequestRecord:
    """One request as the server saw it: `time` is `time.monotonic()` when it arrived."""

    time: float
    path: str
    outcome: str
    in_flight: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FaultApp:
    """The aiohttp application and its state; `FaultServer` runs it in a thread."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.requests: list[RequestRecord] = []
        self._rng = random.Random(config.seed)
        self._scripted = deque(config.outcomes)
        self._in_flight = 0
        self._ok_replies = 0
        self._recent: deque[float] = deque()  # arrival times within the last second, for capacity_rps
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat_completions)
        self.app.router.add_get("/v1/models", self.models)

    def _authorized(self, request: web.Request) -> bool:
        key = self.config.api_key
        return key is None or request.headers.get("Authorization") == f"Bearer {key}"

    def _draw(self) -> str:
        if self._scripted:
            return self._scripted.popleft()
        roll, edge = self._rng.random(), 0.0
        for outcome, rate in self.config._rates().items():
            edge += rate
            if roll < edge:
                return outcome
        return "ok"

    def _over_capacity(self, now: float) -> float | None:
        """Seconds until a slot frees when above `capacity_rps`, else None (and counts this request)."""
        cap = self.config.capacity_rps
        if cap is None:
            return None
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= cap:
            return 1.0 - (now - self._recent[0])
        self._recent.append(now)
        return None

    async def models(self, request: web.Request) -> web.Response:
        self.requests.append(RequestRecord(time.monotonic(), request.path, "models", self._in_flight))
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        return web.json_response({"object": "list", "data": [{"id": self.config.model, "object": "model", "owned_by": "fault"}]})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        record = RequestRecord(now, request.path, "ok", self._in_flight + 1, body, dict(request.headers))
        self.requests.append(record)
        if not self._authorized(request):
            record.outcome = "401"
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            record.outcome = "400"
            return _error(400, "The body must be JSON with a non-empty 'messages' list.", "invalid_request_error")
        if body.get("model") != self.config.model:
            record.outcome = "404"
            return _error(404, f"The model {body.get('model')!r} does not exist.", "model_not_found")
        if body.get("stream"):
            record.outcome = "400"
            return _error(400, "This server does not stream.", "invalid_request_error")
        wait = self._over_capacity(now)
        if wait is not None:
            record.outcome = "429"
            headers = {**self.config.headers_429, "Retry-After": f"{wait:.3f}"}
            return _error(429, "Over capacity.", "rate_limit_exceeded", headers)
        record.outcome = outcome = self._draw()
        self._in_flight += 1
        try:
            return await self._answer(request, body, outcome)
        finally:
            self._in_flight -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any], outcome: str) -> web.StreamResponse:
        config = self.config
        await asyncio.sleep(config.base_latency + config.latency_per_in_flight * self._in_flight)
        retry_headers = {"Retry-After": f"{config.retry_after:g}"} if config.retry_after is not None else {}
        if outcome == "429":
            headers = {**config.headers_429, **retry_headers}
            return _error(429, "Rate limit reached; retry later.", "rate_limit_exceeded", headers)
        if outcome == "500":
            return _error(500, "Internal server error.", "server_error")
        if outcome == "503":
            return _error(503, "The server is overloaded.", "server_error", retry_headers)
        if outcome == "timeout":
            await asyncio.sleep(config.timeout_hang)
        if outcome == "drop":
            assert request.transport is not None
            request.transport.abort()  # a reset, as when a proxy or server process dies mid-request
            raise asyncio.CancelledError  # aiohttp drops the handler without writing a reply
        content = "I am not sure how to answer that." if outcome == "bad_format" else config.reply(body["messages"])
        completion_tokens = None
        if outcome == "ok":
            self._ok_replies += 1
            if config.long_replies_after is not None and self._ok_replies > config.long_replies_after:
                completion_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 1024)
                content = " ".join(["apples"] * completion_tokens) + "\n" + content  # still a usable reply
        payload = self._completion(body, content, completion_tokens)
        if outcome == "truncated":
            text = json.dumps(payload)
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        if outcome == "malformed":
            return web.Response(text="<html>upstream error</html>", content_type="application/json")
        if outcome == "html":
            return web.Response(text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")
        return web.json_response(payload)

    def _completion(self, body: dict[str, Any], content: str, completion_tokens: int | None = None) -> dict[str, Any]:
        prompt_tokens = sum(estimate_tokens(str(m.get("content", ""))) for m in body["messages"])
        prompt_tokens = round(prompt_tokens * self.config.prompt_token_factor)
        if completion_tokens is None:
            completion_tokens = estimate_tokens(content)
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
        if self.config.include_usage:
            payload["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return payload


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": code, "code": code, "param": None}}
    return web.json_response(body, status=status, headers=headers)


class FaultServer(LoopbackServer):
    """Runs a `FaultApp` on 127.0.0.1 in a background thread with its own event loop.

    Args:
        config: what to inject; defaults to a healthy server.
        port: 0 picks a free port.
    """

    thread_name = "fault-server"

    def __init__(self, config: FaultConfig | None = None, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.config = config or FaultConfig()
        self._fault_app = FaultApp(self.config)

    def _app(self) -> web.Application:
        return self._fault_app.app

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far, in arrival order."""
        return list(self._fault_app.requests)

    def chat_requests(self) -> list[RequestRecord]:
        """The chat-completion requests only."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: serve until interrupted, printing the base URL on the first line."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible fault-injection server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--config", default="{}", help="FaultConfig fields as a JSON object")
    args = parser.parse_args(argv)
    try:
        config = FaultConfig.from_dict(json.loads(args.config))
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        parser.error(f"--config: {exc}")
    server = FaultServer(config, port=args.port).start()
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
