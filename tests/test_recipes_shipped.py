"""The recipes in recipes/: each validates, and each runs (shrunk with --set) where this machine can run it.

The generation recipes run with the embedded model (quick-local, the paper's generate half) or against
the loopback Batch API server (openai-batch). The paper's learn half needs Mistral-7B on GPUs: it is
validated, and its command line is parsed by `orca-math learn`'s own parser, but not trained here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orca_math.cli import build_parser, main
from orca_math.recipes import load_recipes, recipe_argv
from orca_math.testing.batch_server import BatchServer
from tests._batch_helpers import MODEL

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "recipes").glob("*.yaml"))


def test_the_three_recipes_are_shipped():
    assert {path.name for path in SHIPPED} >= {"orca-math-paper.yaml", "quick-local.yaml", "openai-batch.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_recipe_validates_and_parses_as_its_command(path):
    parser = build_parser()
    for recipe in load_recipes(path):
        assert recipe.out, f"{path.name}: a shipped recipe names its output folder"
        parser.parse_args([*recipe_argv(recipe), "--out", recipe.out])  # the command's own parser accepts it


def test_the_paper_recipe_has_the_papers_settings():
    generate, learn = load_recipes(REPO / "recipes" / "orca-math-paper.yaml")
    assert (generate.stages.rounds, generate.stages.max_answer_chars) == (2, 1800)
    assert (learn.sampling.k, learn.sampling.temperature, learn.sampling.top_p) == (4, 0.7, 0.95)
    assert (learn.training.iterations, learn.training.method, learn.training.preset) == (3, "kto", "mistral-7b")
    assert "Mistral-7B" in learn.training.model and learn.data.path == f"{generate.out}/dataset"


def test_openai_batch_runs_through_a_batch_api(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the recipe's seed path is relative to where it runs
    with BatchServer() as server:
        status = main(["run", "recipes/openai-batch.yaml", "--out", str(tmp_path / "o"), "--no-progress",
                       "--set", f"model.spec={server.base_url}", "--set", f"model.name={MODEL}",
                       "--set", "batch.backend=auto", "--set", "batch.poll_seconds=0.01", "--set", "seeds.limit=2",
                       "--set", "stages.rounds=1", "--set", "stages.decontaminate=false",
                       "--set", "cost.prices={" + MODEL + ": [1, 2]}"])
        assert status in (0, 1), capsys.readouterr()
        assert server.created_batches()  # the calls went through the batch API
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["funnel"]["stages"][0]["name"] == "expand"
    assert (tmp_path / "o" / "recipe.yaml").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("path", "only"), [("recipes/quick-local.yaml", None), ("recipes/orca-math-paper.yaml", "generate")])
def test_generation_recipes_run_with_the_embedded_model(tmp_path_factory, capsys, monkeypatch, path, only):
    pytest.importorskip("llama_cpp")
    monkeypatch.chdir(REPO)
    # One cache for both: the shrunk runs ask the same questions, so the second pays for few calls.
    cache = tmp_path_factory.getbasetemp() / "shipped-recipes-cache.sqlite"
    out = tmp_path_factory.mktemp("run")
    prefix = f"{only}." if only else ""
    shrink = {"model.spec": "local", "seeds.limit": "1", "stages.rounds": "1", "stages.expand": "false",
              "stages.decontaminate": "false", "engine.cache_file": str(cache)}
    argv = ["run", path, "--out", str(out), "--no-progress"] + (["--only", only] if only else [])
    for field, value in shrink.items():
        argv += ["--set", f"{prefix}{field}={value}"]
    status = main(argv)
    printed = capsys.readouterr()
    assert status in (0, 1), printed.err  # 1: the tiny model failed some items, recorded with reasons
    assert "final rows:" in printed.out and (out / "summary.json").is_file() and (out / "recipe.yaml").is_file()


def test_a_recipe_dry_run_estimates_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a dry run calls nothing, so it needs no key
    out = tmp_path / "o"
    assert main(["run", "recipes/orca-math-paper.yaml", "--only", "generate", "--out", str(out), "--dry-run",
                 "--set", "generate.seeds.limit=2"]) == 0
    printed = capsys.readouterr().out
    assert "dry run: 2 seeds, model gpt-4-turbo" in printed and "harden" in printed
    assert not (out / "recipe.yaml").exists()
    assert main(["run", "recipes/orca-math-paper.yaml", "--only", "learn", "--out", str(out), "--pilot", "3"]) == 2
    assert "--pilot estimates a generate recipe" in capsys.readouterr().err
