"""What a new user sees first: a clean end of `generate`, readable model reprs, and a local model
whose too-long prompt says what to change instead of quoting llama.cpp."""

from __future__ import annotations

import asyncio
import json

import pytest
from autogen_core.models import UserMessage

from orca_math.cli import main
from orca_math.models import load_model
from orca_math.models.errors import BadRequestError
from orca_math.testing.fault_server import FaultConfig, FaultServer


def test_generate_ends_with_paths_and_no_stray_json(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"question": "Lu has 3 hats and buys 2 more. How many?", "answer": "5"}) + "\n")
    with FaultServer(FaultConfig()) as server:
        main(["generate", "--seeds", str(seeds), "--out", str(tmp_path / "g"), "--model", server.base_url, "--model-name",
              "fault-model", "--no-progress", "--no-decontaminate", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "final rows:" in out and "summary: " in out
    assert '{"final_rows"' not in out


@pytest.fixture(scope="module")
def local_model():
    pytest.importorskip("llama_cpp")
    client = load_model("local")
    yield client
    asyncio.run(client.close())


def test_the_local_client_has_a_readable_repr(local_model):
    from orca_math.models.local import LocalChatCompletionClient

    assert repr(local_model) == "LocalChatCompletionClient(model='local:SmolLM2-135M-Instruct.Q4_1')"
    assert LocalChatCompletionClient.__qualname__ == "LocalChatCompletionClient"  # module level, not <locals>
    assert isinstance(local_model, LocalChatCompletionClient)


def test_a_prompt_longer_than_the_context_says_what_to_change(local_model):
    long_prompt = "Count the apples in every basket. " * 800  # well over 4096 tokens
    with pytest.raises(BadRequestError) as caught:
        asyncio.run(local_model.create([UserMessage(content=long_prompt, source="user")]))
    message = str(caught.value)
    assert "more than the local model's context window of 4096 tokens" in message
    assert "prompt and the reply" in message and "n_ctx=" in message and "Requested tokens" not in message
