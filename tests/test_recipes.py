"""Recipes (#27): one typed definition for the CLI flags, the recipe file and the Python API.

Runs go to a loopback OpenAI-compatible server (`FaultServer`), so each is real end to end and fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from orca_math.cli import main
from orca_math.errors import ConfigError
from orca_math.recipes import GenerateRecipe, load_recipes, recipe_from_mapping
from orca_math.testing.fault_server import FaultConfig, FaultServer

RUN_LINE = re.compile(r"(new|resumed) run (\w+) in")


@pytest.fixture(scope="module")
def server():
    with FaultServer(FaultConfig()) as running:
        yield running


@pytest.fixture
def seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    rows = [{"question": "Lu has 3 hats and buys 2 more. How many?", "answer": "5"},
            {"question": "Bo has 7 pens and loses 3. How many are left?", "answer": "4"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _flags(seeds: Path, out: Path, server) -> list[str]:
    return ["generate", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name",
            "fault-model", "--no-progress", "--no-decontaminate", "--rounds", "1", "--max-answer-chars", "900",
            "--price", "fault-model=0.5,1.5", "--verify", "none", "--format", "jsonl"]


def _run_key(capsys, argv: list[str]) -> str:
    status = main(argv)
    out = capsys.readouterr().out
    assert status in (0, 1), out
    match = RUN_LINE.search(out)
    assert match, out
    return match[2]


def _chat_calls(server) -> int:
    return sum(1 for request in server.requests if request.path.endswith("/chat/completions"))


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_flags_save_recipe_then_run_gives_the_same_run_key(tmp_path, seeds, server, capsys):
    by_flags = _run_key(capsys, _flags(seeds, tmp_path / "a", server))
    recipe = tmp_path / "r.yaml"
    assert main([*_flags(seeds, tmp_path / "unused", server), "--save-recipe", str(recipe)]) == 0
    assert not (tmp_path / "unused").exists()  # --save-recipe runs nothing
    saved = yaml.safe_load(recipe.read_text())
    assert saved["stages"]["rounds"] == 1 and saved["stages"]["decontaminate"] is False
    assert saved["cost"]["prices"] == {"fault-model": [0.5, 1.5]}
    assert _run_key(capsys, ["run", str(recipe), "--out", str(tmp_path / "b"), "--no-progress"]) == by_flags


def test_a_flag_and_its_recipe_field_give_the_same_run_key(tmp_path, seeds, server, capsys):
    by_flag = _run_key(capsys, [*_flags(seeds, tmp_path / "a", server), "--solutions", "2"])
    recipe = tmp_path / "r.yaml"
    main([*_flags(seeds, tmp_path / "a", server), "--save-recipe", str(recipe)])
    by_field = _run_key(capsys, ["run", str(recipe), "--set", "stages.solutions=2", "--out", str(tmp_path / "b")])
    default = _run_key(capsys, ["run", str(recipe), "--out", str(tmp_path / "c")])
    assert by_field == by_flag != default


def test_the_run_folder_records_its_recipe_and_reproduces_from_the_cache(tmp_path, seeds, server, capsys):
    start = _chat_calls(server)
    key = _run_key(capsys, _flags(seeds, tmp_path / "a", server))
    recorded = yaml.safe_load((tmp_path / "a" / "recipe.yaml").read_text())
    assert recorded["recorded"]["orca_math_version"]
    assert set(recorded["recorded"]["templates"]) >= {"teacher.template", "suggester.template", "editor.card"}
    assert recorded["out"] is None  # where the run lives is not part of what it computes
    before = _chat_calls(server)
    again = _run_key(capsys, ["run", str(tmp_path / "a" / "recipe.yaml"), "--out", str(tmp_path / "b")])
    assert again == key
    first, second = before - start, _chat_calls(server) - before
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    cached = sum(stage.get("cached_calls", 0) for stage in summary["funnel"]["stages"])
    assert cached > 0 and second < first  # the recorded run's replies were reused, not bought again
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "no differences" in capsys.readouterr().out


def test_diff_lists_exactly_the_changed_fields(tmp_path, seeds, server, capsys):
    main([*_flags(seeds, tmp_path / "a", server), "--save-recipe", str(tmp_path / "a.yaml")])
    main([*_flags(seeds, tmp_path / "b", server), "--solutions", "3", "--no-dedup", "--save-recipe",
          str(tmp_path / "b.yaml")])
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == 1
    lines = capsys.readouterr().out.splitlines()[2:]
    assert lines == ["stages.dedup: true -> false", "stages.solutions: 1 -> 3"]


def test_diff_names_a_changed_template_hash(tmp_path, seeds):
    recipe = GenerateRecipe(seeds={"path": str(seeds)})
    from orca_math.recipes.record import diff_recipes, recorded

    a = recorded(recipe)
    templates = {**a.recorded.templates, "teacher.template": "0000000000000000"}
    b = a.model_copy(update={"recorded": a.recorded.model_copy(update={"templates": templates})})
    assert [row[0] for row in diff_recipes(a, b)] == ["recorded.templates.teacher.template"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"stages": {"roundz": 2}}, "unknown field stages.roundz (did you mean stages.rounds?)"),
    ({"stages": {"rounds": "two"}}, "field stages.rounds='two' must be an integer"),
    ({"stages": {"rounds": -1}}, "field stages.rounds=-1 must be >= 0"),
    ({"verification": {"verify": "vote"}}, "field verification.verify='vote' must be one of"),
    ({"model": {"api_key": "abc123"}}, "field model.api_key holds a secret"),
    ({"model": {"spec": "openai:gpt-4o", "base_url": "https://x/v1?api_key=sk-abcdefghijklmnop"}},
     "field model.base_url holds what looks like an API key"),
    ({"cost": {"prices": {"m": [1, 2]}, "budget_usd": "sk-proj-abcdefghijklmnopqrstuvwx"}},
     "field cost.budget_usd holds what looks like an API key"),
    ({"kind": "generat"}, "field kind='generat' must be one of generate, learn, eval (did you mean generate?)"),
])
def test_a_bad_recipe_is_one_sentence_naming_the_field(tmp_path, capsys, change, expected):
    data = {"kind": "generate", "seeds": {"path": "seeds.jsonl"}}
    for key, value in change.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(data))
    err = _error(capsys, ["run", str(recipe), "--out", str(tmp_path / "o")])
    assert err.startswith(f"error: {recipe}: ") and expected in err
    assert not (tmp_path / "o").exists()


def test_set_overrides_are_checked_like_the_file(tmp_path, capsys, seeds):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"kind": "generate", "seeds": {"path": str(seeds)}}))
    assert "unknown field seeds.limt (did you mean seeds.limit?)" in _error(
        capsys, ["run", str(recipe), "--set", "seeds.limt=3", "--out", str(tmp_path / "o")])
    assert "field seeds.limit=0 must be >= 1" in _error(
        capsys, ["run", str(recipe), "--set", "seeds.limit=0", "--out", str(tmp_path / "o")])
    assert "write path.to.field=VALUE" in _error(capsys, ["run", str(recipe), "--set", "seeds.limit"])
    assert "has no out; pass --out DIR" in _error(capsys, ["run", str(recipe)])
    [loaded] = load_recipes(recipe, ["seeds.limit=3", "generate.stages.rounds=0", "cost.prices={m: [1, 2]}"])
    assert (loaded.seeds.limit, loaded.stages.rounds, loaded.cost.prices) == (3, 0, {"m": (1.0, 2.0)})


def test_a_missing_recipe_file_is_one_sentence(tmp_path, capsys):
    assert "does not exist" in _error(capsys, ["run", str(tmp_path / "nope.yaml")])
    (tmp_path / "bad.yaml").write_text("kind: generate\nseeds: [\n")
    assert "not valid YAML" in _error(capsys, ["run", str(tmp_path / "bad.yaml")])


def test_save_recipe_refuses_a_key_in_a_flag(tmp_path, capsys, seeds):
    err = _error(capsys, ["generate", "--seeds", str(seeds), "--out", str(tmp_path / "o"), "--model",
                          "http://127.0.0.1:9/v1?key=sk-abcdefghijklmnopqrstuv", "--save-recipe", str(tmp_path / "r.yaml")])
    assert "looks like an API key" in err and not (tmp_path / "r.yaml").exists()


def test_every_field_has_a_description_and_the_flag_defaults_match():
    from orca_math.cli import build_parser
    from orca_math.recipes import RECIPE_KINDS
    from orca_math.recipes.fields import flag_info, walk

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for kind, model in RECIPE_KINDS.items():
        defaults = {action.dest: action.default for action in commands[kind]._actions}
        for path, owner, name in walk(model):
            field = owner.model_fields[name]
            assert field.description, f"{kind}: {path} has no description"
            info = flag_info(owner, name)
            if info.get("flag") and not info.get("codec") and field.is_required() is False:
                assert info["dest"] in defaults, f"{kind}: {path} names {info['flag']}, which {kind} lacks"
                default = field.get_default(call_default_factory=True)
                flag_default = defaults[info["dest"]]
                expected = (not flag_default) if info.get("invert") else flag_default
                assert default == expected, f"{kind}: {path} defaults to {default!r}, {info['flag']} to {flag_default!r}"


def test_pipeline_accepts_a_recipe_and_gets_the_cli_run_key(tmp_path, seeds, server, capsys):
    from orca_math.pipeline import Pipeline

    key = _run_key(capsys, _flags(seeds, tmp_path / "a", server))
    [recipe] = load_recipes(tmp_path / "a" / "recipe.yaml")
    result = Pipeline(recipe=recipe.model_copy(update={"out": str(tmp_path / "p")})).run_sync()
    assert result.run_key == key and (tmp_path / "p" / "recipe.yaml").is_file()
    with pytest.raises(ConfigError, match="takes stages from the recipe"):
        Pipeline([], recipe=recipe)


def test_iterative_learner_accepts_a_recipe(tmp_path):
    from orca_math.learn.loop import IterativeLearner

    recipe = recipe_from_mapping({"kind": "learn", "data": {"path": "d.jsonl"}, "out": str(tmp_path / "loop"),
                                  "training": {"model": "base", "preset": "tiny", "iterations": 2,
                                               "overrides": {"max_steps": 3}},
                                  "sampling": {"k": 2, "temperature": 0.5}, "evaluation": {"enabled": False}})
    learner = IterativeLearner(recipe=recipe)
    assert (learner.base_model, learner.iterations, learner.samples_per_problem) == ("base", 2, 2)
    assert learner.preset.max_steps == 3 and learner.sampling["temperature"] == 0.5 and learner.eval is None
    assert IterativeLearner(recipe=recipe, out=tmp_path / "other").out == tmp_path / "other"


def test_learn_and_eval_flags_round_trip_through_a_recipe(tmp_path):
    from orca_math.cli import build_parser
    from orca_math.recipes import recipe_argv, recipe_from_args

    parser = build_parser()
    for argv in (["generate", "--seeds", "s.jsonl", "--out", "o", "--student", "hf:x", "--curate", "keep:hard",
                  "--band-shares", "hard=0.5,easy=0.5", "--target-rows", "4", "--price", "m=1.0,2.0", "--no-dedup",
                  "--cache-file", "c.sqlite", "--completion-tokens", "teacher=300", "--format", "jsonl"],
                 ["learn", "--model", "m", "--data", "d.jsonl", "--out", "o", "--preset", "tiny", "--set", "max_steps=3",
                  "--k", "2", "--no-eval", "--grading", "exact", "--executor", "local"],
                 ["eval", "--model", "local", "--out", "o", "--benchmarks", "gsm8k", "--limit", "3",
                  "--benchmark-file", "x.jsonl", "--name", "mine", "--audit-rate", "0.2", "--batch"]):
        args = parser.parse_args(argv)
        recipe = recipe_from_args(argv[0], args)
        again = parser.parse_args([*recipe_argv(recipe), "--out", "o"])
        assert {k: v for k, v in vars(again).items() if k != "handler"} == \
               {k: v for k, v in vars(args).items() if k != "handler"}


def test_the_schema_page_is_stale_when_a_field_changes_without_regenerating(tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    page = (repo / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert "| `stages.rounds` | integer | `2` | &gt;= 0 | `--rounds` |" in page
    for name in ("agents.md", "cli.md"):
        (tmp_path / name).write_text((repo / "docs" / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "recipes.md").write_text(page.replace("| `stages.rounds` | integer | `2` |", "| `stages.rounds` | integer | `3` |"),
                                         encoding="utf-8")
    check = subprocess.run([sys.executable, str(repo / "scripts" / "gen_docs.py"), "--check", "--docs-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "recipes.md" in check.stderr and "cli.md" not in check.stderr


def test_generate_flags_are_written_from_the_recipe_fields():
    from orca_math.cli import build_parser
    from orca_math.recipes.fields import flag_info, walk

    generate = build_parser()._subparsers._group_actions[0].choices["generate"]  # type: ignore[union-attr]
    actions = {flag: action for action in generate._actions for flag in action.option_strings}
    generated = 0
    for path, owner, name in walk(GenerateRecipe):
        if path.split(".")[0] not in ("stages", "verification", "outputs", "curation"):
            continue
        info, field = flag_info(owner, name), owner.model_fields[name]
        action = actions[info["flag"]]
        description = field.description.replace("%", "%%")
        assert action.help.startswith(f"turn off {description}" if info.get("invert") else description.rstrip(")")), path
        if not info.get("invert") and field.annotation is not bool:
            assert action.default == field.get_default(call_default_factory=True), path
        generated += 1
    assert generated == 17


def test_every_flag_of_a_recipe_command_is_a_recipe_field_or_says_how_to_run():
    # A flag added to generate, learn or eval without a recipe field would be lost by --save-recipe and run.
    from orca_math.cli import build_parser
    from orca_math.cli.run import RUN_CONTROL_FLAGS
    from orca_math.recipes import RECIPE_KINDS
    from orca_math.recipes.fields import flag_info, walk

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for kind, model in RECIPE_KINDS.items():
        fields = {flag_info(owner, name).get("dest") for _, owner, name in walk(model)}
        for action in commands[kind]._actions:
            if action.option_strings and action.dest not in fields:
                assert set(action.option_strings) & RUN_CONTROL_FLAGS, f"{kind} {action.option_strings[0]} has no recipe field"


def test_an_eval_recipe_gives_the_run_key_of_its_flags_and_records_itself(tmp_path, server, capsys):
    bench = tmp_path / "mine.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i} + 2?", "answer": str(i + 2)}) + "\n" for i in range(2)))
    flags = ["eval", "--model", server.base_url, "--model-name", "fault-model", "--benchmark-file", str(bench),
             "--grading", "exact", "--no-progress", "--concurrency", "2"]
    by_flags = _run_key(capsys, [*flags, "--out", str(tmp_path / "a")])
    assert main([*flags, "--out", str(tmp_path / "unused"), "--save-recipe", str(tmp_path / "eval.yaml")]) == 0
    by_recipe = _run_key(capsys, ["run", str(tmp_path / "eval.yaml"), "--out", str(tmp_path / "b")])
    assert by_recipe == by_flags
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    [recorded] = load_recipes(tmp_path / "a" / "recipe.yaml")
    assert recorded.kind == "eval" and recorded.benchmarks.files == [str(bench)] and recorded.grading.mode == "exact"


def test_a_learn_recipe_samples_checkpoints_as_the_learn_command_does(tmp_path):
    from orca_math.learn.loop import IterativeLearner

    base = {"kind": "learn", "data": {"path": "d.jsonl"}, "out": str(tmp_path / "loop"),
            "training": {"model": "base", "preset": "tiny"}}
    served = recipe_from_mapping({**base, "sampling": {"sampler": "serve"}})
    assert IterativeLearner(recipe=served).sampler_model_factory(Path("ckpt/m1")) == "vllm-serve:ckpt/m1"
    hf = recipe_from_mapping({**base, "sampling": {"sampler": "hf"}})
    assert IterativeLearner(recipe=hf).sampler_model_factory(Path("ckpt/m1")) == "hf:ckpt/m1"


def test_a_run_whose_flags_hold_a_password_keeps_its_status_and_writes_no_recipe(tmp_path, seeds, server, capsys):
    url = server.base_url.replace("http://", "http://user:hunter2secret@")
    status = main([*_flags(seeds, tmp_path / "a", server)[:6], url, *_flags(seeds, tmp_path / "a", server)[7:]])
    printed = capsys.readouterr()
    assert status in (0, 1) and "final rows:" in printed.out
    assert "recipe.yaml was not written" in printed.err and "model.spec holds what looks like an API key" in printed.err
    assert not (tmp_path / "a" / "recipe.yaml").exists()
    assert "hunter2secret" not in printed.err
