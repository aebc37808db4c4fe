"""The strict (Teacher) reading of a stated answer, and the seed helpers, in orca_math.answers.

orca_math.answers is the one implementation: the Teacher agent and the seed loader use it. The
expected values below were recorded from the Teacher's and the seed loader's own code before they
were switched over, so the switch changed nothing.
"""

from __future__ import annotations

import pytest

from orca_math.agents import teacher
from orca_math.agents.base import ReplyParseError
from orca_math.answers import (
    ConflictingAnswersError,
    canonical_number,
    canonical_value,
    find_final_answer_line,
    find_stated_answer,
    stated_final_answer,
)

SOLUTIONS = [
    "48 + 24 = 72\nFinal answer: 72",
    "**Final answer:** $18.",
    "# Final Answer: 3/4",
    "The final answer is 12 apples",
    "final answer is 5",
    "Final answer: 10\nWait.\nFinal answer: 12",  # two different answers
    "Final answer: 7\nFinal answer: 7.",  # the same answer twice
    "Work...\nThe answer is 8",
    "Work...\nSo the answer is: 8.",
    "Therefore, answer: 9",
    "Work...\n#### 1,250",
    "The answer is 8.\nThat was easy.",  # not on the last line
    "#### 5\nDone",
    "She has 12 apples.",  # no stated answer: never guessed
    "So 12 apples in total.\n\n",
    "Final answer:",  # empty value
    "   ",
    "",
    "> Final answer: **42**",
    "FINAL ANSWER: 100",
    "The answer is 3, and the final answer is 4",
]


def teacher_reading(text: str) -> str | None:
    """What Teacher.parse accepts as the final answer (None for a parse error that is not a conflict)."""
    agent = teacher.Teacher.__new__(teacher.Teacher)  # parse() needs no model
    agent.validate_output = lambda data, reply: data["final_answer"]
    try:
        return agent.parse(text, {})
    except ReplyParseError as error:
        if "more than one final answer" in str(error):
            raise ConflictingAnswersError(["conflict"]) from error
        return None


@pytest.mark.parametrize("text", SOLUTIONS)
def test_find_stated_answer_agrees_with_the_teacher(text):
    try:
        expected = teacher_reading(text)
    except ConflictingAnswersError:
        with pytest.raises(ConflictingAnswersError, match="more than one final answer"):
            find_stated_answer(text)
        return
    # The Teacher keeps the stated answer only when it is one value, in canonical form.
    stated = find_stated_answer(text)
    assert (canonical_value(stated) if stated is not None else None) == expected


FINAL_ANSWER_LINES = [('48 + 24 = 72\nFinal answer: 72', '72'), ('**Final answer:** $18.', '$18'), ('# Final Answer: 3/4', '3/4'), ('The final answer is 12 apples', '12 apples'), ('final answer is 5', '5'), ('Final answer: 10\nWait.\nFinal answer: 12', '12'), ('Final answer: 7\nFinal answer: 7.', '7'), ('Work...\nThe answer is 8', None), ('Work...\nSo the answer is: 8.', None), ('Therefore, answer: 9', None), ('Work...\n#### 1,250', None), ('The answer is 8.\nThat was easy.', None), ('#### 5\nDone', None), ('She has 12 apples.', None), ('So 12 apples in total.\n\n', None), ('Final answer:', None), ('   ', None), ('', None), ('> Final answer: **42**', '42'), ('FINAL ANSWER: 100', '100'), ('The answer is 3, and the final answer is 4', None)]


@pytest.mark.parametrize("text, expected", FINAL_ANSWER_LINES)
def test_find_final_answer_line_reads_what_the_teacher_read(text, expected):
    assert find_final_answer_line(text) == expected


def test_find_stated_answer_reads_the_documented_forms():
    assert find_stated_answer("Work.\nFinal answer: $18.") == "$18"
    assert find_stated_answer("Work.\n#### 1,250") == "1,250"
    assert find_stated_answer("Work.\nThe answer is 8") == "8"
    assert find_stated_answer("She has 12 apples.") is None  # no last-number fallback
    assert find_stated_answer("The answer is 8.\nMore text.") is None  # only on the last line
    with pytest.raises(ConflictingAnswersError) as caught:
        find_stated_answer("Final answer: 10\nFinal answer: 12")
    assert caught.value.values == ["10", "12"]
    with pytest.raises(TypeError, match="expects a str"):
        find_stated_answer(None)


NUMBERS = ["1,000", "$18", "5/2", "-(1/3)", "0.50", 145.0, 7, "-3", ".5", "2:3", "abc", "", True, None,
           "1/0", "12 apples", "+4", "1,00", float("nan"), 2.5, "3/9", "$1,250.50", "-0", " 42 "]


CANONICAL = [('1,000', '1000'), ('$18', '18'), ('5/2', '2.5'), ('-(1/3)', '-1/3'), ('0.50', '0.5'), (145.0, '145'), (7, '7'), ('-3', '-3'), ('.5', '0.5'), ('2:3', None), ('abc', None), ('', None), (True, None), (None, None), ('1/0', None), ('12 apples', None), ('+4', '4'), ('1,00', None), (2.5, '2.5'), ('3/9', '1/3'), ('$1,250.50', '1250.5'), ('-0', '0'), (' 42 ', '42')]


@pytest.mark.parametrize("value, expected", CANONICAL, ids=[repr(v) for v, _ in CANONICAL])
def test_canonical_number_reads_what_the_seed_loader_read(value, expected):
    assert canonical_number(value) == expected


def test_canonical_number_forms():
    assert canonical_number("1,000") == "1000"
    assert canonical_number("5/2") == "2.5"
    assert canonical_number("3/9") == "1/3"
    assert canonical_number("12 apples") is None


ANSWER_TEXTS = ["3 + 4 = 7\n#### 7", "#### 1,200", "It is 3/2.\nFinal answer: 1.5", "Final answer: $18", "42",
                "9 (apples)", "She had 3, then 5 more, so 8 in all.", "Final answer: 12 apples",
                "#### 5\nFinal answer: 6", "final answer: 2."]


STATED = [('3 + 4 = 7\n#### 7', '7'), ('#### 1,200', '1200'), ('It is 3/2.\nFinal answer: 1.5', '1.5'), ('Final answer: $18', '18'), ('42', '42'), ('9 (apples)', None), ('She had 3, then 5 more, so 8 in all.', None), ('Final answer: 12 apples', '12 apples'), ('#### 5\nFinal answer: 6', '5'), ('final answer: 2.', '2')]


@pytest.mark.parametrize("text, expected", STATED)
def test_stated_final_answer_reads_what_the_seed_loader_read(text, expected):
    assert stated_final_answer(text) == expected


def test_the_seed_loader_uses_the_one_implementation():
    from orca_math.data import seeds

    assert seeds.canonical_number is canonical_number and seeds.stated_final_answer is stated_final_answer
