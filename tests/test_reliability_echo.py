"""Agents reject replies that copy their template's placeholders or repeat its instructions.

Such replies parse and match the schema (`question: '<the new problem>'`), so without this check
they reached the dataset and passed the Filter. Each one must be a parse failure with that reason:
retried with the reason told to the model, then recorded as a failure.
"""

from __future__ import annotations

import json

import pytest

from orca_math._sync import run_sync
from orca_math.agents import AgentFailedError, AskMeAnything, Editor, Grader, Suggester, Teacher
from orca_math.agents.templates import PromptTemplate
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SUGGESTIONS = ["Add a discount of 10% on each apple", "Ask for the total cost in cents"]
GOOD_QUESTION = "Tom has 3 apples at 50 cents each and buys 4 more at a 10% discount. How many cents does he pay in all?"

CASES = {
    "editor placeholder": (Editor, {"question": QUESTION, "suggestions": SUGGESTIONS},
                           json.dumps({"question": "<the new problem>"}),
                           json.dumps({"question": GOOD_QUESTION}), "placeholder"),
    "editor instructions": (Editor, {"question": QUESTION, "suggestions": SUGGESTIONS},
                            json.dumps({"question": "Apply these suggestions to make it harder: - " + " - ".join(SUGGESTIONS)}),
                            json.dumps({"question": GOOD_QUESTION}), "instructions"),
    "editor instructions only": (Editor, {"question": QUESTION, "suggestions": SUGGESTIONS},
                                 json.dumps({"question": "Write the new problem. It must be self-contained (a reader needs "
                                             "nothing else), unambiguous, and have exactly one numeric answer."}),
                                 json.dumps({"question": GOOD_QUESTION}), "instructions"),
    "ama target placeholder": (AskMeAnything, {"question": QUESTION, "answer": "7"},
                               json.dumps({"statement": "Tom has 3 apples, buys 4 more, and has 7.",
                                           "problems": [{"question": "Tom had some apples and bought 4; he has 7. How many had he?",
                                                         "target": "<the number it asks for>"}]}),
                               json.dumps({"statement": "Tom has 3 apples, buys 4 more, and has 7.",
                                           "problems": [{"question": "Tom had some apples and bought 4; he has 7. How many had he?",
                                                         "target": "3"}]}), "placeholder"),
    "ama invented placeholder": (AskMeAnything, {"question": QUESTION, "answer": "7"},
                                 json.dumps({"statement": "Tom has 3 apples, buys 4 more, and has 7.",
                                             "problems": [{"question": "Tom bought 4 apples and now has 7. How many had he?",
                                                           "target": "<a href of the problem to add another one>"}]}),
                                 json.dumps({"statement": "Tom has 3 apples, buys 4 more, and has 7.",
                                             "problems": [{"question": "Tom bought 4 apples and now has 7. How many had he?",
                                                           "target": "3"}]}), "placeholder"),
    "suggester placeholders": (Suggester, {"question": QUESTION},
                               json.dumps({"suggestions": ["<first change>", "<second change>"]}),
                               json.dumps({"suggestions": SUGGESTIONS}), "placeholder"),
    "teacher placeholder": (Teacher, {"question": QUESTION}, "3 + 4 = 7 apples.\nFinal answer: <number>",
                            "3 + 4 = 7 apples.\nFinal answer: 7", "placeholder"),
    "grader placeholder": (Grader, {"question": QUESTION, "reference_solution": "Final answer: 7", "student_solution": "7"},
                           "Error analysis: <one sentence comparing the two final answers>\nFinal Verdict: Correct",
                           "Error analysis: Both final answers are 7.\nFinal Verdict: Correct", "placeholder"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_echoing_reply_is_retried_with_the_reason(case):
    agent_class, inputs, bad, good, word = CASES[case]
    client = ScriptedChatClient([bad, good])
    result = run_sync(agent_class(client).call(**inputs))
    assert result.attempts == 2
    feedback = client.calls[1]["messages"][-1].content
    assert "could not be used" in feedback and word in feedback


@pytest.mark.parametrize("case", ["editor placeholder", "teacher placeholder", "editor instructions"])
def test_an_agent_that_only_echoes_fails_with_that_reason(case):
    agent_class, inputs, bad, _, word = CASES[case]
    client = ScriptedChatClient(responder=lambda messages: bad)
    with pytest.raises(AgentFailedError, match=word) as info:
        run_sync(agent_class(client).call(**inputs))
    assert info.value.attempts == 3 and info.value.raw_reply == bad


@pytest.mark.parametrize("reply", [
    "Let's solve this math word problem step by step. Tom has 3 apples and buys 4 more: 3 + 4 = 7.\nFinal answer: 7",
    "Tom starts with 3 apples. He buys 4 more, so 3 + 4 = 7. If x < 8 and y > 2 hold, nothing changes.\nFinal answer: 7",
])
def test_ordinary_replies_are_not_mistaken_for_echoes(reply):
    result = run_sync(Teacher(ScriptedChatClient([reply])).call(question=QUESTION))
    assert result.attempts == 1 and result.output.final_answer == "7"


def test_an_editor_may_keep_the_original_question_text():
    reply = json.dumps({"question": QUESTION + " Each apple costs 50 cents; how many cents did he spend on the 4?"})
    assert run_sync(Editor(ScriptedChatClient([reply])).call(question=QUESTION, suggestions=SUGGESTIONS)).attempts == 1


def test_the_template_knows_its_placeholders_and_instructions():
    template = PromptTemplate(
        'Solve this problem carefully and show your work.\n{{ question }}\n'
        'Reply with JSON only: {"answer": "<the answer>"}\nFor example, "Sam has 2 cats. How many?"'
    )
    assert template.placeholders == frozenset({"<the answer>"})
    assert "solve this problem carefully and show your work" in template.instructions
    assert not any("sam has" in sentence for sentence in template.instructions)  # quoted examples are not instructions


def test_the_pipeline_records_an_echoing_item_as_a_failure(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "p1", "question": QUESTION}) + "\n" + json.dumps({"id": "p2", "question": "What is 2 + 2?"}) + "\n")

    def respond(messages):
        prompt = str(messages[1].content)  # the problem; later messages are retry feedback
        return "Final answer: <number>" if "apples" in prompt else "2 + 2 = 4\nFinal answer: 4"

    result = Pipeline([Solve()], model=ScriptedChatClient(responder=respond), progress=False, cache=False).run_sync(
        seeds, out=tmp_path / "out")
    assert result.funnel.final_rows == 1
    failures = [json.loads(line) for line in result.outputs["failures"].read_text().splitlines()]
    assert [f["id"] for f in failures] == ["p1"] and "placeholder" in failures[0]["reason"]
