"""The docs and the CLI agree, and CLI errors name flags, not Python keyword arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orca_math.cli import build_parser, main
from orca_math.data.seeds import SeedError, read_seeds
from orca_math.models import load_model
from orca_math.models.errors import MissingAPIKeyError

REPO = Path(__file__).resolve().parents[1]


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def _subcommands():
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices  # noqa: SLF001


def test_readme_command_line_shows_required_options_as_required():
    block = _section((REPO / "README.md").read_text(encoding="utf-8"), "Command line")
    commands = _subcommands()
    checked = 0
    for line in block.splitlines():
        match = re.match(r"orca-math (\w+)\s+(--.*)$", line)
        if not match:
            continue
        name, usage = match.groups()
        outside_brackets = re.sub(r"\[[^\]]*\]", "", usage)
        for action in commands[name]._actions:  # noqa: SLF001
            if action.required and action.option_strings:
                assert action.option_strings[0] in outside_brackets, f"README shows {name} {action.option_strings[0]} as optional"
        for optional in re.findall(r"\[(--[\w-]+)", usage):
            assert any(optional in a.option_strings and not a.required for a in commands[name]._actions), (name, optional)  # noqa: SLF001
        checked += 1
    assert checked >= 3  # solve, generate, eval


def test_quickstart_describes_the_demo_the_makefile_runs():
    import yaml

    demo = next(line for line in (REPO / "Makefile").read_text().splitlines() if "orca-math run" in line)
    recipe_path = re.search(r"orca-math run (\S+\.yaml)", demo).group(1)
    recipe = yaml.safe_load((REPO / recipe_path).read_text(encoding="utf-8"))
    limit, rounds = recipe["seeds"]["limit"], recipe["stages"]["rounds"]
    quickstart = (REPO / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert f"first {limit} seed problems" in quickstart and f"`orca-math run {recipe_path}`" in quickstart
    assert f"seeds.limit: {limit}" in quickstart and f"stages.rounds: {rounds}" in quickstart
    assert "8 seed problems" not in quickstart


def test_readme_notebook_pipeline_runs_what_the_cli_runs():
    from orca_math.pipeline import default_stages

    notebook = _section((REPO / "README.md").read_text(encoding="utf-8"), "In a notebook")
    assert "default_stages(" in notebook
    for stage in default_stages():
        assert stage.name in notebook, f"the notebook section does not mention the {stage.name} stage"


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_missing_question_column_names_the_flag_on_the_cli_and_the_argument_in_python(tmp_path, capsys):
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("text,label\nhello,1\n")
    code, _, err = _run(["solve", "--seeds", seeds, "--out", tmp_path / "o.jsonl"], capsys)
    assert code == 2 and "--question-column" in err and "question_column=" not in err
    with pytest.raises(SeedError, match=r"pass question_column="):
        list(read_seeds(seeds))


def test_a_seed_without_an_answer_names_the_flags(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"question": "What is 2 + 2?"}\n')
    code, _, err = _run(["generate", "--seeds", seeds, "--out", tmp_path / "g", "--no-decontaminate",
                         "--model", "http://127.0.0.1:9/v1", "--model-name", "m"], capsys)
    assert code == 2 and "--no-expand" in err and "require_answers" not in err


def test_a_missing_api_key_names_the_variable_not_a_keyword(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    code, _, err = _run(["solve", "--seeds", REPO / "examples" / "seeds.jsonl", "--out", tmp_path / "o.jsonl",
                         "--model", "openai:gpt-4o"], capsys)
    assert code == 2 and "set OPENAI_API_KEY" in err and "--base-url" in err and "api_key=" not in err
    with pytest.raises(MissingAPIKeyError, match=r"pass api_key="):
        load_model("openai:gpt-4o")


def test_dry_run_needs_no_api_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    code, out, err = _run(["generate", "--seeds", REPO / "examples" / "seeds.jsonl", "--out", tmp_path / "g", "--limit", "2",
                           "--model", "openai:gpt-4o", "--dry-run", "--no-decontaminate"], capsys)
    assert code == 0, err
    estimate = json.loads(out.strip().splitlines()[-1])
    assert estimate["calls"] > 0 and estimate["cost_usd"] > 0
    assert not (tmp_path / "g").exists()
