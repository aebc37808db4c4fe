"""The other backends against the same fake server and files: Anthropic Message Batches and vllm run-batch.

Also the request bodies themselves: batch mode sends, byte for byte, what the online client would
have sent, and files are split by the provider's limits before upload.
"""

from __future__ import annotations

import sys

import pytest

from orca_math.engine.batch import BatchOptions
from orca_math.engine.batch.chunking import Limits, Prepared, chunks
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.batch_server import BatchServer, BatchServerConfig
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._batch_helpers import FAST, MODEL, client_for, close_clients, failures, options, rows, write_seeds


@pytest.fixture(autouse=True)
def _closed_clients():
    yield
    close_clients()


def _anthropic_client(server):
    from autogen_ext.models.anthropic import AnthropicChatCompletionClient

    return AnthropicChatCompletionClient(model="claude-3-5-haiku-20241022", api_key="sk-ant-test", base_url=server.root_url,
                                         max_retries=0)


def test_anthropic_message_batches_run_a_pipeline_and_resubmit_what_expired(tmp_path):
    from orca_math._sync import run_sync

    seeds = write_seeds(tmp_path / "seeds.jsonl", 6)
    with BatchServer(BatchServerConfig(partial_fraction=0.5, rest_as="expired", faulty_batches=1)) as server:
        client = _anthropic_client(server)
        try:
            result = Pipeline([Solve()], model=client, mode="batch", batch=options(), progress=False).run_sync(seeds, out=tmp_path / "out")
        finally:
            run_sync(client.close())
        first, second = server.created_batches()
        billed = server.billed
    assert first.kind == "anthropic" and len(second.lines) == 3
    params = first.lines[0]["params"]
    assert params["model"] == "claude-3-5-haiku-20241022" and params["max_tokens"] == 1024 and params["system"]
    assert all(m["role"] in ("user", "assistant") for m in params["messages"])
    assert len(rows(result)) == 6 and failures(tmp_path / "out") == [] and max(billed.values()) == 1


def test_vllm_run_batch_runs_the_openai_file_on_this_machine(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 4)
    command = (sys.executable, "-m", "orca_math.testing.batch_server", "run-batch")  # stands in for `vllm run-batch`
    with FaultServer() as server:  # only the client's request builder is used: no request reaches it
        batch = BatchOptions(backend="vllm", vllm_command=command, vllm_model="ckpt/m1", **FAST)
        result = Pipeline([Solve()], model=client_for(server), mode="batch", batch=batch, progress=False).run_sync(seeds, out=tmp_path / "out")
        assert server.chat_requests() == []
    assert len(rows(result)) == 4
    inputs = (tmp_path / "out" / "batches" / "b00001.input.jsonl").read_text().splitlines()
    assert len(inputs) == 4


def test_vllm_run_batch_that_fails_shows_its_log(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    command = (sys.executable, "-c", "import sys; print('CUDA out of memory'); sys.exit(3)")
    with FaultServer() as server:
        batch = BatchOptions(backend="vllm", vllm_command=command, max_attempts=1, **FAST)
        Pipeline([Solve()], model=client_for(server), mode="batch", batch=batch, progress=False).run_sync(seeds, out=tmp_path / "out")
    reasons = [f["reason"] for f in failures(tmp_path / "out")]
    assert len(reasons) == 2 and all("exited with status 3" in r and "CUDA out of memory" in r for r in reasons)


def test_batch_bodies_are_what_the_online_client_sends(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with FaultServer(FaultConfig(model=MODEL)) as online:
        Pipeline([Solve(max_tokens=300)], model=client_for(online), progress=False, cache=False).run_sync(seeds, out=tmp_path / "a")
        sent = sorted((r.body for r in online.chat_requests()), key=lambda b: b["messages"][-1]["content"])
    with BatchServer() as server:
        Pipeline([Solve(max_tokens=300)], model=client_for(server), mode="batch", batch=options(), progress=False,
                 cache=False).run_sync(seeds, out=tmp_path / "b")
        batched = sorted((line["body"] for line in server.created_batches()[0].lines), key=lambda b: b["messages"][-1]["content"])
    for body in sent:
        body.pop("stream", None)  # the online call says stream=false; a batch line never streams
    assert batched == sent


def test_chunks_keep_to_request_byte_and_token_limits():
    requests = [Prepared(f"k{i}", f"c{i}", size=10 + i, tokens=5) for i in range(10)]
    by_count = list(chunks(requests, Limits(max_requests=4, max_bytes=10_000)))
    assert [len(c) for c in by_count] == [4, 4, 2]
    by_bytes = list(chunks(requests, Limits(max_requests=100, max_bytes=40)))
    assert all(sum(p.size for p in c) <= 40 for c in by_bytes) and sum(len(c) for c in by_bytes) == 10
    by_tokens = list(chunks(requests, Limits(max_requests=100, max_bytes=10_000, max_tokens=12)))
    assert [len(c) for c in by_tokens] == [2, 2, 2, 2, 2]
    alone = list(chunks([Prepared("big", "c", size=100, tokens=1), *requests[:2]], Limits(max_requests=100, max_bytes=50)))
    assert [len(c) for c in alone] == [1, 2]  # a request over the limit goes alone; it holds nothing else back


def test_bad_batch_options_are_one_sentence():
    from orca_math.errors import ConfigError

    with pytest.raises(ConfigError, match="max_open"):
        BatchOptions(max_open=0)
    with pytest.raises(ConfigError, match="backend"):
        BatchOptions(backend="gemini")


def test_azure_lines_name_the_deployment_and_its_route(tmp_path):
    from autogen_core.models import UserMessage

    from orca_math._sync import run_sync
    from orca_math.engine.batch import BatchCalls
    from orca_math.engine.batch.requests import Call
    from orca_math.engine.costs import UsageMeter
    from orca_math.models import load_model

    client = load_model("azure:my-gpt4o", endpoint="https://example.openai.azure.com", api_key="az-key", model="gpt-4o")
    try:
        wrapped = BatchCalls(tmp_path, options()).wrap(client, meter=UsageMeter())
        call = Call([UserMessage(content="hi", source="user")], [], "auto", None, {"temperature": 0})
        line = wrapped.lane.backend.line("c1", call)
    finally:
        run_sync(client.close())
    assert wrapped.lane.backend.name == "azure" and line["url"] == "/chat/completions"
    assert line["body"]["model"] == "my-gpt4o" and line["body"]["temperature"] == 0  # Azure routes by deployment
