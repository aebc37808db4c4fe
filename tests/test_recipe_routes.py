"""Recipes (#27): one route from flags, recipe files and Python to a run, and every setting a recipe field.

Runs go to a loopback OpenAI-compatible server (`FaultServer`) that answers each agent in its format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from orca_math._sync import run_sync
from orca_math.cli import main
from orca_math.errors import ConfigError
from orca_math.recipes import load_recipes, recipe_from_mapping
from orca_math.testing.batch_wire import responder_reply
from orca_math.testing.fault_server import FaultConfig, FaultServer

RUN_LINE = re.compile(r"(new|resumed) run (\w+) in")


@pytest.fixture(scope="module")
def server():
    with FaultServer(FaultConfig(reply=responder_reply)) as running:
        yield running


@pytest.fixture
def seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    rows = [{"id": f"s{i}", "question": f"Bo has {i} pens and buys {i + 2} more. How many pens?",
             "answer": f"#### {2 * i + 2}"} for i in range(1, 5)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _generate(seeds: Path, out: Path, server) -> list[str]:
    return ["generate", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name",
            "fault-model", "--no-progress", "--no-decontaminate", "--no-dedup", "--rounds", "0", "--verify", "none",
            "--price", "fault-model=1,2"]


def _chat_calls(server) -> int:
    return len(server.chat_requests())


def test_a_pilot_is_a_recipe_field_that_a_dry_run_of_the_recipe_runs(tmp_path, seeds, server, capsys):
    recipe = tmp_path / "r.yaml"
    flags = [*_generate(seeds, tmp_path / "unused", server), "--target-rows", "3"]
    assert main([*flags, "--dry-run", "--pilot", "2", "--hourly-usd", "2.5", "--save-recipe", str(recipe)]) == 0
    saved = yaml.safe_load(recipe.read_text())
    assert (saved["cost"]["pilot"], saved["cost"]["hourly_usd"], saved["curation"]["target_rows"]) == (2, 2.5, 3)

    assert main(["run", str(recipe), "--out", str(tmp_path / "a"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    estimate = json.loads((tmp_path / "a" / "estimate.json").read_text())
    assert estimate["pilot_seeds"] == 2 and "projection for --target-rows 3" in printed

    # Without --dry-run the same recipe is a real run: its pilot is what a dry run does, not a refusal.
    assert main(["run", str(recipe), "--out", str(tmp_path / "b")]) in (0, 1)
    printed = capsys.readouterr()
    assert RUN_LINE.search(printed.out), printed.err
    assert not (tmp_path / "b" / "estimate.json").exists()
    # `run --pilot N` sets the field: a smaller pilot than the recipe's.
    assert main(["run", str(recipe), "--out", str(tmp_path / "c"), "--dry-run", "--pilot", "1"]) == 0
    assert json.loads((tmp_path / "c" / "estimate.json").read_text())["pilot_seeds"] == 1
    # An explicit --pilot without --dry-run is still refused by generate, naming the flag.
    assert main(["run", str(recipe), "--out", str(tmp_path / "d"), "--pilot", "1"]) == 2
    assert "--pilot N projects the cost" in capsys.readouterr().err


def test_generate_builds_its_pipeline_from_the_recipe_its_flags_mean(tmp_path, seeds, server, capsys, monkeypatch):
    # One route: whatever generate runs is what Pipeline(recipe=...) gets from recipe_from_args.
    from orca_math.pipeline import Pipeline

    seen: list = []
    original = Pipeline.__init__

    def spy(self, *args, **kwargs):
        seen.append((args, kwargs))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "__init__", spy)
    assert main([*_generate(seeds, tmp_path / "a", server), "--solutions", "2", "--format", "jsonl"]) in (0, 1)
    [(args, kwargs)] = seen
    assert args == () and set(kwargs) == {"recipe", "model", "progress"} and kwargs["progress"] is False
    recipe = kwargs["recipe"]
    assert (recipe.stages.solutions, recipe.stages.rounds, recipe.outputs.formats) == (2, 0, ["jsonl"])
    assert (tmp_path / "a" / "data.jsonl").is_file()  # the recipe's outputs.formats, as the flag asked


def test_pipeline_with_a_recipe_takes_progress_and_a_loaded_client_but_not_another_spec(tmp_path, seeds, server):
    from orca_math.models import ModelRef, load_model
    from orca_math.pipeline import Pipeline

    recipe = recipe_from_mapping({"kind": "generate", "seeds": {"path": str(seeds)}, "out": str(tmp_path / "p"),
                                  "model": {"spec": server.base_url, "name": "fault-model"},
                                  "stages": {"rounds": 0, "decontaminate": False, "dedup": False},
                                  "verification": {"verify": "none"}})
    quiet, loud = Pipeline(recipe=recipe, progress=False), Pipeline(recipe=recipe)
    assert quiet.engine.progress is False and loud.engine.progress is True
    with pytest.raises(ConfigError, match="takes model from the recipe"):
        Pipeline(recipe=recipe, model="openai:gpt-4o")
    client = load_model(server.base_url, model="fault-model")
    before = _chat_calls(server)
    result = Pipeline(recipe=recipe, model=client, progress=False).run_sync()
    run_sync(client.close())  # the caller's to close, as with any client
    # Without a client, a recipe's model travels as a reference: nothing was built, nothing is left to close.
    assert quiet.model_spec == loud.model_spec == ModelRef(server.base_url, model="fault-model")
    with pytest.raises(ConfigError, match="takes model from the recipe"):
        Pipeline(recipe=recipe, model=ModelRef(server.base_url, model="another-model"))
    assert result.funnel.final_rows > 0 and _chat_calls(server) > before
    [recorded] = load_recipes(tmp_path / "p" / "recipe.yaml")
    assert recorded.model.spec == server.base_url and recorded.model.name == "fault-model"


def test_a_ray_setting_in_a_recipe_needs_the_ray_executor():
    recipe = recipe_from_mapping({"kind": "generate", "seeds": {"path": "s.jsonl"},
                                  "executor": {"workers": 2}})
    with pytest.raises(ConfigError, match=r"executor.ray_address, executor.workers\) need --executor ray"):
        recipe.executor.build()
    assert recipe_from_mapping({"kind": "generate", "seeds": {"path": "s.jsonl"}}).executor.build() is None


def _commands() -> dict:
    from orca_math.cli import build_parser

    return build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["generate", "learn", "eval"])
def test_every_flag_of_a_recipe_field_takes_its_help_name_and_default_from_the_field(kind):
    # Flags are generated from the fields (help texts and defaults written once), learn's --preset and --set too.
    from orca_math.recipes import RECIPE_KINDS
    from orca_math.recipes.fields import flag_info, walk

    actions = {flag: action for action in _commands()[kind]._actions for flag in action.option_strings}
    checked = set()
    for path, owner, name in walk(RECIPE_KINDS[kind]):
        info, field = flag_info(owner, name), owner.model_fields[name]
        if not info.get("flag"):
            continue
        action = actions[info["flag"]]
        description = field.description.replace("%", "%%")
        expected = f"turn off {description}" if info.get("invert") else description.rstrip(")")
        assert action.help.startswith(expected), f"{kind} {info['flag']} ({path}): its help is not the field's"
        assert action.dest == info["dest"] and action.option_strings == [info["flag"], *info.get("aliases", ())], path
        if not field.is_required() and not info.get("invert") and not info.get("codec"):
            assert action.default == field.get_default(call_default_factory=True), path
        checked.add(info["flag"])
    assert kind != "learn" or {"--preset", "--set", "--k", "--grading", "--holdout"} <= checked


def test_train_shares_learns_preset_flags():
    train, learn = _commands()["train"], _commands()["learn"]
    for flag in ("--preset", "--set"):
        [ours] = [action for action in train._actions if flag in action.option_strings]
        [theirs] = [action for action in learn._actions if flag in action.option_strings]
        assert (ours.help, ours.default, ours.choices, ours.metavar) == \
               (theirs.help, theirs.default, theirs.choices, theirs.metavar)


def test_an_eval_run_reproduces_from_its_folder_without_asking_the_model_again(tmp_path, server, capsys):
    bench = tmp_path / "mine.jsonl"
    bench.write_text("".join(json.dumps({"question": f"Bo has {i} pens and buys 2 more. How many pens?",
                                         "answer": str(i + 2)}) + "\n" for i in range(3)))
    flags = ["eval", "--model", server.base_url, "--model-name", "fault-model", "--benchmark-file", str(bench),
             "--grading", "llm", "--no-progress"]
    before = _chat_calls(server)
    assert main([*flags, "--out", str(tmp_path / "a")]) in (0, 1)
    first = capsys.readouterr().out
    asked = _chat_calls(server) - before
    assert asked == 6  # 3 answers and 3 verdicts of the LLM grader
    assert (tmp_path / "a" / "cache.sqlite").is_file()

    before = _chat_calls(server)
    assert main(["run", str(tmp_path / "a" / "recipe.yaml"), "--out", str(tmp_path / "b")]) in (0, 1)
    again = capsys.readouterr().out
    assert _chat_calls(server) == before  # every answer and verdict came from the recorded run's cache
    assert RUN_LINE.search(again)[2] == RUN_LINE.search(first)[2]
    assert (tmp_path / "b" / "items.jsonl").read_text() == (tmp_path / "a" / "items.jsonl").read_text()
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 0  # the cache file is where, not what

    # --no-cache (cache: false) asks the model again; a changed field is not answered from the cache.
    assert main([*flags, "--out", str(tmp_path / "c"), "--no-cache"]) in (0, 1)
    assert _chat_calls(server) == before + asked and not (tmp_path / "c" / "cache.sqlite").exists()
    before = _chat_calls(server)
    assert main(["run", str(tmp_path / "a" / "recipe.yaml"), "--out", str(tmp_path / "d"), "--set",
                 "model.temperature=0.5"]) in (0, 1)
    # New answers at the new temperature; the server's replies are the same text, so the grader's prompts are
    # unchanged and its verdicts still come from the cache.
    assert _chat_calls(server) - before == 3


@pytest.mark.slow
def test_a_learn_run_reproduces_from_its_folder_with_the_graders_verdicts_from_its_cache(tmp_path, server, capsys):
    # The checkpoints are trained again (a new checkpoint is a new model), with the same seeds, so their
    # samples are the same and the LLM grader's verdicts on them come from the recorded run's cache.
    from tests._learn_helpers import save_tiny_mistral

    base = save_tiny_mistral(tmp_path / "base")
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?",
                                            "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}) + "\n" for i in range(1, 5)))
    argv = ["learn", "--model", str(base), "--data", str(problems), "--out", str(tmp_path / "a"), "--iterations", "2",
            "--preset", "tiny", "--set", "max_steps=1", "--k", "2", "--max-tokens", "3", "--no-eval", "--no-progress",
            "--grading", "llm", "--grader-model", server.base_url]
    before = _chat_calls(server)
    assert main(argv) == 0
    graded = _chat_calls(server) - before
    assert graded == 8 and (tmp_path / "a" / "cache.sqlite").is_file()  # 4 problems x 2 samples, one verdict each
    capsys.readouterr()

    before = _chat_calls(server)
    assert main(["run", str(tmp_path / "a" / "recipe.yaml"), "--out", str(tmp_path / "b")]) == 0
    assert _chat_calls(server) == before  # every verdict came from the recorded run's cache
    labels = "iteration-2/labels/labelled.jsonl"
    assert (tmp_path / "b" / labels).read_text() == (tmp_path / "a" / labels).read_text()
    assert (tmp_path / "b" / "iteration-2" / "model" / "model.safetensors").is_file()

    # Without the cache (a recipe's cache: false) the grader is asked again.
    assert main(["run", str(tmp_path / "a" / "recipe.yaml"), "--out", str(tmp_path / "c"), "--set", "cache=false"]) == 0
    assert _chat_calls(server) - before == graded and not (tmp_path / "c" / "cache.sqlite").exists()


def test_a_learn_recipe_keeps_a_vllm_sampler_busy_as_the_learn_command_does(tmp_path):
    from orca_math.learn.loop import IterativeLearner

    def learner(sampling: dict) -> IterativeLearner:
        return IterativeLearner(recipe=recipe_from_mapping({
            "kind": "learn", "data": {"path": "d.jsonl"}, "out": str(tmp_path / "loop"),
            "training": {"model": "base", "preset": "tiny"}, "sampling": sampling}))

    assert learner({"sampler": "serve"}).concurrency == 256  # vLLM batches: many samples in flight
    assert learner({"sampler": "hf"}).concurrency == 8
    assert learner({"sampler": "serve", "concurrency": 3}).concurrency == 3


def _problems(tmp_path: Path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?",
                                        "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}) + "\n" for i in range(1, 5)))
    return path


def test_learn_builds_its_learner_from_the_recipe_its_flags_mean(tmp_path, server, capsys, monkeypatch):
    # One route: whatever learn runs is what IterativeLearner(recipe=...) gets from recipe_from_args.
    from orca_math.learn.loop import IterativeLearner

    seen: list = []
    original = IterativeLearner.__init__

    def spy(self, *args, **kwargs):
        seen.append((args, kwargs))
        original(self, *args, **kwargs)

    async def no_loop(self):
        return []

    monkeypatch.setattr(IterativeLearner, "__init__", spy)
    monkeypatch.setattr(IterativeLearner, "_run", no_loop)
    argv = ["learn", "--model", str(tmp_path / "base"), "--data", str(_problems(tmp_path)), "--out",
            str(tmp_path / "loop"), "--preset", "tiny", "--set", "lora_target_modules=q_proj,v_proj", "--k", "2",
            "--grader", "llm", "--grader-model", server.base_url, "--sampler", "hf", "--no-progress"]
    assert main(argv) == 0
    assert "--grader is now --grading" in capsys.readouterr().err
    (args, kwargs), *inner = seen
    assert args == () and set(kwargs) == {"recipe", "progress"} and kwargs["progress"] is False
    recipe = kwargs["recipe"]
    assert (recipe.sampling.k, recipe.grading.mode, recipe.training.overrides) == \
           (2, "llm", {"lora_target_modules": ["q_proj", "v_proj"]})
    [(_, built)] = inner  # the recipe's learner_arguments, the one mapping
    assert built["preset"].lora_target_modules == ("q_proj", "v_proj") and built["samples_per_problem"] == 2
    assert built["grading"].mode == "llm" and built["concurrency"] == 8
    # The deprecated --grader is recorded as what it meant.
    [recorded] = load_recipes(tmp_path / "loop" / "recipe.yaml")
    assert recorded.grading.mode == "llm"


def test_a_saved_learn_recipe_with_a_list_preset_field_runs(tmp_path):
    # `--set lora_target_modules=a,b` was saved as the text "a,b", which the recipe's preset then refused.
    from orca_math.learn.loop import IterativeLearner

    saved = tmp_path / "r.yaml"
    assert main(["learn", "--model", "base", "--data", str(_problems(tmp_path)), "--out", str(tmp_path / "loop"),
                 "--preset", "tiny", "--set", "lora_target_modules=q_proj,v_proj", "--set", "max_steps=3",
                 "--save-recipe", str(saved)]) == 0
    [recipe] = load_recipes(saved)
    learner = IterativeLearner(recipe=recipe)
    assert (learner.preset.lora_target_modules, learner.preset.max_steps) == (("q_proj", "v_proj"), 3)


@pytest.mark.parametrize("kind", ["learn", "eval"])
def test_a_saved_recipe_keeps_the_grading_the_old_grader_flag_asked_for(tmp_path, kind, capsys):
    # --grader llm used to be saved as no grading mode at all: the recipe then graded another way.
    flags = {"learn": ["learn", "--model", "base", "--data", "d.jsonl"], "eval": ["eval", "--model", "local"]}[kind]
    saved = tmp_path / "r.yaml"
    assert main([*flags, "--out", str(tmp_path / "o"), "--grader", "llm", "--grader-model", "openai:gpt-4o",
                 "--save-recipe", str(saved)]) == 0
    assert "--grader is now --grading" in capsys.readouterr().err
    [recipe] = load_recipes(saved)
    assert recipe.grading.mode == "llm"


def test_a_setting_beside_a_learn_recipe_is_refused_not_ignored(tmp_path):
    from orca_math.learn.loop import IterativeLearner

    recipe = recipe_from_mapping({"kind": "learn", "data": {"path": "d.jsonl"}, "out": str(tmp_path / "loop"),
                                  "training": {"model": "base", "preset": "tiny"}})
    with pytest.raises(ConfigError, match=r"takes iterations, temperature from the recipe"):
        IterativeLearner(recipe=recipe, iterations=5, temperature=0.2)
    quiet = IterativeLearner(recipe=recipe, progress=False, out=tmp_path / "other")
    assert quiet.progress is False and quiet.out == tmp_path / "other"


def test_a_learner_from_a_recipe_closes_its_grader_and_cache_when_a_run_ends(tmp_path, server, monkeypatch):
    # The recipe's LLM grader and response cache are the learner's: closed at the end of each run (an error
    # too), and opened again by the next run.
    from orca_math.engine.client import ManagedClient
    from orca_math.learn.loop import IterativeLearner

    closed: list = []
    original_close = ManagedClient.close

    async def spy_close(self):
        closed.append(self)
        await original_close(self)

    monkeypatch.setattr(ManagedClient, "close", spy_close)
    recipe = recipe_from_mapping({"kind": "learn", "data": {"path": "d.jsonl"}, "out": str(tmp_path / "loop"),
                                  "training": {"model": "base", "preset": "tiny"},
                                  "grading": {"mode": "llm", "grader_model": server.base_url}})
    learner = IterativeLearner(recipe=recipe)
    calls: list = []

    async def one_grading(self):  # the loop's steps are tested elsewhere; here the grader is called once
        from autogen_core.models import UserMessage

        client = self.grading.grader_agent.client
        calls.append(client)
        await client.create([UserMessage(content="Final Verdict?", source="user")])
        if len(calls) == 2:
            raise RuntimeError("stopped")
        return []

    monkeypatch.setattr(IterativeLearner, "_run", one_grading)
    before = _chat_calls(server)
    assert learner.run_sync() == []
    assert closed == [calls[0]] and calls[0].cache._closed  # the client, and the cache file it wrote to
    with pytest.raises(RuntimeError, match="stopped"):
        learner.run_sync()  # a second run opens them again, and closes them though it fails
    assert calls[1] is not calls[0] and closed == calls and calls[1].cache._closed
    assert _chat_calls(server) - before == 1  # the second run's same prompt came from the cache file


def test_preset_choices_are_the_preset_registrys_names():
    from orca_math.cli.train import PRESET_CHOICES
    from orca_math.learn.presets import PRESETS

    assert PRESET_CHOICES == tuple(PRESETS)
    for command in ("learn", "train"):
        [preset] = [action for action in _commands()[command]._actions if "--preset" in action.option_strings]
        assert sorted(preset.choices) == sorted(PRESETS), command


def test_eval_evaluates_what_its_flags_recipe_maps_to(tmp_path, server, capsys, monkeypatch):
    # One route: `orca-math eval` (and `run` with an eval recipe) evaluates EvalRecipe.evaluate_arguments.
    import orca_math.recipes.learn_eval as learn_eval

    seen: list = []
    original = learn_eval.evaluate_arguments

    def spy(recipe, **given):
        arguments = original(recipe, **given)
        seen.append((recipe, given, arguments))
        return arguments

    monkeypatch.setattr(learn_eval, "evaluate_arguments", spy)
    bench = tmp_path / "mine.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i} + 2?", "answer": str(i + 2)}) + "\n"
                             for i in range(3)))
    flags = ["eval", "--model", server.base_url, "--model-name", "fault-model", "--benchmark-file", str(bench),
             "--name", "mine", "--grader", "exact", "--limit", "2", "--temperature", "0.3", "--no-progress"]
    assert main([*flags, "--out", str(tmp_path / "a")]) in (0, 1)
    assert main(["run", str(tmp_path / "a" / "recipe.yaml"), "--out", str(tmp_path / "b"), "--no-progress"]) in (0, 1)
    assert "--grader is now --grading" in capsys.readouterr().err
    assert len(seen) == 2
    for recipe, given, arguments in seen:
        assert (recipe.grading.mode, recipe.benchmarks.limit, recipe.model.temperature) == ("exact", 2, 0.3)
        assert given == {"fresh": False, "progress": False, "wait": True}
        assert (arguments["grading"], arguments["limit"], arguments["sampling"]) == ("exact", 2, {"temperature": 0.3})
        assert [bench.name for bench in arguments["benchmarks"]] == ["mine"]
    summaries = [json.loads((tmp_path / out / "summary.json").read_text()) for out in ("a", "b")]
    assert summaries[0]["benchmarks"]["mine"]["n"] == 2 and summaries[0]["benchmarks"] == summaries[1]["benchmarks"]


def test_an_eval_recipe_refuses_more_file_names_than_files():
    recipe = recipe_from_mapping({"kind": "eval", "model": {"spec": "local"},
                                  "benchmarks": {"files": ["a.jsonl"], "file_names": ["a", "b"]}})
    with pytest.raises(ConfigError, match=r"benchmarks.file_names names 2 sets for 1 benchmarks.files"):
        recipe.evaluate_arguments()


def test_evaluate_with_a_recipe_closes_the_client_it_loaded_for_it(tmp_path, server, monkeypatch):
    from orca_math.evaluate import evaluate_sync
    from orca_math.models import ModelRef

    loaded: list = []
    closed: list = []
    original = ModelRef.build

    def spy(self, **overrides):
        client = original(self, **overrides)
        inner_close = client.close

        async def close():
            closed.append(client)
            await inner_close()

        client.close = close
        loaded.append(client)
        return client

    # The recipe's model travels as a `ModelRef`: the evaluation's engine builds the client, and closes it.
    monkeypatch.setattr(ModelRef, "build", spy)
    bench = tmp_path / "mine.jsonl"
    bench.write_text(json.dumps({"question": "What is 1 + 2?", "answer": "3"}) + "\n")
    recipe = recipe_from_mapping({"kind": "eval", "out": str(tmp_path / "e"),
                                  "model": {"spec": server.base_url, "name": "fault-model"},
                                  "benchmarks": {"files": [str(bench)]}, "grading": {"mode": "exact"}})
    before = _chat_calls(server)
    result = evaluate_sync(recipe=recipe, progress=False)
    assert result.summary.scores["mine"].n == 1 and _chat_calls(server) == before + 1
    assert len(loaded) == 1 and closed == loaded  # loaded for the recipe's model name, closed when the run ended
    with pytest.raises(ConfigError, match=r"evaluate\(recipe=...\) takes limit, concurrency from the recipe"):
        evaluate_sync(recipe=recipe, limit=1, concurrency=2)
    with pytest.raises(ConfigError, match="takes model from the recipe"):
        evaluate_sync("openai:gpt-4o", recipe=recipe)


class _CopyTrainer:
    """A `Trainer` that copies the model folder: the loop's steps without training."""

    def train(self, dataset, output_dir, preset, *, model, ref_model=None):
        import shutil

        shutil.copytree(model, output_dir)
        return Path(output_dir)


