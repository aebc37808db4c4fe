"""The iterative learner: SFT -> sample -> label -> preferences -> KTO/DPO, evaluation, resume."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from orca_math.grading import AnswerGrader
from orca_math.learn import IterativeLearner, get_preset
from orca_math.testing.scripted import ScriptedChatClient
from tests._learn_helpers import save_tiny_mistral

PROBLEMS = [
    {"id": f"q{i}", "question": f"Tom has {i} marbles and finds {i + 3} more. How many marbles does he have?",
     "answer": f"{i} + {i + 3} = {2 * i + 3}\n#### {2 * i + 3}"}
    for i in range(1, 9)
]


def _sum_responder():
    """Per question, alternates right and wrong (off by one) answers, starting right when its first number is even.

    So the k=2 samples of a problem are one right and one wrong, whatever the call order.
    """
    asked: dict[str, int] = {}

    def respond(messages):
        question = str(messages[-1].content)
        asked[question] = asked.get(question, 0) + 1
        a, b = map(int, re.findall(r"\d+", question)[:2])
        total = a + b + (asked[question] - 1 + a) % 2
        return f"{a} + {b} = {total}\nFinal answer: {total}"

    return respond


class ScriptedSamplers:
    """A sampler factory: one scripted client per checkpoint, remembering what it was asked for."""

    def __init__(self) -> None:
        self.checkpoints: list[Path] = []
        self.clients: list[ScriptedChatClient] = []

    def __call__(self, checkpoint: Path) -> ScriptedChatClient:
        self.checkpoints.append(Path(checkpoint))
        self.clients.append(ScriptedChatClient(responder=_sum_responder()))
        return self.clients[-1]

    @property
    def calls(self) -> int:
        return sum(len(c.calls) for c in self.clients)


class CopyTrainer:
    """A `Trainer` that copies the model folder (fast), recording its datasets; can fail once."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[dict] = []
        self.fail_times = fail_times

    def train(self, dataset, output_dir, preset, *, model, ref_model=None):
        self.calls.append({"columns": dataset.column_names, "rows": len(dataset), "model": Path(model),
                           "preset": preset})
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("stopped on purpose")
        shutil.copytree(model, output_dir)
        return Path(output_dir)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_mistral(tmp_path_factory.mktemp("tiny") / "base")


def _weights(folder: Path):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_two_iterations_train_m1_and_m2_and_write_the_table(tiny_model, tmp_path):
    samplers = ScriptedSamplers()
    learner = IterativeLearner(
        tiny_model, PROBLEMS, out=tmp_path / "loop", preset=get_preset("tiny", max_steps=2), iterations=2,
        samples_per_problem=2, grader=AnswerGrader(mode="exact"), sampler_model_factory=samplers, eval=0.25,
        progress=False,
    )
    results = learner.run_sync()
    assert [(r.iteration, r.method) for r in results] == [(1, "sft"), (2, "kto")]
    m1, m2 = results[0].model, results[1].model
    assert m1 == tmp_path / "loop" / "iteration-1" / "model" and m2 == tmp_path / "loop" / "iteration-2" / "model"
    base, w1, w2 = _weights(tiny_model), _weights(m1), _weights(m2)
    assert any(not base[k].equal(w1[k]) for k in base)
    assert any(not w1[k].equal(w2[k]) for k in w1)
    # Iteration 2 sampled M1 on the 6 training problems (2 each); each iteration's eval asked the 2 held-out ones.
    assert samplers.checkpoints == [m1, m1, m2]
    assert [len(c.calls) for c in samplers.clients] == [2, 12, 2]
    holdout = [json.loads(line)["id"] for line in (tmp_path / "loop" / "data" / "holdout.jsonl").read_text().splitlines()]
    asked = {c["messages"][0].content for c in samplers.clients[1].calls}
    assert not asked & {p["question"] for p in PROBLEMS if p["id"] in holdout}
    prefs = results[1].details["preferences"]
    assert prefs["kto_desirable"] == 6 + 6 and prefs["kto_undesirable"] == 6  # teacher + 1 correct; 1 wrong each
    assert results[1].details["labels"]["by_method"] == {"exact": 12}
    # A held-out question is answered right when its first number is even.
    expected = sum(1 for p in PROBLEMS if p["id"] in holdout and int(p["id"][1:]) % 2 == 0) / 2
    assert all(r.benchmarks == {"holdout": expected} for r in results)
    table = (tmp_path / "loop" / "iterations.md").read_text()
    assert "| 1 | sft |" in table and "| 2 | kto |" in table and f"{100 * expected:.1f}%" in table
    summary = json.loads((tmp_path / "loop" / "summary.json").read_text())
    assert summary["iterations"][1] == {"iteration": 2, "model": str(m2), "benchmarks": {"holdout": expected}, "method": "kto"}
    assert len(json.loads((tmp_path / "loop" / "iterations.json").read_text())) == 2


