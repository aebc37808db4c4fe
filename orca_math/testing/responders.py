"""A scripted stand-in for a teacher model that answers each shipped agent plausibly.

`pipeline_responder` tells the agents apart by their prompts and replies in each one's format,
computing real answers for simple "a + b" problems, so whole pipelines can run offline and fast
in tests, notebooks and benchmarks. It is not a model: it shows the machinery, nothing more.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from autogen_core.models import LLMMessage

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _prompt(messages: Sequence[LLMMessage]) -> str:
    return "\n".join(str(m.content) for m in messages if type(m).__name__ == "UserMessage")


def _question(prompt: str) -> str:
    match = re.search(r"(?:Problem:|problem:)\s*\n(.+?)(?:\n\n|$)", prompt, re.DOTALL)
    return match.group(1).strip() if match else prompt


def _sum_of_numbers(text: str) -> str:
    numbers = [float(n) for n in _NUMBER.findall(text)]
    total = sum(numbers) if numbers else 0
    return str(int(total)) if float(total).is_integer() else f"{total:.2f}"


def pipeline_responder(messages: Sequence[LLMMessage]) -> str:
    """Reply as the agent whose prompt this is (Ask-Me-Anything, Suggester, Editor, Teacher, ProgramWriter, Grader)."""
    prompt = _prompt(messages)
    digest = "".join(chr(97 + int(c, 16) % 26) for c in hashlib.sha1(prompt.encode()).hexdigest()[:6])  # letters only: no stray digits
    if "Final Verdict" in prompt:
        return "Error analysis: The student's final answer matches the setter's.\nFinal Verdict: Correct"
    if '"statement"' in prompt:
        question = _question(prompt)
        numbers = _NUMBER.findall(question)[:2] or ["1"]
        problems = [{"question": f"Variant {digest}{chr(96 + i)}: what number is {n} plus 0?", "target": n} for i, n in enumerate(numbers, 1)]
        # The statement holds every target: Expand refuses targets that are not numbers of it.
        return json.dumps({"statement": f"Restated {digest}: the numbers are {' and '.join(numbers)}.", "problems": problems})
    if "variable named answer" in prompt:  # ProgramWriter: a program that adds the problem's numbers
        numbers = _NUMBER.findall(_question(prompt).split("[")[0]) or ["0"]
        return "```python\n" + "".join(f"n{i} = {n}\n" for i, n in enumerate(numbers)) + f"answer = {' + '.join(f'n{i}' for i in range(len(numbers)))}\n```"
    if '"suggestions"' in prompt:
        return json.dumps({"suggestions": ["Add a second step with 5 more items", "Ask for the total in a different unit"]})
    if '{"question"' in prompt:
        question = _question(prompt.replace("Here is a math word problem:", "Problem:"))
        return json.dumps({"question": f"{question.splitlines()[0]} Then 5 more are added. What is the total now? [{digest}]"})
    question = _question(prompt)
    answer = _sum_of_numbers(question.split("[")[0])
    return f"Add the numbers in the problem step by step.\nThe total is {answer}.\nFinal answer: {answer}"
