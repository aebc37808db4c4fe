"""`orca-math sample`, `preferences`, `train` and `learn` through `orca_math.cli.main`."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from orca_math.cli import main
from orca_math.records import Attempt
from tests._learn_helpers import save_tiny_mistral


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_mistral(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture
def problems_file(tmp_path) -> Path:
    rows = [{"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}
            for i in range(1, 9)]
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _attempts_file(tmp_path: Path, *, labelled: bool = False) -> Path:
    responses = {("a", 0): "2 + 2 = 4. Final answer: 4", ("a", 1): "Final answer: 5",
                 ("b", 0): "Final answer: 9", ("b", 1): "3 x 3 = 9, so 9"}
    rows = []
    for (pid, index), response in responses.items():
        reference = "2 + 2 = 4\n#### 4" if pid == "a" else "3 x 3 = 9\nFinal answer: 9"
        label = ("5" not in response) if labelled else None
        rows.append(Attempt(problem_id=pid, sample_index=index, question=f"Question {pid}?", response=response,
                            reference=reference, label=label, method="exact" if labelled else None).to_row())
    path = tmp_path / "attempts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_train_sft_on_question_answer_rows(tiny_model, problems_file, tmp_path, capsys):
    out = tmp_path / "m1"
    code = main(["train", "sft", "--data", str(problems_file), "--model", str(tiny_model), "--out", str(out),
                 "--preset", "tiny", "--set", "max_steps=1", "--set", "use_lora=false"])
    assert code == 0
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert "SFT on 8 rows with preset tiny" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("max_step=3", "Unknown preset field 'max_step' (did you mean 'max_steps'?)"),
        ("max_steps=many", "--set max_steps=many: max_steps takes int"),
        ("bf16=maybe", "bf16 takes bool"),
        ("max_steps", "write FIELD=VALUE"),
    ],
)
def test_bad_preset_override_is_one_sentence(tiny_model, problems_file, tmp_path, capsys, override, message):
    code = main(["train", "sft", "--data", str(problems_file), "--model", str(tiny_model), "--out", str(tmp_path / "m"),
                 "--preset", "tiny", "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_train_help_lists_every_preset_field_as_a_flag_with_its_metadata_help(capsys, monkeypatch):
    import dataclasses

    from orca_math.learn.presets import TrainingPreset

    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: each help text stays on one line
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    fields = [f for f in dataclasses.fields(TrainingPreset) if f.name != "name"]  # --preset sets the name
    for field in fields:
        assert f"--{field.name}" in out, field.name
        assert f"  {field.metadata['help']} [mistral-7b " in out, field.name
    assert "--max-steps N" in out and "--use-lora [BOOL]" in out and "--model_dtype {bfloat16,float32,float16,auto}" in out
    assert "Stop after this many updates (-1: run the epochs). [mistral-7b -1, tiny 4; source: trl-default]" in out
    assert "--preset {tiny,mistral-7b}" in out and "--set FIELD=VALUE" in out  # the documented flags stay


def test_preset_flags_and_set_overrides_build_the_preset():
    from orca_math.cli import build_parser
    from orca_math.cli.train import preset_flag_values, preset_from_args

    argv = ["train", "kto", "--data", "d", "--model", "m", "--out", "o", "--preset", "tiny", "--max-steps", "2",
            "--use_lora", "--lora_target_modules", "q_proj", "v_proj", "--trl_args", '{"save_steps": 5}',
            "--set", "kto_beta=0.25", "--set", "bf16=false"]
    args = build_parser().parse_args(argv)
    flags = preset_flag_values(args)
    assert flags == {"max_steps": 2, "use_lora": True, "lora_target_modules": ["q_proj", "v_proj"],
                     "trl_args": {"save_steps": 5}}  # flags left out are not there, so --preset's values stay
    preset = preset_from_args(args.preset, args.overrides, flags)
    assert (preset.name, preset.max_steps, preset.use_lora, preset.kto_beta, preset.bf16) == ("tiny", 2, True, 0.25, False)
    assert preset.lora_target_modules == ("q_proj", "v_proj") and preset.trl_args == {"save_steps": 5}
    assert preset.per_device_train_batch_size == 2  # tiny's, not the field default of 4
    assert preset_from_args("tiny", ["lora_target_modules=q_proj, k_proj"]).lora_target_modules == ("q_proj", "k_proj")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-steps", "-5"], "TrainingPreset option max_steps=-5: max_steps must be >= -1."),
        (["--lora_r", "0"], "TrainingPreset option lora_r=0: lora_r must be >= 1."),
        (["--set", "lora_dropout=1.5"], "TrainingPreset option lora_dropout=1.5: lora_dropout must be < 1."),
        (["--max-steps", "many"], "--max_steps: invalid int value: 'many'"),
        (["--model-dtype", "int8"], "--model_dtype: invalid choice: 'int8'"),
        (["--max-steps", "2", "--set", "max_steps=3"], "max_steps is given twice"),
    ],
)
def test_bad_preset_flag_is_one_sentence_naming_the_field(tiny_model, problems_file, tmp_path, capsys, extra, message):
    code = main(["train", "sft", "--data", str(problems_file), "--model", str(tiny_model), "--out", str(tmp_path / "m"),
                 "--preset", "tiny", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_train_sft_with_preset_flags(tiny_model, problems_file, tmp_path, monkeypatch):
    from orca_math.learn.trainers import TRLAdapter

    runs = []
    train = TRLAdapter.train

    def recording_train(self, dataset, output_dir, preset, **kwargs):
        checkpoint = train(self, dataset, output_dir, preset, **kwargs)
        runs.append((preset, [entry["loss"] for entry in self.log_history if "loss" in entry]))
        return checkpoint

    monkeypatch.setattr(TRLAdapter, "train", recording_train)
    out = tmp_path / "m1"
    code = main(["train", "sft", "--data", str(problems_file), "--model", str(tiny_model), "--out", str(out),
                 "--preset", "tiny", "--max-steps", "1", "--use-lora", "false", "--sft-learning-rate", "0.01"])
    assert code == 0 and (out / "model.safetensors").exists()
    [(preset, losses)] = runs
    assert (preset.max_steps, preset.use_lora, preset.sft_learning_rate) == (1, False, 0.01)
    assert len(losses) == 1  # one update (tiny alone would run 4), logged every step


def test_train_dpo_refuses_question_answer_rows(tiny_model, problems_file, tmp_path, capsys):
    code = main(["train", "dpo", "--data", str(problems_file), "--model", str(tiny_model), "--out", str(tmp_path / "m")])
    assert code == 2 and "not a saved DPO dataset" in capsys.readouterr().err


def test_preferences_labels_then_builds_and_kto_trains_on_them(tiny_model, tmp_path, capsys):
    out = tmp_path / "prefs"
    assert main(["preferences", "--attempts", str(_attempts_file(tmp_path)), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "labelled 4 attempts by {'exact': 4}: 3 correct, 1 incorrect" in printed
    stats = json.loads((out / "stats.json").read_text())
    # a: teacher + 1 correct vs 1 wrong -> 2 pairs; b: all correct, borrows a's wrong one -> 3 x 1 pairs.
    assert stats["dpo_pairs"] == 5 and stats["borrowed_negatives"] == 1
    assert "dpo_pairs" in printed
    kto = datasets.load_from_disk(str(out / "kto"))
    assert kto.column_names == ["prompt", "completion", "label", "problem_id"] and len(kto) == 7
    assert len(datasets.load_from_disk(str(out / "dpo"))) == 5

    code = main(["train", "kto", "--data", str(out), "--model", str(tiny_model), "--out", str(tmp_path / "m2"),
                 "--preset", "tiny", "--set", "max_steps=1"])
    assert code == 0 and (tmp_path / "m2" / "model.safetensors").exists()


def test_preferences_uses_existing_labels_and_options(tmp_path, capsys):
    out = tmp_path / "prefs"
    code = main(["preferences", "--attempts", str(_attempts_file(tmp_path, labelled=True)), "--out", str(out),
                 "--positives", "teacher", "--borrow", "0"])
    assert code == 0
    assert not (out / "labels").exists()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dpo_pairs"] == 1 and stats["borrowed_negatives"] == 0  # teacher x a's wrong one


def test_preferences_needs_a_grader_model_for_llm_grading(tmp_path, capsys):
    code = main(["preferences", "--attempts", str(_attempts_file(tmp_path)), "--out", str(tmp_path / "p"), "--grading", "llm"])
    assert code == 2 and "--grading llm needs --grader-model" in capsys.readouterr().err


def test_the_old_grader_flag_still_works_with_a_note(tmp_path, capsys):
    code = main(["preferences", "--attempts", str(_attempts_file(tmp_path)), "--out", str(tmp_path / "p"), "--grader", "llm"])
    err = capsys.readouterr().err
    assert code == 2 and "--grader is now --grading" in err and "--grading llm needs --grader-model" in err
    code = main(["preferences", "--attempts", str(_attempts_file(tmp_path)), "--out", str(tmp_path / "q"),
                 "--grader", "llm", "--grading", "exact"])
    assert code == 2 and "disagree" in capsys.readouterr().err


def test_sample_from_an_hf_checkpoint(tiny_model, problems_file, tmp_path, capsys):
    out = tmp_path / "samples"
    code = main(["sample", "--model", f"hf:{tiny_model}", "--data", str(problems_file), "--out", str(out), "--k", "2",
                 "--limit", "2", "--max-tokens", "3", "--no-progress"])
    assert code == 0
    rows = [Attempt.model_validate_json(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
    assert [(r.problem_id, r.sample_index) for r in rows] == [("q1", 0), ("q1", 1), ("q2", 0), ("q2", 1)]
    assert rows[0].reference.endswith("#### 2")
    assert "4 of 4 samples" in capsys.readouterr().out


def test_learn_runs_two_iterations_on_the_tiny_model(tiny_model, problems_file, tmp_path, capsys):
    out = tmp_path / "loop"
    argv = ["learn", "--model", str(tiny_model), "--data", str(problems_file), "--out", str(out), "--iterations", "2",
            "--preset", "tiny", "--set", "max_steps=1", "--k", "2", "--max-tokens", "3", "--holdout", "0.25",
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 1 | sft |" in printed and "| 2 | kto |" in printed and "holdout" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [it["iteration"] for it in summary["iterations"]] == [1, 2]
    assert (out / "iteration-2" / "model" / "model.safetensors").exists()
    assert main(argv) == 0  # a finished loop reruns instantly, from its markers


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "--model", "hf:x", "--data", "{missing}", "--out", "{out}"], "does not exist"),
        (["sample", "--model", "hf:x", "--data", "{problems}", "--out", "{out}", "--k", "0"], "k must be a positive integer"),
        (["learn", "--model", "m", "--data", "{problems}", "--out", "{out}", "--eval-limit", "5"],
         "--eval-limit needs --eval-benchmarks"),
        (["learn", "--model", "m", "--data", "{problems}", "--out", "{out}", "--method", "kto", "--holdout", "2"],
         "between 0 and 1"),
    ],
)
def test_sample_and_learn_bad_input_is_one_sentence(problems_file, tmp_path, capsys, argv, message):
    filled = [a.format(missing=tmp_path / "missing.jsonl", out=tmp_path / "o", problems=problems_file) for a in argv]
    code = main(filled)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
