"""TransformersChatCompletionClient on a tiny random Mistral (fast) and on the bundled GGUF (slow)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from autogen_core.models import ChatCompletionClient, CreateResult, SystemMessage, UserMessage  # noqa: E402

from orca_math.learn.formats import ORCA_PROMPT_TEMPLATE  # noqa: E402
from orca_math.models import load_model  # noqa: E402
from orca_math.models.errors import ModelSpecError  # noqa: E402
from orca_math.models.hf import ORCA_PROMPT_TEMPLATE as CLIENT_TEMPLATE  # noqa: E402
from orca_math.models.hf import TransformersChatCompletionClient  # noqa: E402
from tests._learn_helpers import bundled_tokenizer, save_tiny_mistral  # noqa: E402

QUESTION = [UserMessage(content="What is 2+3?", source="user")]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral"))


@pytest.fixture(scope="module")
def orca_client(tiny_model_dir) -> TransformersChatCompletionClient:
    return TransformersChatCompletionClient(str(tiny_model_dir), prompt_format="orca", max_new_tokens=6)


def test_create_returns_a_result_with_real_usage(orca_client):
    result = asyncio.run(orca_client.create(QUESTION, extra_create_args={"temperature": 0, "max_tokens": 5}))
    assert isinstance(result, CreateResult) and isinstance(result.content, str)
    prompt_ids = bundled_tokenizer()("USER: What is 2+3?\nASSISTANT:")["input_ids"]
    assert result.usage.prompt_tokens == len(prompt_ids)
    assert 1 <= result.usage.completion_tokens <= 5
    assert result.finish_reason in ("length", "stop")
    assert isinstance(orca_client, ChatCompletionClient)


def test_greedy_and_seeded_sampling_are_repeatable_and_usage_accumulates(tiny_model_dir):
    client = TransformersChatCompletionClient(tiny_model_dir, prompt_format="orca")
    greedy = [asyncio.run(client.create(QUESTION, extra_create_args={"temperature": 0, "max_tokens": 4}))
              for _ in range(2)]
    assert greedy[0].content == greedy[1].content
    sampled = [
        asyncio.run(client.create(QUESTION, extra_create_args={"temperature": 0.7, "top_p": 0.95,
                                                               "seed": 3, "max_tokens": 4}))
        for _ in range(2)
    ]
    assert sampled[0].content == sampled[1].content
    total = client.total_usage()
    assert total.prompt_tokens == 4 * greedy[0].usage.prompt_tokens
    assert total.completion_tokens == sum(r.usage.completion_tokens for r in greedy + sampled)


def test_concurrent_calls_are_serialised_and_all_answered(orca_client):
    async def many():
        greedy = {"temperature": 0, "max_tokens": 3}
        calls = [orca_client.create(QUESTION, extra_create_args=greedy) for _ in range(3)]
        return await asyncio.gather(*calls)

    results = asyncio.run(many())
    assert len({r.content for r in results}) == 1  # greedy, same prompt


def test_stop_sequences_cut_the_reply(orca_client):
    full = asyncio.run(orca_client.create(QUESTION, extra_create_args={"temperature": 0, "max_tokens": 6}))
    words = str(full.content).split()
    if len(words) < 2:
        pytest.skip("the random model produced too short a reply to cut")
    stop = words[1]
    args = {"temperature": 0, "max_tokens": 6, "stop": [stop]}
    cut = asyncio.run(orca_client.create(QUESTION, extra_create_args=args))
    assert cut.content == str(full.content).split(stop, 1)[0].strip()
    assert cut.finish_reason == "stop"


def test_prompt_formats(tiny_model_dir, orca_client):
    assert CLIENT_TEMPLATE == ORCA_PROMPT_TEMPLATE  # the client samples what the SFT preset trains
    messages = [SystemMessage(content="Be brief."), *QUESTION]
    assert orca_client.render(messages) == "Be brief.\nUSER: What is 2+3?\nASSISTANT:"
    chat = TransformersChatCompletionClient(tiny_model_dir)  # SmolLM2's tokenizer has a chat template
    assert chat.prompt_format == "chat"
    assert chat.render(QUESTION).endswith("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    assert chat.count_tokens(QUESTION) == len(bundled_tokenizer()(chat.render(QUESTION))["input_ids"])


def test_load_model_hf_spec_and_bad_input(tiny_model_dir, orca_client):
    client = load_model(f"hf:{tiny_model_dir}", prompt_format="orca", max_new_tokens=2)
    assert isinstance(client, TransformersChatCompletionClient) and client.prompt_format == "orca"
    with pytest.raises(ValueError, match=r"Unsupported extra_create_args \['n'\]"):
        asyncio.run(orca_client.create(QUESTION, extra_create_args={"n": 4}))
    with pytest.raises(ModelSpecError, match="prompt_format='alpaca'"):
        TransformersChatCompletionClient(tiny_model_dir, prompt_format="alpaca")
    with pytest.raises(ModelSpecError, match="Could not load a transformers model"):
        TransformersChatCompletionClient(tiny_model_dir / "missing")


@pytest.mark.slow
def test_bundled_gguf_generates_a_short_reply():
    from orca_math.models.local import bundled_gguf_path

    gguf = bundled_gguf_path()
    client = TransformersChatCompletionClient(str(gguf.parent), gguf_file=gguf.name)
    result = asyncio.run(client.create(QUESTION, extra_create_args={"temperature": 0, "max_tokens": 8}))
    assert str(result.content).strip()
    assert result.usage.prompt_tokens > 5 and 1 <= result.usage.completion_tokens <= 8


def test_in_memory_model_and_a_tokenizer_without_chat_template_fall_back_to_orca(tiny_model_dir):
    import copy

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    plain = copy.deepcopy(bundled_tokenizer())
    plain.chat_template = None
    client = TransformersChatCompletionClient(model, tokenizer=plain)
    assert client.prompt_format == "orca"
    assert client.render(QUESTION) == "USER: What is 2+3?\nASSISTANT:"
    result = asyncio.run(client.create(QUESTION, extra_create_args={"temperature": 0, "max_tokens": 2}))
    assert 1 <= result.usage.completion_tokens <= 2
    with pytest.raises(ModelSpecError, match="Pass tokenizer"):
        TransformersChatCompletionClient(model)
