"""`label_attempts(grading=...)`: a policy or a mode name, the old `grader=` keyword, and the question.

The labelling job itself (resume, failures, summary) is tested in tests/test_sampling.py.
"""

from __future__ import annotations

import asyncio

import pytest

from orca_math.errors import ConfigError
from orca_math.grading import GradingPolicy
from orca_math.learn.labelling import label_attempts, read_attempts
from orca_math.records import Attempt

QUESTION = "Of 50 students, 15 walk to school. How many take the bus?"
REFERENCE = "50 - 15 = 35 students take the bus.\n#### 35"


def attempts() -> list[dict]:
    replies = [
        "Out of 50 students, 15 walk, so 35 take the bus.",  # free-form: the question's 50 and 15 set aside
        "Out of 50 students, 15 walk, so 30 take the bus.",
        "50 - 15 = 35.\nFinal answer: 35",
    ]
    return [Attempt(problem_id="bus", sample_index=i, question=QUESTION, response=reply, reference=REFERENCE).to_row()
            for i, reply in enumerate(replies)]


def labels(path) -> list[tuple[bool, str, str | None]]:
    return [(a.label, a.method, a.final_answer) for a in read_attempts(path)]


@pytest.mark.parametrize("grading", ["exact", GradingPolicy(mode="exact")], ids=["mode", "policy"])
def test_labels_use_the_question_so_free_form_replies_are_decided(tmp_path, grading):
    path = asyncio.run(label_attempts(attempts(), grading=grading, out=tmp_path, progress=False))
    # Without the question, the first two would be guesses among three numbers, and exact grading would
    # label both incorrect; with it, 35 and 30 are each the one candidate left.
    assert labels(path) == [(True, "exact", "35 take"), (False, "exact", "30 take"), (True, "exact", "35")]


def test_the_old_grader_keyword_warns_and_labels_the_same(tmp_path):
    policy = GradingPolicy(mode="exact")
    with pytest.warns(DeprecationWarning, match=r"label_attempts\(grader=\.\.\.\) is now grading="):
        path = asyncio.run(label_attempts(attempts(), grader=policy, out=tmp_path, progress=False))
    assert [label for label, _, _ in labels(path)] == [True, False, True]
    assert policy.stats.exact == 3


def test_no_grading_or_one_that_needs_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="label_attempts needs grading="):
        asyncio.run(label_attempts(attempts(), out=tmp_path, progress=False))
    with pytest.raises(ConfigError, match="mode 'hybrid' needs a grader model"):
        asyncio.run(label_attempts(attempts(), grading="hybrid", out=tmp_path, progress=False))
    with pytest.raises(TypeError, match="grading must be a GradingPolicy or a mode name"):
        asyncio.run(label_attempts(attempts(), grading=object(), out=tmp_path, progress=False))


def test_the_learning_loop_takes_grading_and_warns_on_the_old_keyword(tmp_path):
    from orca_math.learn import IterativeLearner

    data = [{"question": QUESTION, "answer": REFERENCE}]
    assert IterativeLearner("base", data, out=tmp_path).grading.mode == "exact"  # the default
    policy = GradingPolicy(mode="exact", min_confidence="marker")
    assert IterativeLearner("base", data, out=tmp_path, grading=policy).grading is policy
    with pytest.warns(DeprecationWarning, match=r"IterativeLearner\(grader=\.\.\.\) is now grading="):
        learner = IterativeLearner("base", data, out=tmp_path, grader=policy)
    with pytest.warns(DeprecationWarning, match=r"IterativeLearner\.grader is now \.grading"):
        assert learner.grader is policy
