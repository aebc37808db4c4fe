"""Real output folders for the card, push and report tests: the pipeline run on a scripted client.

The scripted agents write distinct problems (so dedup keeps them), hardened problems whose
solutions grow with each round, one wrong teacher answer (a failed check) and one non-numeric
final answer ("unsolvable", a drop), so every chart and table has something to show.
"""

from __future__ import annotations

import json
from pathlib import Path

from orca_math.pipeline import Expand, Filter, Harden, Pipeline, Solve, Verify
from orca_math.testing import ScriptedChatClient

SEEDS = [
    {"question": "Sam has 4 pens and buys 3 more. How many pens does he have?", "answer": "7"},
    {"question": "A box holds 6 eggs. How many eggs are in 5 boxes?", "answer": "30"},
    {"question": "Lea had 10 dollars and spent 2.5 dollars. How much money is left?", "answer": "7.5"},
]

#: Ask-Me-Anything problems per seed keyword: (question, target, the teacher's answer).
NEW_PROBLEMS = {
    "pens": [
        ("Tom has 5 apples and his aunt gives him 7 more. How many apples does Tom have now?", "12", "12"),
        ("A pizza is shared equally between two friends. What fraction does each friend eat?", "1/2", "1/2"),
    ],
    "eggs": [
        ("At dawn the thermometer read 2 degrees and by night it had fallen 5 degrees. What did it read at night?", "-3", "-3"),
        ("How many legs do 3 spiders have altogether?", "24", "18"),  # a wrong teacher answer
    ],
    "dollars": [
        ("A ribbon 3 metres long is cut into 4 equal pieces. How long is each piece in metres?", "0.75", "0.75"),
        ("A bus carries 45 passengers and 18 get off at the first stop. How many remain on board?", "27", "27"),
    ],
}
SEED_ANSWERS = {"pens": "7", "eggs": "30", "dollars": "7.5"}
HARDER = [
    " Afterwards every weekend for three months a delivery truck brings twelve extra crates, and a quarter of the total is donated.",
    " Finally the whole collection is split between nine cousins, with the remainder kept aside in a locked cupboard upstairs.",
]


def _teacher_reply(question: str) -> str:
    rounds = sum(sentence in question for sentence in HARDER)
    answer = next((given for problems in NEW_PROBLEMS.values() for text, _, given in problems if text in question), None)
    if answer is None:
        answer = next((value for word, value in SEED_ANSWERS.items() if word in question), "unknown")
    if rounds == 2 and "eggs" in question:
        answer = "unsolvable"  # the solver says the problem cannot be answered: it is dropped
    lines = [f"Step {i}: work out part {i} of the problem carefully." for i in range(1, 3 + 3 * rounds)]
    return "\n".join(lines) + f"\nFinal answer: {answer}"


def responder(messages) -> str:
    """Answer each agent by its system message, as a capable teacher model would."""
    system, user = messages[0].content, messages[-1].content
    if "grade-school" in system:  # Ask-Me-Anything
        word = next(w for w in NEW_PROBLEMS if w in user)
        problems = [{"question": q, "target": t} for q, t, _ in NEW_PROBLEMS[word]]
        statement = "A statement that contains the answer and the numbers " + " and ".join(t for _, t, _ in NEW_PROBLEMS[word]) + "."
        return json.dumps({"statement": statement, "problems": problems})
    if "harder versions" in system:  # Suggester
        return json.dumps({"suggestions": ["add a second step", "add a sharing step"]})
    if "rewrite math word problems" in system:  # Editor
        question = user.split("\n\n")[1].strip()
        return json.dumps({"question": question + HARDER[sum(s in question for s in HARDER)]})
    if "patient math teacher" in system:  # Teacher
        return _teacher_reply(user.split("Problem:")[1].strip().split("\n\n")[0])
    raise AssertionError(f"unexpected agent: {system[:80]}")


def make_generation_run(out: Path) -> Path:
    """Run the Orca-Math stages on the scripted client into `out` and return it.

    The stages are listed rather than taken from `default_stages()`, whose decontamination stage
    needs benchmark files; these tests are about what a finished folder holds.
    """
    client = ScriptedChatClient(responder=responder)
    stages = [Expand(), Harden(rounds=2), Solve(), Verify(None), Filter()]  # unchecked: the report tests group rows by round
    Pipeline(stages, model=client, managed=False, progress=False).run_sync(SEEDS, out=out)
    return out


def make_evaluation_folder(out: Path, *, iterations: bool = True) -> Path:
    """An evaluation folder shaped like `orca_math.evaluate`'s (summary.json only)."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "run_key": "eval0001",
        "model": "student-m2",
        "benchmarks": {
            "gsm8k": {"n": 50, "correct": 40, "pass_at_1": 0.8, "failures": 1, "methods": {"exact": 35, "llm": 15}, "agreement": 0.9},
            "svamp": {"n": 20, "correct": 18, "pass_at_1": 0.9, "failures": 0, "methods": {"exact": 20, "llm": 0}},
        },
    }
    if iterations:
        summary["iterations"] = [
            {"iteration": 1, "model": "m1", "benchmarks": {"gsm8k": 0.7, "svamp": 0.85}},
            {"iteration": 2, "model": "m2", "benchmarks": {"gsm8k": 0.8, "svamp": 0.9}},
        ]
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out
