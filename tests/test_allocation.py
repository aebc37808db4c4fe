"""prop2diff: the learning loop's samples per problem in proportion to difficulty (uniform is k each)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from orca_math._sync import run_sync
from orca_math.errors import ConfigError
from orca_math.learn.allocation import allocate_samples
from orca_math.learn.sampling import sample_responses
from orca_math.testing.scripted import ScriptedChatClient

#: A student that solves the even-numbered problems: pass rate 1.0 on those, 0.0 on the rest.
PROBLEMS = [{"id": f"q{i}", "question": f"Tom has {i} marbles and finds {i + 3} more. How many marbles does he have?",
             "answer": f"#### {2 * i + 3}", "pass_rate": 1.0 if i % 2 == 0 else 0.0} for i in range(1, 9)]


def test_prop2diff_gives_the_budget_to_the_failed_problems_in_proportion():
    allocation = allocate_samples(PROBLEMS, k=4, policy="prop2diff")
    assert allocation == {p["id"]: (0 if p["pass_rate"] == 1.0 else 8) for p in PROBLEMS}
    assert sum(allocation.values()) == 4 * len(PROBLEMS)  # the uniform budget, spent differently
    mixed = [{"id": "a", "pass_rate": 0.5}, {"id": "b", "pass_rate": 0.0}, {"id": "c", "pass_rate": 0.75}]
    # fail rates 0.5 : 1.0 : 0.25 of a budget of 7 x 3 = 21 -> 6 : 12 : 3
    assert allocate_samples(mixed, k=7, policy="prop2diff") == {"a": 6, "b": 12, "c": 3}


def test_uniform_is_k_each_and_everything_solved_falls_back_to_it():
    assert allocate_samples(PROBLEMS, k=3) == {p["id"]: 3 for p in PROBLEMS}
    solved = [{"id": "a", "pass_rate": 1.0}, {"id": "b", "pass_rate": 1.0}]
    assert allocate_samples(solved, k=4, policy="prop2diff") == {"a": 4, "b": 4}


def test_one_hard_problem_gets_at_most_four_times_k():
    problems = [{"id": "hard", "pass_rate": 0.0}, *({"id": f"e{i}", "pass_rate": 1.0} for i in range(9))]
    assert allocate_samples(problems, k=2, policy="prop2diff")["hard"] == 8


def test_prop2diff_without_pass_rates_is_one_sentence():
    with pytest.raises(ConfigError, match="prop2diff needs each problem's pass_rate.*generate --student"):
        allocate_samples([{"id": "a"}], k=4, policy="prop2diff")
    with pytest.raises(ConfigError, match="unknown sampling policy 'hardest'"):
        allocate_samples(PROBLEMS, k=4, policy="hardest")


def test_sample_responses_asks_each_problem_its_allotted_number_of_times(tmp_path):
    client = ScriptedChatClient(responder=lambda messages: "Final answer: 1")
    allocation = allocate_samples(PROBLEMS, k=2, policy="prop2diff")
    path = run_sync(sample_responses(client, PROBLEMS, k=2, out=tmp_path / "samples", samples=allocation, progress=False))
    per_problem = Counter(json.loads(line)["problem_id"] for line in path.read_text().splitlines())
    assert per_problem == {p["id"]: 4 for p in PROBLEMS if p["pass_rate"] == 0.0}
    assert len(client.calls) == 16


def test_the_loop_with_prop2diff_samples_only_the_problems_the_student_failed(tmp_path):
    from orca_math.grading import GradingPolicy
    from orca_math.learn import IterativeLearner, get_preset
    from tests._learn_helpers import save_tiny_mistral
    from tests.test_learner import CopyTrainer, ScriptedSamplers

    base = save_tiny_mistral(tmp_path / "base")
    samplers = ScriptedSamplers()
    problems = [{**p, "answer": f"{p['answer']}\nFinal answer: {p['answer'][5:]}"} for p in PROBLEMS]
    learner = IterativeLearner(
        base, problems, out=tmp_path / "loop", preset=get_preset("tiny", max_steps=1), iterations=2, samples_per_problem=2,
        grading=GradingPolicy(mode="exact"), sampler_model_factory=samplers, eval=None, progress=False,
        trainers={"sft": CopyTrainer(), "kto": CopyTrainer()}, sampling_policy="prop2diff")
    learner.run_sync()
    asked = Counter(call["messages"][0].content for call in samplers.clients[0].calls)
    assert asked == {p["question"]: 4 for p in PROBLEMS if p["pass_rate"] == 0.0}  # 2 x 8 samples, all on the failed half
    settings = json.loads((tmp_path / "loop" / "learner.json").read_text())
    assert settings["sampling_policy"] == "prop2diff"
    with pytest.raises(ConfigError, match="other settings"):  # the policy is part of the loop's settings
        IterativeLearner(base, problems, out=tmp_path / "loop", preset=get_preset("tiny", max_steps=1), iterations=2,
                         samples_per_problem=2, grading=GradingPolicy(mode="exact"), sampler_model_factory=samplers,
                         eval=None, progress=False, trainers={"sft": CopyTrainer(), "kto": CopyTrainer()}).run_sync()


def test_a_generated_datasets_pass_rate_column_reaches_the_loops_problems(tmp_path):
    import datasets

    from orca_math.learn.loop_data import problems_of

    folder = tmp_path / "dataset"
    datasets.Dataset.from_list(PROBLEMS).save_to_disk(str(folder))
    rows = problems_of(str(folder))
    assert [row["pass_rate"] for row in rows] == [p["pass_rate"] for p in PROBLEMS]
    assert allocate_samples(rows, k=2, policy="prop2diff")["q1"] == 4


def test_prop2diff_on_data_without_pass_rates_is_refused_before_the_first_training(tmp_path):
    from orca_math.grading import GradingPolicy
    from orca_math.learn import IterativeLearner, get_preset
    from tests._learn_helpers import save_tiny_mistral
    from tests.test_learner import CopyTrainer, ScriptedSamplers

    base = save_tiny_mistral(tmp_path / "base")
    problems = [{key: value for key, value in p.items() if key != "pass_rate"} for p in PROBLEMS]
    sft = CopyTrainer()
    learner = IterativeLearner(
        base, problems, out=tmp_path / "loop", preset=get_preset("tiny", max_steps=1), iterations=2, samples_per_problem=2,
        grading=GradingPolicy(mode="exact"), sampler_model_factory=ScriptedSamplers(), eval=None, progress=False,
        trainers={"sft": sft, "kto": CopyTrainer()}, sampling_policy="prop2diff")
    with pytest.raises(ConfigError, match="prop2diff needs each problem's pass_rate"):
        learner.run_sync()
    assert sft.calls == []  # not after an SFT epoch that may take hours
