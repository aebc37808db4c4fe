"""Teacher: solves a problem step by step to one final answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent, ReplyParseError
from orca_math.answers import ConflictingAnswersError, find_stated_answer
from orca_math.records import Solution

FINAL_ANSWER_PREFIX = "Final answer:"


class Teacher(Agent[Solution]):
    """Solves a problem step by step, ending with the line `Final answer: <value>`.

    Inputs: `question`.
    Output: `Solution(solution, final_answer)`; `solution` is the whole reply text.
    A last line such as "The answer is 8" or "#### 8" is accepted too, since small models often
    write that. Replies with no final answer, or more than one different final answer, are parse errors.
    """

    card_name = "teacher"
    output_type = Solution

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> Solution:
        text = reply.strip()
        if not text:
            raise ReplyParseError("empty reply", reply)
        # The strict reading lives with every other answer rule, in orca_math.answers.
        try:
            value = find_stated_answer(text)
        except ConflictingAnswersError as exc:
            raise ReplyParseError(str(exc), reply) from None
        if value is None:
            raise ReplyParseError(f"no '{FINAL_ANSWER_PREFIX} <value>' line", reply)
        return self.validate_output({"solution": text, "final_answer": value}, reply)
