"""The `orca-math` command as users call it: help, bad input, dry runs, budgets, decontamination."""

from __future__ import annotations

import json

import pytest

from orca_math.cli import build_parser, main
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder


def test_help_documents_every_option(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert {"solve", "generate", "eval", "decontaminate", "report", "push", "sample", "preferences", "train", "learn"} <= set(commands)
    for name, sub in commands.items():
        for action in sub._actions:  # noqa: SLF001
            if action.option_strings and action.help != "==SUPPRESS==":
                assert action.help, f"{name} {action.option_strings} has no help"
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    assert "--seeds" in capsys.readouterr().out


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_malformed_seed_line_names_file_and_line(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"question": "What is 1 + 1?", "answer": "2"}\n{"question": "broken"\n')
    code, _, err = _run(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--no-progress"], capsys)
    assert code == 2
    assert "seeds.jsonl" in err and "line 2" in err and "Traceback" not in err


def test_missing_question_column_lists_found_columns(tmp_path, capsys):
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("text,label\nhello,1\n")
    code, _, err = _run(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--no-progress"], capsys)
    assert code == 2 and "text" in err and "label" in err


def test_empty_seed_file_says_so(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("")
    code, _, err = _run(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--no-progress"], capsys)
    assert code == 2 and "empty" in err


def test_unknown_model_spec_is_one_sentence(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"question": "What is 1 + 1?"}\n')
    code, _, err = _run(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--model", "gpt4"], capsys)
    assert code == 2 and "Unknown model spec" in err and len(err.strip().splitlines()) == 1


def test_solve_writes_jsonl_and_parquet(tmp_path, capsys, monkeypatch):
    import datasets

    client = ScriptedChatClient(responder=pipeline_responder)
    monkeypatch.setattr("orca_math.cli.generate.model_from_args", lambda args: client)
    for out in (tmp_path / "s.jsonl", tmp_path / "s.parquet"):
        code, stdout, _ = _run(["solve", "--seeds", "examples/seeds.jsonl", "--out", str(out), "--limit", "3", "--no-progress"], capsys)
        assert code == 0 and f"output: {out}" in stdout
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and list(rows[0])[:2] == ["question", "answer"]
    assert datasets.Dataset.from_parquet(str(tmp_path / "s.parquet")).num_rows == 3


def test_generate_dry_run_estimates_without_calling(tmp_path, capsys, monkeypatch):
    client = ScriptedChatClient()  # no replies queued: any call would fail
    monkeypatch.setattr("orca_math.cli.generate.model_from_args", lambda args: client)
    code, stdout, _ = _run(
        ["generate", "--seeds", "examples/seeds.jsonl", "--out", str(tmp_path / "o"), "--limit", "4", "--dry-run",
         "--price", "scripted=1,2", "--no-decontaminate"],
        capsys,
    )
    assert code == 0 and client.calls == []
    estimate = json.loads(stdout.strip().splitlines()[-1])
    stages = {s["name"]: s for s in estimate["stages"]}
    assert stages["expand"]["calls"] == 4
    assert stages["harden"]["calls"] == 4 * 2 * 2  # 4 seeds, 2 rounds, Suggester + Editor
    assert stages["solve"]["calls"] == stages["solve"]["inputs"]
    assert estimate["cost_usd"] > 0
    assert not (tmp_path / "o").exists()


def test_dry_run_tokens_are_close_to_a_real_run(tmp_path):
    from orca_math.pipeline import Pipeline, Solve

    pipeline = Pipeline([Solve()], model=ScriptedChatClient(responder=pipeline_responder), progress=False, cache=False)
    reply_tokens = 16  # the scripted teacher's reply length
    estimate = pipeline.estimate("examples/seeds.jsonl", completion_tokens={"teacher": reply_tokens})
    result = pipeline.run_sync("examples/seeds.jsonl", out=tmp_path / "o")
    actual_prompt = result.funnel.stages[0].prompt_tokens
    # The scripted client counts words, tiktoken counts tokens: close, not equal.
    assert abs(estimate.prompt_tokens - actual_prompt) / actual_prompt < 0.35
    assert estimate.calls == result.funnel.stages[0].calls


def test_budget_stops_cleanly_and_a_larger_budget_resumes(tmp_path, capsys, monkeypatch):
    client = ScriptedChatClient(responder=pipeline_responder)
    monkeypatch.setattr("orca_math.cli.generate.model_from_args", lambda args: client)
    argv = ["solve", "--seeds", "examples/seeds.jsonl", "--out", str(tmp_path / "s.jsonl"), "--no-progress", "--concurrency", "1",
            "--price", "scripted=1000,1000"]
    code, _, err = _run([*argv, "--budget-usd", "2.5"], capsys)
    assert code == 2 and "budget" in err.lower()
    done = sum(1 for line in (tmp_path / "s.jsonl.run").glob("runs/*/stages/solve.jsonl") for _ in line.read_text().splitlines())
    assert 0 < done < 32
    code, stdout, _ = _run([*argv, "--budget-usd", "1000"], capsys)
    assert code == 0 and "solved 32 of 32" in stdout


def test_decontaminate_command(tmp_path, capsys):
    import datasets

    gsm8k_question = (  # from the GSM8K test set, with a different opening
        "Every day Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
        "for her friends every day with four. She sells the remainder at the farmers' market daily."
    )
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "a", "question": gsm8k_question}) + "\n" + json.dumps({"id": "b", "question": "What is 2 + 2?"}) + "\n")
    code, stdout, _ = _run(["decontaminate", str(data), "--benchmarks", "gsm8k", "--out", str(tmp_path / "clean")], capsys)
    assert code == 0
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["contaminated"] == 1 and report["per_benchmark"]["gsm8k"] == 1
    assert datasets.load_from_disk(str(tmp_path / "clean"))["id"] == ["b"]


def test_a_seed_file_in_another_encoding_is_one_sentence_naming_file_and_line(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes('{"question": "What is 1 + 1?"}\n{"question": "Zoé has 2 cats?"}\n'.encode("latin-1"))
    code, _, err = _run(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--no-progress"], capsys)
    assert code == 2 and err.startswith("error: seeds.jsonl, line 2: not UTF-8 text (byte 0xe9") and len(err.splitlines()) == 1
