"""The Difficulty stage: a scripted student that solves even-numbered problems, graded against verified answers."""

from __future__ import annotations

import json
import re

import datasets
import pytest

from orca_math.engine.stage import StageError
from orca_math.pipeline import Filter, Pipeline, Solve, Verify
from orca_math.pipeline.difficulty import Difficulty, DifficultyBands
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

#: Problem n asks for n + 3; the teacher (pipeline_responder) sums the numbers, so every answer is verified.
SEEDS = [{"id": f"p{n}", "question": f"Ann has {n} cats and gets 3 more. How many cats?", "answer": f"#### {n + 3}"}
         for n in range(1, 7)]


def even_student(messages) -> str:
    """Right on even-numbered problems, wrong on the others."""
    text = "\n".join(str(m.content) for m in messages)
    n = int(re.search(r"Ann has (\d+) cats", text).group(1))
    return f"She has {n + 3} cats.\nFinal answer: {n + 3}" if n % 2 == 0 else "I think it is 1.\nFinal answer: 1"


def _run(tmp_path, student, *, k=4, extra=(), managed=False, **kwargs):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    teacher = ScriptedChatClient(responder=pipeline_responder)
    stages = [Solve(), Verify(), Filter(), Difficulty(student, k=k, **kwargs), *extra]
    result = Pipeline(stages, model=teacher, managed=managed, progress=False, concurrency=3).run_sync(seeds, out=tmp_path / "out")
    return result, teacher


def test_pass_rates_and_bands_follow_the_student(tmp_path):
    student = ScriptedChatClient(responder=even_student, model="student")
    result, teacher = _run(tmp_path, student)
    rows = {row["id"]: row for row in datasets.load_from_disk(str(result.dataset_path))}
    assert {pid: row["pass_rate"] for pid, row in rows.items()} == {f"p{n}": (1.0 if n % 2 == 0 else 0.0) for n in range(1, 7)}
    assert {pid: row["difficulty"] for pid, row in rows.items()} == {f"p{n}": ("easy" if n % 2 == 0 else "unsolved") for n in range(1, 7)}
    assert len(student.calls) == 6 * 4  # k samples per kept problem, each asked once
    assert all(call["extra_create_args"]["temperature"] == 0.7 for call in student.calls)
    summary = json.loads(result.outputs["summary"].read_text())
    assert summary["difficulty"]["counts"] == {"easy": 3, "medium": 0, "hard": 0, "unsolved": 3}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Difficulty against the student" in card
    assert "| `easy` | 3 | 50.0% | 1.00 |" in card and "| `unsolved` | 3 | 50.0% | 0.00 |" in card


def test_a_student_right_half_the_time_is_medium_and_one_in_four_is_hard(tmp_path):
    def sometimes(messages):
        text = "\n".join(str(m.content) for m in messages)
        n = int(re.search(r"Ann has (\d+) cats", text).group(1))
        sometimes.calls[n] = sometimes.calls.get(n, 0) + 1
        right = sometimes.calls[n] <= (2 if n <= 3 else 1)  # p1-p3: 2 of 4 right; p4-p6: 1 of 4
        return f"Final answer: {n + 3}" if right else "Final answer: 0"

    sometimes.calls = {}
    result, _ = _run(tmp_path, ScriptedChatClient(responder=sometimes))
    rows = {row["id"]: row for row in datasets.load_from_disk(str(result.dataset_path))}
    assert [rows[f"p{n}"]["difficulty"] for n in range(1, 7)] == ["medium"] * 3 + ["hard"] * 3
    assert [rows[f"p{n}"]["pass_rate"] for n in range(1, 7)] == [0.5] * 3 + [0.25] * 3


def test_a_rerun_asks_the_student_nothing_again(tmp_path):
    _run(tmp_path, ScriptedChatClient(responder=even_student, model="student"))
    again = ScriptedChatClient(responder=even_student, model="student")
    result, teacher = _run(tmp_path, again)
    assert again.calls == [] and teacher.calls == []
    assert len(datasets.load_from_disk(str(result.dataset_path))) == 6


def test_a_failing_student_sample_fails_the_item_with_its_reason(tmp_path):
    def flaky(messages):
        text = "\n".join(str(m.content) for m in messages)
        if "Ann has 2 cats" in text:
            raise ValueError("the student server went away")
        return even_student(messages)

    result, _ = _run(tmp_path, ScriptedChatClient(responder=flaky))
    failures = [json.loads(line) for line in result.outputs["failures"].read_text().splitlines()]
    assert [(f["id"], f["stage"]) for f in failures] == [("p2", "difficulty")]
    assert "student sample" in failures[0]["reason"] and "went away" in failures[0]["reason"]
    assert len(datasets.load_from_disk(str(result.dataset_path))) == 5


