"""The rows `ray.data.llm` gets and gives on the GPU path, checked without GPUs (and without Ray).

The vLLM engine itself needs GPUs; what orca-math puts in its rows and reads back is plain data,
checked here against what the ``vllm:`` client itself sends.
"""

from __future__ import annotations

import pytest
from autogen_core.models import AssistantMessage, SystemMessage, UserMessage

from orca_math.engine.executors.ray.llm import (
    postprocess_http,
    postprocess_vllm,
    preprocess_http,
    preprocess_vllm,
    request_of,
)
from orca_math.engine.items import ItemFailedError
from orca_math.models.hf import render_prompt

MESSAGES = [SystemMessage(content="Be brief."), UserMessage(content=" What is 2 + 3? ", source="user"),
            AssistantMessage(content="5", source="a"), UserMessage(content="And 4 + 4?", source="user")]


def test_the_orca_prompt_is_the_text_the_vllm_client_renders():
    request = request_of(MESSAGES, None, {"temperature": 0.7, "top_p": 0.95, "seed": 3, "max_tokens": 64})
    row = preprocess_vllm(request, orca=True, max_tokens=512)
    assert row["prompt"] == render_prompt(MESSAGES, None, orca=True)
    assert row["sampling_params"] == {"temperature": 0.7, "top_p": 0.95, "seed": 3, "max_tokens": 64, "stop": ["\nUSER:"]}
    chat = preprocess_vllm(request, orca=False, max_tokens=512)
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."} and "prompt" not in chat


def test_k_samples_are_k_requests_and_unknown_arguments_fail_the_item():
    first = request_of(MESSAGES[:2], None, {"seed": 0, "orca_math_sample": 0})
    second = request_of(MESSAGES[:2], None, {"seed": 1, "orca_math_sample": 1})
    assert first["key"] != second["key"] and first["sampling"] == {"seed": 0}
    assert request_of(MESSAGES[:2], None, {"seed": 0, "orca_math_sample": 0})["key"] == first["key"]
    with pytest.raises(ItemFailedError, match="logit_bias"):
        request_of(MESSAGES[:2], None, {"logit_bias": {}})
    payload = preprocess_http(request_of(MESSAGES[:2], True, {"seed": 0}), model="m")["payload"]
    assert payload["response_format"] == {"type": "json_object"} and payload["seed"] == 0 and payload["model"] == "m"


def test_replies_and_engine_errors_are_read_back():
    ok = postprocess_vllm({"key": "k", "generated_text": " 8\n", "num_input_tokens": 12, "num_generated_tokens": 2})
    assert ok == {"key": "k", "text": "8", "error": "", "prompt_tokens": 12, "completion_tokens": 2}
    failed = postprocess_vllm({"key": "k", "generated_text": "", "__inference_error__": "CUDA out of memory"})
    assert failed["error"] == "CUDA out of memory"
    body = {"choices": [{"message": {"content": "Final answer: 8"}}], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}
    assert postprocess_http({"key": "k", "http_response": body})["text"] == "Final answer: 8"
    assert "does not exist" in postprocess_http({"key": "k", "http_response": {"error": {"message": "model x does not exist"}}})["error"]
