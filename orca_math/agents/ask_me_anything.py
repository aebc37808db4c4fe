"""Ask-Me-Anything: new problems from a seed problem and its answer."""

from __future__ import annotations

from typing import Any

from orca_math.agents.base import Agent
from orca_math.records import Restatement


class AskMeAnything(Agent[Restatement]):
    """Restates a seed as a statement containing its answer, then writes one problem per number.

    Inputs: `question` (the seed problem), `answer` (its final answer, or a worked solution).
    Output: `Restatement` — the statement and a non-empty list of `NewProblem(question, target)`;
    every new problem's known answer is its `target`.
    """

    card_name = "ask_me_anything"
    output_type = Restatement

    def normalize_output(self, data: dict[str, Any]) -> dict[str, Any]:
        # Models often write targets as JSON numbers; records keep answers as strings. Anything of
        # another shape is left for the record to refuse, with its reason.
        problems = data.get("problems")
        if isinstance(problems, list):
            problems = [{"question": str(p.get("question", "")).strip(), "target": _number_text(p.get("target"))}
                        if isinstance(p, dict) else p for p in problems]
            data = {**data, "problems": problems}
        if isinstance(data.get("statement"), str):
            data = {**data, "statement": data["statement"].strip()}
        return data


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if value is not None else ""