def test_the_loop_closes_a_chat_format_checkpoint_client_its_sampler_built_when_the_step_ends(tmp_path, monkeypatch):
    # A chat-format sampler loads the checkpoint's client itself (a vLLM engine, say); it was never closed, so
    # the engine kept its GPU through the next training.
    from orca_math.learn.loop import IterativeLearner
    from orca_math.learn.samplers import CheckpointSampler
    from orca_math.testing.scripted import ScriptedChatClient

    built: list = []
    closed: list = []

    def load_model(spec, **options):
        client = ScriptedChatClient(responder=lambda messages: "Final answer: 3")
        original = client.close

        async def close():
            closed.append(client)
            await original()

        client.close = close
        built.append((spec, options, client))
        return client

    monkeypatch.setattr("orca_math.models.ref.load_model", load_model)  # where a `ModelRef` becomes a client
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    sampler = CheckpointSampler(base, engine="hf", prompt_format="chat", max_tokens=64)
    problems = [{"id": f"q{i}", "question": f"What is {i} plus 2?", "answer": f"#### {i + 2}"} for i in range(4)]
    learner = IterativeLearner(base, problems, out=tmp_path / "loop", iterations=1, trainers={"sft": _CopyTrainer()},
                               sampler_model_factory=sampler, eval=0.5, progress=False)
    [result] = learner.run_sync()
    [(spec, options, client)] = built  # the hold-out evaluation of iteration 1's checkpoint
    assert spec == f"hf:{result.model}" and options == {"prompt_format": "chat", "max_new_tokens": 64}
    assert closed == [client] and result.benchmarks["holdout"] is not None


def test_a_learner_refused_after_its_recipe_opened_the_grader_closes_it(tmp_path, server, monkeypatch):
    from orca_math.engine.cache import ResponseCache
    from orca_math.learn.loop import IterativeLearner

    caches: list = []
    original_init = ResponseCache.__init__

    def spy_init(self, *args, **kwargs):
        caches.append(self)
        original_init(self, *args, **kwargs)

    def refuse(**kwargs):
        raise ConfigError("refused after the grader opened")

    monkeypatch.setattr(ResponseCache, "__init__", spy_init)
    monkeypatch.setattr("orca_math.learn.loop.check_sampling", refuse)
    recipe = recipe_from_mapping({"kind": "learn", "data": {"path": "d.jsonl"}, "out": str(tmp_path / "loop"),
                                  "training": {"model": "base", "preset": "tiny"},
                                  "grading": {"mode": "hybrid", "grader_model": server.base_url}})
    with pytest.raises(ConfigError, match="refused after the grader opened"):
        IterativeLearner(recipe=recipe)
    [cache] = caches
    assert cache._closed
