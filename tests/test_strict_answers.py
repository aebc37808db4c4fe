"""Strict final answers (Teacher, Student), checked Ask-Me-Anything targets, and seeds kept when expansion fails (#22)."""

from __future__ import annotations

import asyncio
import json

import pytest

from orca_math.agents import AgentFailedError, AskMeAnything, Student, Teacher
from orca_math.answers import FinalAnswerError, canonical_value, strict_final_answer
from orca_math.pipeline import Expand, Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


# ---------------------------------------------------------------- strict final answers


@pytest.mark.parametrize("sloppy", [
    "The final answer is: : 5",
    "Final answer: five apples",
    "Final answer: x + 3",
    "Final answer: 5 or 6",
    "Then 7 * (number) + 80 - 15 which equals",
])
def test_a_sloppy_final_line_is_asked_again_with_the_reason_then_fails_with_the_raw_reply(sloppy):
    client = ScriptedChatClient([f"3 + 4 = 7.\n{sloppy}"] * 3)
    with pytest.raises(AgentFailedError) as caught:
        asyncio.run(Teacher(client, parse_retries=2).call(question=QUESTION))
    assert caught.value.attempts == 3 and len(client.calls) == 3
    assert caught.value.raw_reply.endswith(sloppy)
    reason = caught.value.parse_reason
    assert "not a single value" in reason or "no 'Final answer: <value>' line" in reason
    # The second and third asks carry the reason, appended to the conversation.
    retry = client.calls[1]["messages"][-1].content
    assert reason in retry and "Reply again" in retry


def test_a_sloppy_reply_then_a_good_one_is_kept_in_canonical_form():
    client = ScriptedChatClient(["3 + 4 = 7\nFinal answer: seven", "3 + 4 = 7\nThe final answer is: $7.00"])
    result = asyncio.run(Teacher(client).call(question=QUESTION))
    assert result.attempts == 2
    assert result.output.final_answer == "7"
    assert result.output.solution == "3 + 4 = 7\n\nFinal answer: 7"


@pytest.mark.parametrize("reply, canonical", [
    ("48 + 24 = 72\nFinal answer: 72", "72"),
    ("Work.\nFinal answer: $1,250.50", "1250.5"),
    ("Work.\nFinal answer: 6/8", "3/4"),
    ("Work.\nFinal answer: 2.50", "2.5"),
    ("Work.\nFinal answer: 12.5%", "12.5%"),
    ("Work.\nFinal answer: 12 apples", "12"),
    ("Work.\nFinal answer: \\boxed{42}", "42"),
    ("Work.\nSo the answer is 8.", "8"),
    ("Work.\n#### 1,200", "1200"),
    ("Work.\nFinal answer: -3", "-3"),
])
def test_the_teacher_stores_the_canonical_value_and_ends_with_the_canonical_line(reply, canonical):
    solution = Teacher(ScriptedChatClient([reply])).run_sync(question=QUESTION)
    assert solution.final_answer == canonical
    assert solution.solution.splitlines()[-1] == f"Final answer: {canonical}"
    assert solution.solution.count("Final answer:") == 1
    assert solution.solution.startswith("Work.") or solution.solution.startswith("48 + 24")


def test_a_solver_may_say_the_problem_cannot_be_answered():
    solution = Teacher(ScriptedChatClient(["Nothing says how many cats Ann has.\nFinal answer: unsolvable"])).run_sync(question="How many cats?")
    assert solution.final_answer == "unsolvable"
    assert strict_final_answer("Two readings.\nFinal answer: Ambiguous") == "ambiguous"


def test_strict_reading_refuses_what_is_not_one_value():
    for value in ("five", "x + 3", "5-6", "about 5", ": 5", "3:4", "5 or 6", "Deer", ""):
        assert canonical_value(value) is None, value
    with pytest.raises(FinalAnswerError, match="more than one final answer"):
        strict_final_answer("Final answer: 7\nFinal answer: 8")
    with pytest.raises(FinalAnswerError, match="no 'Final answer"):
        strict_final_answer("She has 12 apples.")


def test_the_student_keeps_any_reply_with_its_strict_final_answer():
    good = Student(ScriptedChatClient(["3 + 4 = 7\nFinal answer: $7"])).run_sync(question=QUESTION)
    assert (good.text, good.final_answer) == ("3 + 4 = 7\nFinal answer: $7", "7")
    sloppy = Student(ScriptedChatClient(["It is seven apples."])).run_sync(question=QUESTION)
    assert (sloppy.text, sloppy.final_answer) == ("It is seven apples.", None)


def test_a_solve_stage_records_a_sloppy_answer_as_a_failure_with_its_reason(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "p1", "question": QUESTION}) + "\n")
    client = ScriptedChatClient(responder=lambda messages: "Final answer: x + 3")
    result = Pipeline([Solve()], model=client, progress=False, cache=False).run_sync(seeds, out=tmp_path / "out")
    assert result.funnel.final_rows == 0
    failures = [json.loads(line) for line in result.outputs["failures"].read_text().splitlines()]
    assert [f["id"] for f in failures] == ["p1"]
    assert "'x + 3' is not a single value" in failures[0]["reason"] and failures[0]["raw_reply"] == "Final answer: x + 3"


