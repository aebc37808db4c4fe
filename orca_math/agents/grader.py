"""Grader: judges a student's solution against the teacher's (the paper's GPT-4-based exact match)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent, ReplyParseError
from orca_math.records import Verdict

_VERDICT = re.compile(r"final\s+verdict\s*[:：]\s*\**\s*(correct|incorrect)\b", re.IGNORECASE)
_ANALYSIS = re.compile(r"error\s+analysis\s*[:：]\s*(?P<text>.+)", re.IGNORECASE)


class Grader(Agent[Verdict]):
    """Writes a one-sentence error analysis, then `Final Verdict: Correct|Incorrect`.

    Inputs: `question`, `reference_solution` (the teacher's), `student_solution`.
    Output: `Verdict(analysis, verdict, method="llm")`. A reply without a verdict line, or with
    two contradicting verdicts, is a parse error.
    """

    card_name = "grader"
    output_type = Verdict

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> Verdict:
        verdicts = {m.group(1).capitalize() for m in _VERDICT.finditer(reply)}
        if not verdicts:
            raise ReplyParseError("no 'Final Verdict: Correct|Incorrect' line", reply)
        if len(verdicts) > 1:
            raise ReplyParseError("contradicting verdicts", reply)
        match = _ANALYSIS.search(reply)
        if match:
            analysis = match.group("text").strip()
        else:  # tolerate a missing label: the text before the verdict line is the analysis
            analysis = reply[: _VERDICT.search(reply).start()].strip()
        return self.validate_output({"analysis": analysis, "verdict": verdicts.pop(), "method": "llm"}, reply)
