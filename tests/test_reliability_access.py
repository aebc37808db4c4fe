"""A rejected key costs one cheap request, not a wave of `--concurrency` chat requests.

Every OpenAI-compatible client (openai:, azure:, a server URL) checks its key once with
``GET /models`` before its first chat request; concurrent calls wait for that one check, and a
401 stops the run before any chat request is sent.
"""

from __future__ import annotations

import json

import pytest

from orca_math._sync import run_sync
from orca_math.cli import main as cli_main
from orca_math.engine.runner import RunStopped
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer
from orca_math.testing.loopback import LoopbackServer


def _seeds(path, n=40):
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 1?"}) + "\n" for i in range(n)))
    return path


@pytest.mark.parametrize("spec", ["openai", "url"])
def test_a_rejected_key_at_concurrency_16_costs_at_most_one_request(tmp_path, spec):
    with FaultServer(FaultConfig(api_key="sk-right-key")) as server:
        if spec == "openai":
            client = load_model("openai:fault-model", base_url=server.base_url, api_key="sk-wrong-key")
        else:
            client = load_model(server.base_url, model="fault-model", api_key="sk-wrong-key")
        try:
            with pytest.raises(RunStopped, match="API key was rejected.*401"):
                Pipeline([Solve()], model=client, concurrency=16, progress=False).run_sync(
                    _seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "out")
        finally:
            run_sync(client.close())
        requests = server.requests
    assert len(requests) <= 1 and [r.path for r in requests] == ["/v1/models"]


def test_the_cli_with_a_rejected_key_stops_after_one_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    with FaultServer(FaultConfig(api_key="sk-right-key")) as server:
        code = cli_main(["solve", "--seeds", str(_seeds(tmp_path / "seeds.jsonl")), "--model", "openai:fault-model",
                         "--base-url", server.base_url, "--concurrency", "16", "--no-progress",
                         "--out", str(tmp_path / "solved.jsonl")])
        requests = server.requests
    assert code == 2 and "API key was rejected" in capsys.readouterr().err
    assert len(requests) <= 1 and not server.chat_requests()


def test_a_good_key_is_checked_once_and_the_run_goes_on(tmp_path):
    with FaultServer(FaultConfig(api_key="sk-right-key")) as server:
        client = load_model("openai:fault-model", base_url=server.base_url, api_key="sk-right-key")
        try:
            pipeline = Pipeline([Solve()], model=client, concurrency=16, progress=False, cache=False)
            first = pipeline.run_sync(_seeds(tmp_path / "seeds.jsonl", 20), out=tmp_path / "out")
            second = pipeline.run_sync(_seeds(tmp_path / "seeds2.jsonl", 5), out=tmp_path / "out2")
        finally:
            run_sync(client.close())
        paths = [r.path for r in server.requests]
    assert first.funnel.final_rows == 20 and second.funnel.final_rows == 5
    assert paths.count("/v1/models") == 1 and paths.count("/v1/chat/completions") == 25


class _ChatOnlyServer(LoopbackServer):
    """A fault server's chat endpoint without ``/v1/models`` (some proxies list no models)."""

    def _app(self):
        from aiohttp import web

        from orca_math.testing.fault_server import FaultApp

        app = web.Application()
        app.router.add_post("/v1/chat/completions", FaultApp(FaultConfig()).chat_completions)
        return app

    def __enter__(self) -> str:  # type: ignore[override]  # the test wants the URL
        return self.start().base_url


def test_a_server_without_a_models_endpoint_is_used_as_it_is(tmp_path):
    with _ChatOnlyServer() as url:
        client = load_model(url, model="fault-model", api_key="sk-test")
        try:
            result = Pipeline([Solve()], model=client, progress=False, cache=False).run_sync(
                _seeds(tmp_path / "seeds.jsonl", 3), out=tmp_path / "out")
        finally:
            run_sync(client.close())
    assert result.funnel.final_rows == 3


@pytest.mark.parametrize("key, allowed", [("sk-right-key", True), ("sk-wrong-key", False)])
def test_the_key_check_goes_through_the_clients_own_sdk_client(monkeypatch, key, allowed):
    # The check lists models with the client's own SDK client (its key, TLS settings and connection
    # pool): building a second SDK client for it cost a TLS context and a connection at every start.
    import openai

    from orca_math.models.access import verify_access
    from orca_math.models.errors import AuthenticationError

    with FaultServer(FaultConfig(api_key="sk-right-key")) as server:
        client = load_model(server.base_url, model="fault-model", api_key=key)

        def no_second_client(*args, **kwargs):
            raise AssertionError("the key check built an SDK client of its own")

        monkeypatch.setattr(openai, "AsyncOpenAI", no_second_client)
        try:
            if allowed:
                run_sync(verify_access(client))
            else:
                with pytest.raises(AuthenticationError):
                    run_sync(verify_access(client))
        finally:
            run_sync(client.close())
        paths = [r.path for r in server.requests]
    assert paths == ["/v1/models"]


def test_the_clients_of_one_process_share_one_tls_context_as_the_sdk_builds_it():
    # Each aiohttp client loaded its own CA bundle (about 25 ms); a command builds several clients.
    import ssl

    first = load_model("http://127.0.0.1:9/v1", model="m", api_key="sk-test")
    second = load_model("openai:gpt-4o-mini", api_key="sk-test")
    try:
        contexts = [c._client._client._transport.ssl_context for c in (first, second)]
    finally:
        run_sync(first.close())
        run_sync(second.close())
    assert isinstance(contexts[0], ssl.SSLContext) and contexts[0] is contexts[1]
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname
