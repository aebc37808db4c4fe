"""`orca-math` starts without importing what only some commands use.

Every command used to pay for transformers, datasets (with pandas and pyarrow), autogen and
jinja2 at start: `orca-math --help` took 3.5 s. These tests look at `sys.modules` in a fresh
interpreter after the parser is built or `--help` is printed; they check imports, not time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Heavy, or needed only by some commands: none of them may load to build the parser or print help.
HEAVY = ("torch", "transformers", "datasets", "ray", "vllm", "matplotlib", "pandas", "pyarrow", "numpy", "trl", "peft",
         "accelerate", "llama_cpp", "tiktoken", "autogen_core", "autogen_ext", "openai", "aiohttp", "httpx", "jinja2",
         "jsonschema", "scipy", "sklearn")


def _modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running `code`."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print("MODULES=" + json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


def _help(*argv: str) -> str:
    return f"""
        import contextlib, io
        from orca_math.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main({list(argv)!r})
            except SystemExit:
                pass
        """


@pytest.mark.parametrize("argv", [("--help",), ("solve", "--help"), ("generate", "--help"), ("eval", "--help"),
                                  ("sample", "--help"), ("learn", "--help")], ids=" ".join)
def test_help_imports_no_heavy_module(argv):
    loaded = _modules_after(_help(*argv)) & set(HEAVY)
    assert not loaded, f"`orca-math {' '.join(argv)}` imported {sorted(loaded)}"


def test_building_the_parser_as_main_does_imports_no_heavy_module():
    loaded = _modules_after("from orca_math.cli import build_parser\nbuild_parser(lazy=True)") & set(HEAVY)
    assert not loaded, sorted(loaded)


def test_import_orca_math_loads_the_agents_only_when_asked():
    assert not _modules_after("import orca_math") & set(HEAVY)
    assert "autogen_core" in _modules_after("import orca_math\nassert orca_math.Teacher.__name__ == 'Teacher'")


# A run of `solve` to JSON Lines needs none of these: the dataset libraries cost more CPU to import
# than the client spends on a thousand problems, and the rest belong to other commands.
NOT_FOR_SOLVE = ("torch", "transformers", "datasets", "ray", "vllm", "matplotlib", "pandas", "pyarrow", "numpy", "trl",
                 "peft", "accelerate", "llama_cpp", "scipy", "sklearn", "huggingface_hub", "fsspec", "tenacity", "tornado")


def test_a_solve_run_to_jsonl_imports_no_dataset_or_training_library(tmp_path):
    seeds, out = tmp_path / "seeds.jsonl", tmp_path / "solved.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 2?"}) + "\n" for i in range(3)))
    loaded = _modules_after(f"""
        import contextlib, io
        from orca_math.cli import main
        from orca_math.testing.fault_server import FaultServer

        with FaultServer() as server, contextlib.redirect_stdout(io.StringIO()):
            status = main(["solve", "--seeds", {str(seeds)!r}, "--out", {str(out)!r}, "--model", server.base_url,
                           "--no-progress"])
        assert status == 0, status
        """) & set(NOT_FOR_SOLVE)
    assert not loaded, f"`orca-math solve --out solved.jsonl` imported {sorted(loaded)}"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["p0", "p1", "p2"] and all(row["final_answer"] == "42" for row in rows)


def test_train_help_still_lists_the_preset_fields():
    from orca_math.cli.train import preset_flags

    if preset_flags() is None:
        pytest.skip("transformers is not installed (the train extra)")
    done = subprocess.run([sys.executable, "-m", "orca_math", "train", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "--max_steps" in done.stdout and "--sft_learning_rate" in done.stdout and "preset fields" in done.stdout


def test_a_preset_flag_is_parsed_as_before(tmp_path):
    from orca_math.cli import build_parser
    from orca_math.cli.train import preset_flags

    if preset_flags() is None:
        pytest.skip("transformers is not installed (the train extra)")
    argv = ["train", "sft", "--data", str(tmp_path), "--model", "m", "--out", str(tmp_path / "o"), "--max_steps", "7"]
    lazy, eager = build_parser(lazy=True).parse_args(argv), build_parser().parse_args(argv)
    assert lazy.max_steps == eager.max_steps == 7
    assert vars(lazy).keys() == vars(eager).keys()


def test_the_console_command_exits_with_mains_status_after_its_exit_handlers_and_a_frozen_heap(tmp_path):
    # The console command freezes the heap before shutdown (skipping the collector's last walk over it);
    # exit handlers, which flush caches and logs, must still run, and the status must be main's.
    script = textwrap.dedent(f"""
        import atexit, gc, sys
        atexit.register(lambda: print(f"exit handler ran; frozen objects: {{gc.get_freeze_count()}}"))
        sys.argv = ["orca-math", "solve", "--seeds", {str(tmp_path / "missing.jsonl")!r}, "--out", {str(tmp_path / "x.jsonl")!r}]
        from orca_math.cli import console_main
        console_main()
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode == 2, done.stderr
    assert "missing.jsonl" in done.stderr and "Traceback" not in done.stderr
    handler_line = next(line for line in done.stdout.splitlines() if line.startswith("exit handler ran"))
    assert int(handler_line.rpartition(" ")[2]) > 10_000


def test_the_parser_leaves_generates_recipe_models_to_generate():
    # generate's flags come from its recipe models; they are added when generate parses, so solve's start
    # does not import them.
    script = """
        import sys
        from orca_math.cli import build_parser
        parser = build_parser(lazy=True)
        before = "orca_math.recipes.generate" in sys.modules
        parser.parse_args(["generate", "--seeds", "s.jsonl", "--out", "o"])
        print("LOADED", before, "orca_math.recipes.generate" in sys.modules)
        """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
                          timeout=120, cwd=REPO)
    assert "LOADED False True" in done.stdout, done.stderr


def test_every_name_the_recipes_package_exports_loads_on_first_use():
    import orca_math.recipes as recipes

    assert sorted(recipes.__all__) == sorted(recipes._WHERE)  # noqa: SLF001 -- the lazy table and __all__ agree
    for name in recipes.__all__:
        assert getattr(recipes, name) is not None