def test_resumes_after_a_step_fails_without_redoing_finished_steps(tiny_model, tmp_path):
    sft, kto = CopyTrainer(), CopyTrainer(fail_times=1)
    samplers = ScriptedSamplers()
    options = dict(out=tmp_path / "loop", iterations=2, samples_per_problem=2, sampler_model_factory=samplers,
                   eval=None, trainers={"sft": sft, "kto": kto}, progress=False)
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        IterativeLearner(tiny_model, PROBLEMS, **options).run_sync()
    assert len(sft.calls) == 1 and len(kto.calls) == 1 and samplers.calls == 16
    results = IterativeLearner(tiny_model, PROBLEMS, **options).run_sync()
    assert len(sft.calls) == 1  # M1 was not trained again
    assert samplers.calls == 16  # nor were the samples asked again
    assert len(kto.calls) == 2 and kto.calls[1]["model"] == results[0].model
    assert kto.calls[1]["columns"] == ["prompt", "completion", "label", "problem_id"]
    # Balanced KTO weights: 16 desirable vs 8 undesirable rows is outside TRL's range.
    assert kto.calls[1]["preset"].kto_undesirable_weight > 1.0
    # A third iteration continues from the same folder, sampling M2.
    IterativeLearner(tiny_model, PROBLEMS, **{**options, "iterations": 3}).run_sync()
    assert len(sft.calls) == 1 and len(kto.calls) == 3 and samplers.checkpoints[-1] == results[1].model


def test_dpo_gets_pairs_and_a_custom_eval_function(tiny_model, tmp_path):
    dpo = CopyTrainer()
    seen = []

    async def score(checkpoint, iteration):
        seen.append((Path(checkpoint).parent.name, iteration))
        return {"mine": iteration / 10}

    results = IterativeLearner(
        tiny_model, PROBLEMS, out=tmp_path, iterations=2, samples_per_problem=2, preference_method="dpo",
        sampler_model_factory=ScriptedSamplers(), eval=score, trainers={"sft": CopyTrainer(), "dpo": dpo},
        progress=False,
    ).run_sync()
    assert dpo.calls[0]["columns"] == ["prompt", "chosen", "rejected", "problem_id"]
    assert dpo.calls[0]["rows"] == 8 * 2  # (teacher + 1 correct) x 1 wrong per problem
    assert seen == [("iteration-1", 1), ("iteration-2", 2)]
    assert [r.benchmarks for r in results] == [{"mine": 0.1}, {"mine": 0.2}]


def test_changed_settings_in_the_same_folder_are_refused(tiny_model, tmp_path):
    options = dict(out=tmp_path, iterations=1, eval=None, trainers={"sft": CopyTrainer()}, progress=False)
    IterativeLearner(tiny_model, PROBLEMS, **options).run_sync()
    with pytest.raises(ValueError, match="other settings .*preference_method"):
        IterativeLearner(tiny_model, PROBLEMS, preference_method="dpo", **options).run_sync()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"preference_method": "ipo"}, ValueError, "use 'kto' or 'dpo'"),
        ({"iterations": 0}, ValueError, "iterations must be a positive integer"),
        ({"eval": 1.5}, ValueError, "between 0 and 1"),
        ({"trainers": {"ppo": CopyTrainer()}}, ValueError, "Unknown trainer kind 'ppo'"),
        ({"trainers": {"sft": object()}}, TypeError, "has no train"),
        ({"preset": "huge"}, ValueError, "Unknown preset 'huge'"),
        ({"top_p": 0}, ValueError, "top_p must be a number in"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        IterativeLearner("base", PROBLEMS, out=tmp_path, **kwargs)


def test_benchmark_evaluation_through_orca_math_evaluate(tiny_model, tmp_path):
    import os

    from orca_math.data.benchmarks import load_benchmark

    first = next(iter(load_benchmark("gsm8k", path=os.environ["ORCA_MATH_BENCHMARKS_DIR"], limit=1)))
    asked = []

    def gold_for_first(checkpoint):
        # Answers the first benchmark question right (its gold answer) and the others wrong.
        def respond(messages):
            asked.append(checkpoint)
            prompt = "\n".join(str(m.content) for m in messages)
            return f"Final answer: {first['gold'] if first['question'] in prompt else -1}"

        return ScriptedChatClient(responder=respond)

    results = IterativeLearner(
        tiny_model, PROBLEMS, out=tmp_path, iterations=1, sampler_model_factory=gold_for_first,
        eval=("gsm8k", 3), trainers={"sft": CopyTrainer()}, progress=False,
        benchmarks_dir=os.environ["ORCA_MATH_BENCHMARKS_DIR"],
    ).run_sync()
    assert results[0].benchmarks == {"gsm8k": pytest.approx(1 / 3)}
    assert len(asked) == 3 and (tmp_path / "iteration-1" / "eval" / "summary.json").exists()
