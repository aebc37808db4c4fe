"""Ask-Me-Anything: new problems from a seed problem and its answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent, ReplyParseError
from orca_math.answers import canonical_number, canonical_value
from orca_math.records import Restatement

# A number as a statement writes it: "$1,250.50", "3/4", "12.5%", "-4", ".5".
_STATEMENT_NUMBER = re.compile(r"[-−]?[$€£]?\s*(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:\s*/\s*\d+)?|\.\d+)\s*%?")


def statement_numbers(statement: str) -> set[str]:
    """The canonical values of the numbers written in digits in `statement`."""
    values = set()
    for match in _STATEMENT_NUMBER.finditer(statement):
        text = match.group(0).strip()
        for variant in (text, text.lstrip("-−"), text.rstrip("%").strip()):
            values.update(v for v in (canonical_value(variant), canonical_number(variant)) if v is not None)
    return values


def check_target(statement: str, target: str) -> tuple[str | None, str | None]:
    """Check an Ask-Me-Anything target: it must be a number that appears in the statement.

    Returns:
        (the target's canonical value, None) when it passes, else (None, the reason it is refused).
    """
    value = canonical_value(target)
    if value is None:
        return None, f"target {target!r} is not a number"
    numbers = statement_numbers(statement)
    if value not in numbers and canonical_number(value) not in numbers:  # "0.75" is the statement's "3/4"
        return None, f"target {target!r} does not appear as a number in the statement"
    return value, None


class AskMeAnything(Agent[Restatement]):
    """Restates a seed as a statement containing its answer, then writes one problem per number.

    Inputs: `question` (the seed problem), `answer` (its final answer, or a worked solution).
    Output: `Restatement` — the statement and a non-empty list of `NewProblem(question, target)`;
    every new problem's known answer is its `target`.

    A target must be a number that appears in the statement (`check_target`): the Expand stage
    refuses the other problems with that reason before any teacher call is spent on them. A reply in
    which no problem passes is a parse error, so the model is asked again with the reasons.
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

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> Restatement:
        restatement = super().parse(reply, inputs)
        self._check_not_echo(reply, restatement, inputs)  # a copied placeholder is told as such, first
        reasons = [check_target(restatement.statement, problem.target)[1] for problem in restatement.problems]
        if all(reasons):
            raise ReplyParseError("no new problem asks for a number of the statement: " + "; ".join(dict.fromkeys(reasons)), reply)  # type: ignore[arg-type]
        return restatement


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if value is not None else ""