def test_the_student_and_its_settings_enter_the_run_key():
    one = Difficulty("http://127.0.0.1:9/v1", k=4).fingerprint()
    assert one["model"] and one["params"]["k"] == 4 and one["params"]["bands"] == {"easy": 0.75, "hard": 0.25}
    assert Difficulty("http://127.0.0.1:9/v1", k=8).fingerprint() != one
    assert Difficulty("hf:ckpt/m1").model_load_options["prompt_format"] == "orca"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": 0}, "k must be"),
    ({"temperature": -1}, "temperature must be"),
    ({"grading": "exact"}, "must be a GradingPolicy"),
    ({"bands": None, "student": None}, "needs a student model"),
])
def test_bad_settings_are_one_sentence(kwargs, message):
    arguments = {"student": "http://127.0.0.1:9/v1", **kwargs}
    with pytest.raises(StageError, match=message):
        Difficulty(**arguments)


def test_bands():
    bands = DifficultyBands()
    assert [bands.band(rate) for rate in (0, 0.1, 0.25, 0.5, 0.74, 0.75, 1)] == [
        "unsolved", "hard", "hard", "medium", "medium", "easy", "easy"]
    with pytest.raises(StageError, match="must be below"):
        DifficultyBands(easy=0.2, hard=0.5)


@pytest.mark.integration
def test_a_student_behind_a_real_endpoint_is_sampled_through_its_spec(llama_server, tmp_path):
    result, _ = _run(tmp_path, llama_server, k=2, max_tokens=40, managed=True)
    stage = {s.name: s for s in result.funnel.stages}["difficulty"]
    assert stage.inputs == 6 and stage.calls == 12 and stage.completion_tokens > 0  # real usage from the server
    rows = datasets.load_from_disk(str(result.dataset_path)).to_list()
    assert len(rows) + stage.failed == 6
    for row in rows:
        assert row["pass_rate"] in (0.0, 0.5, 1.0)
        assert row["difficulty"] == DifficultyBands().band(row["pass_rate"])


@pytest.mark.slow
def test_an_hf_checkpoint_student_is_sampled_in_the_orca_prompt_format(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from orca_math.models.hf import TransformersChatCompletionClient
    from tests._learn_helpers import save_tiny_mistral

    rendered: list[str] = []
    original = TransformersChatCompletionClient.render

    def spy(self, messages):
        text = original(self, messages)
        rendered.append(text)
        return text

    monkeypatch.setattr(TransformersChatCompletionClient, "render", spy)
    checkpoint = save_tiny_mistral(tmp_path / "student")
    result, _ = _run(tmp_path, f"hf:{checkpoint}", k=2, max_tokens=4, managed=True)
    stage = {s.name: s for s in result.funnel.stages}["difficulty"]
    assert (stage.inputs, stage.failed) == (6, 0)
    rows = datasets.load_from_disk(str(result.dataset_path)).to_list()
    assert len(rows) == 6 and all(row["difficulty"] == DifficultyBands().band(row["pass_rate"]) for row in rows)
    assert rendered and all(text.startswith("USER: Ann has") and text.endswith("ASSISTANT:") for text in rendered)


def test_a_dry_run_counts_k_student_calls_per_problem_at_the_students_price(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    stages = [Solve(), Verify(), Filter(), Difficulty("openai:gpt-4o-mini", k=4)]
    estimate = Pipeline(stages, model=ScriptedChatClient(responder=pipeline_responder), progress=False,
                        prices={"scripted": (1.0, 1.0)}).estimate(seeds)
    difficulty = {s.name: s for s in estimate.stages}["difficulty"]
    assert difficulty.calls == 6 * 4 and difficulty.cost_usd > 0  # gpt-4o-mini has a default price
    unpriced = Pipeline([Solve(), Verify(), Filter(), Difficulty("http://127.0.0.1:9/v1", k=4)],
                        model=ScriptedChatClient(responder=pipeline_responder), progress=False,
                        prices={"scripted": (1.0, 1.0)}).estimate(seeds)
    stage = {s.name: s for s in unpriced.stages}["difficulty"]
    assert stage.cost_usd == 0.0 and "not priced" in stage.note and unpriced.cost_usd is not None


def test_a_vllm_student_is_loaded_in_the_orca_format_and_sampled_through_its_spec(tmp_path, monkeypatch):
    """The 7B recipe's student, `vllm:<checkpoint>`: vLLM's engine takes minutes to start, so its client is a stand-in
    that accepts exactly the real constructor's arguments (else the TypeError the real one would raise)."""
    import inspect

    import orca_math.models.vllm as vllm_module

    real = vllm_module.VLLMChatCompletionClient
    seen: dict = {}

    class StandIn(ScriptedChatClient):
        def __init__(self, *args, **options):
            inspect.signature(real).bind(*args, **options)
            seen["load"] = options
            super().__init__(responder=even_student, model="m1")
            seen["client"] = self

    monkeypatch.setattr(vllm_module, "VLLMChatCompletionClient", StandIn)
    result, _ = _run(tmp_path, f"vllm:{tmp_path}", k=2, max_tokens=16, managed=True)
    assert seen["load"]["prompt_format"] == "orca" and seen["load"]["max_new_tokens"] == 16
    calls = seen["client"].calls
    assert len(calls) == 6 * 2 and all(call["extra_create_args"]["temperature"] == 0.7 for call in calls)
    rows = {row["id"]: row for row in datasets.load_from_disk(str(result.dataset_path))}
    assert {pid: row["difficulty"] for pid, row in rows.items()} == {
        f"p{n}": "easy" if n % 2 == 0 else "unsolved" for n in range(1, 7)}
