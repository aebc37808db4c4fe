"""Agents and model specs through the real HTTP path: a llama.cpp server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from orca_math.agents import AgentFailedError, Grader, Teacher
from orca_math.models import load_model
from orca_math.models.errors import AuthenticationError, ModelSpecError, ServerUnreachableError
from orca_math.records import Solution, Verdict

pytestmark = pytest.mark.integration

QUESTION = "Sara has 5 pencils and buys 3 more. How many pencils does she have?"


def _run_or_failure(agent, **inputs):
    """The tiny model may not follow the format; either way the call must end typed, never crash."""
    try:
        return asyncio.run(agent.call(**inputs)), None
    except AgentFailedError as exc:
        return None, exc


def test_teacher_end_to_end_through_openai_compatible_spec(llama_server):
    client = load_model(llama_server)  # the model name is discovered from GET /models
    result, failure = _run_or_failure(Teacher(client, sampling={"max_tokens": 120}, parse_retries=1), question=QUESTION)
    if result is not None:
        assert isinstance(result.output, Solution) and result.output.final_answer
        usage = result.usage
    else:
        assert failure.raw_reply and failure.attempts == 2
        usage = failure.usage
    # Real usage counts from the server, not estimates.
    assert usage.prompt_tokens > 20 and usage.completion_tokens > 0 and not usage.estimated


def test_grader_end_to_end_through_openai_spec_with_base_url(llama_server):
    client = load_model("openai:smollm2", base_url=llama_server, api_key="unused")
    result, failure = _run_or_failure(
        Grader(client, parse_retries=1),
        question=QUESTION,
        reference_solution="5 + 3 = 8.\nFinal answer: 8",
        student_solution="She has 8 pencils.\nFinal answer: 8",
    )
    if result is not None:
        assert isinstance(result.output, Verdict) and result.output.verdict in ("Correct", "Incorrect")
    else:
        assert "Final Verdict" in failure.reason and failure.raw_reply


def test_wrong_api_key_gives_one_sentence_error(llama_server_with_key):
    client = load_model("openai:smollm2", base_url=llama_server_with_key, api_key="sk-wrong")
    with pytest.raises(AuthenticationError) as info:
        Teacher(client).run_sync(question=QUESTION)
    message = str(info.value)
    assert "API key was rejected" in message and "401" in message
    assert "sk-wrong" not in message
    assert info.value.__cause__ is None  # no chained traceback from inside the HTTP client


def test_unreachable_server_is_a_clear_error():
    from tests.conftest import free_port

    with pytest.raises(ServerUnreachableError, match="Could not"):
        load_model(f"http://127.0.0.1:{free_port()}/v1")


def test_unknown_spec_says_what_to_use():
    with pytest.raises(ModelSpecError, match="Unknown model spec 'gpt4'.*openai:<model>"):
        load_model("gpt4")


def test_openai_spec_without_key_says_so(monkeypatch):
    from orca_math.models.errors import MissingAPIKeyError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        load_model("openai:gpt-4o")


def test_local_model_runs_every_agent_in_process():
    from orca_math.agents import AGENT_CLASSES

    client = load_model("local")
    # A value for each input a card may list; every registered agent takes the ones its card names.
    values = {"question": QUESTION, "answer": "8", "suggestions": ["ask for the price at $2 a pencil"],
              "reference_solution": "Final answer: 8", "student_solution": "Final answer: 8"}
    for name, agent_class in AGENT_CLASSES.items():
        agent = agent_class(client, parse_retries=1, sampling={"max_tokens": 200})
        missing = set(agent.card.inputs) - set(values)
        assert not missing, f"no test value for {name}'s inputs {sorted(missing)}"
        result, failure = _run_or_failure(agent, **{key: values[key] for key in agent.card.inputs})
        assert result is not None or failure.raw_reply is not None, name


def test_local_model_serves_many_concurrent_calls_without_deadlock():
    """More concurrent calls than the default executor has threads must all complete."""
    client = load_model("local")
    teacher = Teacher(client, parse_retries=0, sampling={"max_tokens": 4})

    async def many():
        results = await asyncio.gather(*(teacher.call(question=f"What is {i} + 1?") for i in range(12)), return_exceptions=True)
        return results

    results = asyncio.run(asyncio.wait_for(many(), timeout=120))
    assert len(results) == 12
    assert all(isinstance(r, Exception) and isinstance(r, AgentFailedError) or hasattr(r, "output") for r in results)
