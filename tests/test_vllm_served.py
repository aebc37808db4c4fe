"""`vllm-serve:<checkpoint>`: the server starts on the first call, answers, and stops when the client closes.

vLLM itself is not needed: the client's `python` option points at a stand-in interpreter that runs
the project's OpenAI-compatible loopback server on the port `vllm serve` was given, so what is
tested is the served-mode lifecycle (lazy start, readiness, calls, stop, no process left, a server
that dies mid-step). The real `vllm serve` path is tested in tests/test_vllm.py.
"""

from __future__ import annotations

import asyncio
import stat
import sys
import textwrap

import psutil
import pytest
from autogen_core.models import UserMessage

from orca_math.models import load_model
from orca_math.models.vllm_served import SERVED_NAME, ServedVLLMClient
from orca_math.models.vllm_server import VLLMServerError


@pytest.fixture
def fake_python(tmp_path):
    """An executable that takes `python -c <vllm cli> serve CKPT --port P ...` and serves P itself."""
    script = tmp_path / "fake-python"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        args = sys.argv[1:]
        assert args[0] == "-c" and args[2] == "serve", args
        port = args[args.index("--port") + 1]
        model = args[args.index("--served-model-name") + 1]
        from orca_math.testing.fault_server import main
        main(["--port", port, "--config", json.dumps({{"model": model}})])
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _servers(client: ServedVLLMClient) -> list[int]:
    process = client.server.process
    return [process.pid] if process is not None and psutil.pid_exists(process.pid) and process.poll() is None else []


def test_the_server_starts_on_the_first_call_and_stops_on_close(fake_python, tmp_path):
    client = load_model(f"vllm-serve:{tmp_path}", python=str(fake_python), log_dir=tmp_path / "logs", startup_timeout=60)
    assert isinstance(client, ServedVLLMClient)
    assert client.server.process is None  # building the client starts nothing

    async def use():
        try:
            replies = await asyncio.gather(*(client.create([UserMessage(content=f"{i} + 1?", source="user")])
                                             for i in range(4)))
            return replies, _servers(client)
        finally:
            await client.close()

    replies, running = asyncio.run(use())
    assert len(replies) == 4 and all(isinstance(r.content, str) and r.content for r in replies)
    assert len(running) == 1  # four concurrent first calls started one server
    assert _servers(client) == [] and not client.server.running()
    assert client.total_usage().completion_tokens > 0
    assert f"--served-model-name {SERVED_NAME}" in " ".join(client.server.command)


def test_a_server_that_dies_mid_step_fails_calls_with_its_log(fake_python, tmp_path):
    client = load_model(f"vllm-serve:{tmp_path}", python=str(fake_python), log_dir=tmp_path / "logs", startup_timeout=60)

    async def use():
        try:
            await client.create([UserMessage(content="1 + 1?", source="user")])
            client.server.process.kill()
            client.server.process.wait(timeout=10)
            with pytest.raises(VLLMServerError, match="exited with code"):
                await client.create([UserMessage(content="2 + 2?", source="user")])
        finally:
            await client.close()

    asyncio.run(use())


def test_the_spec_needs_a_folder():
    from orca_math.models.errors import ModelSpecError

    with pytest.raises(ModelSpecError, match="needs a checkpoint folder"):
        load_model("vllm-serve:")


def test_learn_takes_a_sampler_and_sizes_concurrency_to_it(tmp_path):
    from orca_math.cli import build_parser

    parse = build_parser().parse_args
    base = ["learn", "--model", str(tmp_path), "--data", "x.jsonl", "--out", str(tmp_path / "o")]
    assert parse(base).sampler == "auto"
    chosen = parse([*base, "--sampler", "serve"])
    assert chosen.sampler == "serve" and chosen.concurrency is None  # None: 256 for vLLM samplers, else 8
    with pytest.raises(Exception, match="--sampler"):
        parse([*base, "--sampler", "sglang"])
