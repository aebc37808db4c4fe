"""A server that echoes the Authorization header in its error bodies leaks no secret anywhere.

Before, a 400 body repeating ``Authorization: Bearer sk-...`` reached failures.jsonl and the
checkpoint. Every error text is now scrubbed in one place (`orca_math.models.errors.scrub`): the
configured API key, URL passwords, any Authorization / api-key header value and any ``sk-...`` token.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from aiohttp import web

from orca_math._sync import run_sync
from orca_math.cli import main as cli_main
from orca_math.engine import RetryPolicy
from orca_math.models import errors as model_errors
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.loopback import LoopbackServer

API_KEY = "sk-echo-4b7e1d9c2a6f8e0b3d5c"
OTHER_TOKEN = "tok-plain-5e8a1c7d3b9f"  # not sk-looking: only the header pattern can catch it


class EchoServer(LoopbackServer):
    """OpenAI-style server on 127.0.0.1 whose chat replies are errors quoting the request's headers."""

    def __init__(self, status: int, *, errors: int | None = None) -> None:
        super().__init__()
        self.status, self.errors, self.chat_requests = status, errors, 0

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "echo-model", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        self.chat_requests += 1
        if self.errors is not None and self.chat_requests > self.errors:
            content = "1 + 1 = 2\nFinal answer: 2"
            return web.json_response({"id": "c", "object": "chat.completion", "created": 0, "model": "echo-model",
                                      "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                                   "finish_reason": "stop"}]})
        auth = request.headers.get("Authorization", "")
        message = (f"bad request from Authorization: {auth}; headers were {json.dumps(dict(request.headers))}; "
                   f"api-key={auth.removeprefix('Bearer ')}")
        return web.json_response({"error": {"message": message, "type": "invalid_request_error", "code": None}},
                                 status=self.status)

    def __enter__(self) -> str:  # type: ignore[override]  # the tests want the URL
        return self.start().base_url


def _seeds(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 1?"}) + "\n" for i in range(3)))
    return path


def _leaks(root: Path, text: str, secrets: list[str]) -> list[str]:
    hits = [f"{p.relative_to(root)}: {s}" for p in sorted(root.rglob("*")) if p.is_file() for s in secrets if s.encode() in p.read_bytes()]
    return hits + [f"output: {s}" for s in secrets if s in text]


@pytest.mark.parametrize(("status", "errors"), [(400, None), (401, None), (500, 2)])
def test_cli_solve_against_an_echoing_server_leaks_no_key(tmp_path, monkeypatch, capsys, caplog, status, errors):
    """400 and 401 for every request; 500 for the first two (retried, then answered: all 500s would
    take a minute of backoff here, and the failure rows of 500s are the next test's)."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    caplog.set_level(logging.DEBUG)  # every library's debug log, as with --verbose
    with EchoServer(status, errors=errors) as url:
        code = cli_main(["solve", "--seeds", str(_seeds(tmp_path / "seeds.jsonl")), "--model", url, "--model-name",
                         "echo-model", "--no-progress", "--out", str(tmp_path / "out" / "solved.jsonl")])
    captured = capsys.readouterr()
    assert code == (0 if errors else 1 if status == 400 else 2)
    if status == 400:  # the reason is kept, minus the secret
        failures = (tmp_path / "out" / "solved.jsonl.run" / "failures.jsonl").read_text()
        assert "refused the request (400)" in failures and "Authorization: Bearer [REDACTED]" in failures
    assert _leaks(tmp_path / "out", captured.out + captured.err + caplog.text, [API_KEY, API_KEY[3:]]) == []


@pytest.mark.parametrize("status", [400, 500])
def test_failure_rows_of_a_user_built_client_hold_no_token(tmp_path, capsys, status):
    with EchoServer(status) as url:
        client = load_model(url, model="echo-model", api_key=OTHER_TOKEN)
        try:
            pipeline = Pipeline([Solve()], model=client, progress=False, concurrency=1,
                                client_options={"retry": RetryPolicy(max_attempts=2, initial_wait=0.01, jitter=0)})
            result = pipeline.run_sync(_seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "out")
        finally:
            run_sync(client.close())
    captured = capsys.readouterr()
    assert result.funnel.stages[0].failed == 3
    assert _leaks(tmp_path / "out", captured.out + captured.err, [OTHER_TOKEN]) == []


def test_scrub_removes_every_kind_of_secret():
    model_errors.register_secret("registered-secret-value-123")
    text = model_errors.scrub(
        "key registered-secret-value-123; Authorization: Bearer abc.def-ghi; {'authorization': 'Basic dXNlcjpwdw=='}; "
        "api-key: AZ123456789; \"api_key\": \"zz-top-999\"; url http://alice:hunter2@host:1/v1; stray sk-proj-AbC123xyz789"
    )
    for secret in ("registered-secret-value-123", "abc.def-ghi", "dXNlcjpwdw==", "AZ123456789", "zz-top-999", "hunter2",
                   "AbC123xyz789"):
        assert secret not in text, text
    assert "Authorization: Bearer [REDACTED]" in text and "http://alice:[REDACTED]@host:1/v1" in text
    assert model_errors.scrub("What is 12 + 30? Final answer: 42") == "What is 12 + 30? Final answer: 42"
