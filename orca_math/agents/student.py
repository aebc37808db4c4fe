"""Student: the model under evaluation answers with the Teacher's prompt; its reply is kept as it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent
from orca_math.answers import FinalAnswerError, strict_final_answer
from orca_math.records import StudentReply


class Student(Agent[StudentReply]):
    """Answers a problem with the Teacher's card and template; any reply is kept verbatim and graded.

    A reply without the `Final answer:` line is not a failure in an evaluation: asking again would
    grade a student on its best of several tries. The reply is kept, `final_answer` holds the
    Teacher's strict reading of it (one canonical value, or None when the reply states none), and
    the grader's extraction falls back to other rules (`#### N`, `\\boxed{}`, "the answer is", a
    closing sentence). A reply that echoes the prompt is graded wrong rather than asked again.

    Inputs: `question`. Output: `StudentReply(text, final_answer)`.
    """

    card_name = "teacher"
    output_type = StudentReply
    rejects_template_echoes = False

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> StudentReply:
        try:
            final_answer: str | None = strict_final_answer(reply, allow_no_answer=False)
        except FinalAnswerError:
            final_answer = None
        return StudentReply(text=reply, final_answer=final_answer)
