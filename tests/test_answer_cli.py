"""`orca-math eval` grades replies written the way models write them (#23), one of each failure class.

A real loopback OpenAI-compatible server answers each question with a realistic reply (a recap after the
answer, an aside, a mixed number in words, a duration in two units, a long closing sum, a hedge, and an
answer first with its parts after it); the CLI grades them with the deterministic checker alone.
"""

from __future__ import annotations

import json

from orca_math.cli import main
from orca_math.testing.fault_server import FaultConfig, FaultServer

# (question, gold, reply, correct)
CASES = [
    ("Lena had 50 marbles. She lost 12 and gave away 7. How many marbles does Lena have now?", "31",
     "So Lena has 31 marbles now. She began with 50, lost 12 and gave away 7.", True),
    ("A rectangular garden is 20 m long and 12 m wide. What is the perimeter of the garden?", "64",
     "The perimeter is 64 m. For comparison, the garden's area would be 240 square metres.", True),
    ("Four children share 9.5 cookies equally. How many cookies does each child get?", "2.375",
     "Each child gets two and three-eighths cookies.", True),
    ("A movie lasts 2 hours and 15 minutes. Mia has watched 40 minutes. How many minutes remain?", "95",
     "95 minutes remain (that is 1 hour 35 minutes).", True),
    ("A notebook costs $12, a pen $9 and a bag $20. How much do they cost together?", "41",
     "Adding the three costs together, 12 + 9 + 20 gives a total of 43 dollars.", False),
    ("Each box holds 12 pencils. How many boxes are needed for 70 pencils?", "6",
     "She needs 6 or 7 boxes.", False),
    ("A farmer has 12 cows and 30 chickens. How many legs do the animals have in total?", "108",
     "The animals have 108 legs in total. The 12 cows have 48 legs and the 30 chickens have 60 legs.", True),
]


def reply(messages) -> str:
    prompt = " ".join(str(message.get("content")) for message in messages)
    return next(text for question, _, text, _ in CASES if question in prompt)


def test_eval_grades_each_failure_class_without_a_model_grader(tmp_path, capsys):
    bench = tmp_path / "realistic.jsonl"
    bench.write_text("".join(json.dumps({"question": q, "answer": gold}) + "\n" for q, gold, _, _ in CASES))
    out = tmp_path / "eval"
    with FaultServer(FaultConfig(reply=reply)) as server:
        status = main(["eval", "--model", server.base_url, "--model-name", "fault-model", "--benchmark-file",
                       str(bench), "--grading", "exact", "--out", str(out), "--no-progress"])
    assert status == 0, capsys.readouterr().out
    items = {row["question"]: row for row in map(json.loads, (out / "items.jsonl").read_text().splitlines())}
    assert {q: items[q]["correct"] for q, *_ in CASES} == {q: correct for q, _, _, correct in CASES}
    assert all(row["method"] == "exact" for row in items.values())
    assert "several answers" in items[CASES[5][0]]["analysis"]