# ---------------------------------------------------------------- checked Ask-Me-Anything targets

STATEMENT = "Tom has 3 apples, buys 4 more, and then has 7 apples."


def ama_reply(*targets: object) -> str:
    problems = [{"question": f"Problem asking for {t}? [{i}]", "target": t} for i, t in enumerate(targets)]
    return json.dumps({"statement": STATEMENT, "problems": problems})


def write_seed(tmp_path, question=QUESTION, answer="7"):
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps({"id": "s1", "question": question, "answer": answer}) + "\n")
    return path


def test_a_target_not_in_the_statement_is_refused_before_any_teacher_call(tmp_path):
    teacher_questions: list[str] = []

    def respond(messages):
        prompt = str(messages[-1].content)
        if '"statement"' in prompt:
            return ama_reply("Deer", 4.0, "$7", 12)
        teacher_questions.append(prompt)
        return "Work.\nFinal answer: 1"

    result = Pipeline([Expand(), Solve()], model=ScriptedChatClient(responder=respond), progress=False, cache=False).run_sync(
        write_seed(tmp_path), out=tmp_path / "out")
    rows = result.load_dataset()
    assert sorted(rows["id"]) == ["s1", "s1-ama2", "s1-ama3"]
    assert dict(zip(rows["id"], rows["known_answer"], strict=True))["s1-ama3"] == "7"  # canonical: "$7" -> "7"
    drops = [json.loads(line) for line in result.outputs["drops"].read_text().splitlines()]
    assert {(d["id"], d["reason"]) for d in drops} == {("s1-ama1", "unchecked_target"), ("s1-ama4", "unchecked_target")}
    reasons = {d["id"]: d["detail"] for d in drops}
    assert "'Deer' is not a number" in reasons["s1-ama1"]
    assert "'12' does not appear as a number in the statement" in reasons["s1-ama4"]
    assert not any("asking for Deer" in q or "asking for 12" in q for q in teacher_questions)
    assert result.funnel.stages[0].drops == {"unchecked_target": 2}


def test_a_reply_with_no_checked_target_is_asked_again():
    client = ScriptedChatClient([ama_reply("Deer"), ama_reply(3)])
    result = asyncio.run(AskMeAnything(client).call(question=QUESTION, answer="7"))
    assert result.attempts == 2 and [p.target for p in result.output.problems] == ["3"]
    assert "'Deer' is not a number" in client.calls[1]["messages"][-1].content


# ---------------------------------------------------------------- the seed goes on when expansion fails


def test_a_seed_whose_expansion_fails_reaches_the_dataset_and_its_expansion_is_retried_on_rerun(tmp_path):
    seeds = write_seed(tmp_path, question="Ann has 2 cats and gets 3 more. How many cats does she have?", answer="5")
    calls: list[str] = []

    def broken(messages):
        prompt = str(messages[-1].content)
        calls.append("ama" if '"statement"' in prompt or "could not be used" in prompt else "teacher")
        return "no JSON here" if calls[-1] == "ama" else pipeline_responder(messages)

    first = Pipeline([Expand(), Solve()], model=ScriptedChatClient(responder=broken), progress=False, cache=False).run_sync(
        seeds, out=tmp_path / "out")
    assert first.load_dataset()["id"] == ["s1"]  # the seed went on to be solved
    expand = first.funnel.stages[0]
    assert (expand.inputs, expand.outputs, expand.failed) == (1, 1, 1)
    failures = [json.loads(line) for line in first.outputs["failures"].read_text().splitlines()]
    assert [(f["id"], f["stage"]) for f in failures] == [("s1", "expand")]
    assert failures[0]["raw_reply"] == "no JSON here" and "ask_me_anything" in failures[0]["reason"]
    assert calls.count("teacher") == 1

    calls.clear()
    second = Pipeline([Expand(), Solve()], model=ScriptedChatClient(responder=lambda m: calls.append(str(m[-1].content)[:20]) or pipeline_responder(m)),
                      progress=False, cache=False).run_sync(seeds, out=tmp_path / "out")
    assert second.resumed
    assert sorted(second.load_dataset()["id"]) == ["s1", "s1-ama1", "s1-ama2"]
    assert second.funnel.stages[0].failed == 0
    assert second.outputs["failures"].read_text() == ""
    # One Ask-Me-Anything call and two Teacher calls for the new problems; the seed's solution was kept.
    assert len(calls) == 3


def test_without_keep_seeds_a_failed_expansion_passes_nothing_on(tmp_path):
    client = ScriptedChatClient(responder=lambda m: "no JSON" if '"statement"' in str(m[-1].content) or "could not" in str(m[-1].content) else "Final answer: 5")
    result = Pipeline([Expand(keep_seeds=False), Solve()], model=client, progress=False, cache=False).run_sync(
        write_seed(tmp_path), out=tmp_path / "out")
    assert result.funnel.final_rows == 0
    assert (result.funnel.stages[0].outputs, result.funnel.stages[0].failed) == (0, 1)
