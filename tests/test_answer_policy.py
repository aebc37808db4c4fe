"""The answer policy is in the run key (#23): a changed rule set never resumes verdicts made under old rules."""

from __future__ import annotations

import json

import pytest

from orca_math.answers import RULE_SET_VERSION, AnswerPolicy
from orca_math.pipeline import Pipeline, Solve, Verify
from orca_math.testing import ScriptedChatClient

QUESTION = "A farmer has 84 eggs and packs them into 2 equal boxes. How many eggs are in each box?"


def teacher() -> ScriptedChatClient:
    return ScriptedChatClient(responder=lambda messages: "84 / 2 = 42 eggs.\nFinal answer: 42")


def run(tmp_path, policy: AnswerPolicy, concurrency: int = 4):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "q1", "question": QUESTION, "answer": "42"}) + "\n")
    pipeline = Pipeline([Solve(), Verify(policy=policy)], model=teacher(), progress=False, cache=False,
                        concurrency=concurrency)
    return pipeline.run_sync(seeds, out=tmp_path / "out")


def test_a_changed_rule_set_changes_the_run_key_and_the_same_one_resumes(tmp_path):
    first = run(tmp_path, AnswerPolicy())
    assert first.load_dataset().to_list()[0]["verified"] is True
    again = run(tmp_path, AnswerPolicy(), concurrency=2)  # concurrency is not in the key
    older = run(tmp_path, AnswerPolicy(rule_set="2026.01.01"))
    looser = run(tmp_path, AnswerPolicy(rel_tol=0.01))
    assert again.run_key == first.run_key
    assert len({first.run_key, older.run_key, looser.run_key}) == 3
    assert older.run_dir != first.run_dir


def test_the_policy_and_its_rule_set_are_in_each_stage_s_params():
    from orca_math.evaluate.stages import GradeStage
    from orca_math.grading import GradingPolicy
    from orca_math.learn.labelling import LabelStage

    older = AnswerPolicy(rule_set="2026.01.01")
    assert Verify().params()["policy"]["rule_set"] == RULE_SET_VERSION
    assert Verify(policy=older).fingerprint() != Verify().fingerprint()
    assert GradeStage(mode="exact", answer_policy=older).fingerprint() != GradeStage(mode="exact").fingerprint()
    assert (LabelStage(GradingPolicy(mode="exact", answer_policy=older)).fingerprint()
            != LabelStage(GradingPolicy(mode="exact")).fingerprint())


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rounding", "sometimes", "rounding must be one of"),
    ("min_confidence", "certain", "min_confidence must be one of"),
    ("rel_tol", -1.0, "tolerances must be >= 0"),
])
def test_a_bad_setting_is_one_clear_error(field, value, message):
    with pytest.raises(ValueError, match=message):
        AnswerPolicy(**{field: value})
