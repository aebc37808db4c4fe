"""Teacher: solves a problem step by step to one final answer, stated as one canonical value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent, ReplyParseError
from orca_math.answers import FinalAnswerError, strict_final_answer, with_final_answer_line
from orca_math.records import Solution

FINAL_ANSWER_PREFIX = "Final answer:"


class Teacher(Agent[Solution]):
    """Solves a problem step by step, ending with the line `Final answer: <value>`.

    Inputs: `question`.
    Output: `Solution(solution, final_answer)`.

    The final answer must be one value (a number, fraction, percentage or money amount in digits);
    it is stored in canonical form ("$1,250.50" -> "1250.5", "6/8" -> "3/4"), and `solution` is the
    reply with its answer line replaced by the canonical closing line `Final answer: <value>`. A last
    line such as "The answer is 8" or "#### 8" is read too, since small models often write that. A
    reply with no final answer, two different ones, or one that is not a value ("five apples",
    "x + 3") is a parse error: the base class asks again with the reason, then records a failure.
    A solver that finds the problem cannot be answered may state `Final answer: unsolvable` or
    `Final answer: ambiguous`; the Verify stage drops such problems with that reason.
    """

    card_name = "teacher"
    output_type = Solution

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> Solution:
        text = reply.strip()
        if not text:
            raise ReplyParseError("empty reply", reply)
        # The strict reading lives with every other answer rule, in orca_math.answers.
        try:
            value = strict_final_answer(text)
        except FinalAnswerError as exc:
            # A reply that copies the template ("Final answer: <number>") is told so: that is its fault.
            template = getattr(self, "template", None)
            echo = template.echo_in(text) if template is not None and self.rejects_template_echoes else None
            raise ReplyParseError(echo or exc.reason, reply) from None
        return self.validate_output({"solution": with_final_answer_line(text, value), "final_answer": value}, reply)
