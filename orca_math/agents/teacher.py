"""Teacher: solves a problem step by step to one final answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent, ReplyParseError
from orca_math.records import Solution

FINAL_ANSWER_PREFIX = "Final answer:"
# The fixed last line; tolerant of markdown emphasis and case, strict about the label.
FINAL_ANSWER_LINE = re.compile(
    r"^[\s>*_#]*(?:the\s+)?final\s+answer\s*(?:[:：]|is\b)\s*\**\s*(?P<value>.+?)\s*\**\s*$", re.IGNORECASE | re.MULTILINE
)

# Tolerated on the last non-empty line only: "The answer is 8", "So the answer is: 8", "#### 8".
CLOSING_ANSWER_LINE = re.compile(
    r"^\s*(?:(?:so|thus|therefore),?\s+)?(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*(?P<value>.+?)\s*$|^\s*####\s*(?P<hash>.+?)\s*$",
    re.IGNORECASE,
)


def find_final_answer_line(text: str) -> str | None:
    """The value on the last `Final answer: ...` line of a solution, or None."""
    matches = list(FINAL_ANSWER_LINE.finditer(text))
    if not matches:
        return None
    value = matches[-1].group("value").strip().rstrip(".").strip()
    return value or None


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
        values = {m.group("value").strip().rstrip(".").strip() for m in FINAL_ANSWER_LINE.finditer(text)}
        values.discard("")
        if not values:
            closing = CLOSING_ANSWER_LINE.match(text.splitlines()[-1])
            if closing:
                values = {(closing.group("value") or closing.group("hash")).strip().rstrip(".").strip()} - {""}
        if not values:
            raise ReplyParseError(f"no '{FINAL_ANSWER_PREFIX} <value>' line", reply)
        if len(values) > 1:
            raise ReplyParseError(f"more than one final answer: {', '.join(sorted(values))}", reply)
        return self.validate_output({"solution": text, "final_answer": values.pop()}, reply)
