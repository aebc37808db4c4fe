"""Every command block of README.md and docs/quickstart.md runs, shrunk where needed, and the counts the
pages state hold.

Each fenced block of the two pages must be handled below (a new block fails `test_every_block_is_handled`
until it is). Shrinking: fewer seeds (`--limit 1` for the embedded model, 2 against a server), a
loopback OpenAI-compatible server for `http://127.0.0.1:8000/v1` (what `vllm serve` would be), and
`--dry-run` for `openai:` models (no network here). `make demo` runs the Makefile's own command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from autogen_core.models import UserMessage

from orca_math.testing.fault_server import FaultConfig, FaultServer
from orca_math.testing.responders import pipeline_responder

REPO = Path(__file__).resolve().parents[1]
PAGES = {"README.md": REPO / "README.md", "quickstart.md": REPO / "docs" / "quickstart.md"}
SERVER_URL = "http://127.0.0.1:8000/v1"


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced block; blocks quoted with "> " are read too."""
    lines = [re.sub(r"^> ?", "", line) for line in path.read_text(encoding="utf-8").splitlines()]
    return re.findall(r"^```(\w*)\n(.*?)^```", "\n".join(lines) + "\n", re.S | re.M)


def _block(page: str, contains: str) -> str:
    found = [text for _, text in fenced_blocks(PAGES[page]) if contains in text]
    assert len(found) == 1, f"{page}: expected one block containing {contains!r}, found {len(found)}"
    return found[0]


#: How each block is covered: (page, text it contains) -> the test that runs or checks it.
HANDLED = {
    ("README.md", "make demo   #"): "test_make_demo_runs_its_command_and_the_pages_state_its_flags",
    ("README.md", "export OPENAI_API_KEY"): "test_readme_real_data_commands",
    ("README.md", "from orca_math import Teacher"): "test_readme_notebook_block",
    ("README.md", "orca-math solve     --seeds"): "test_readme_command_synopsis_names_real_flags",
    ("README.md", "orca_math/    the package"): "(layout: checked by test_readme_layout_folders_exist)",
    ("README.md", "orca-math view runs/demo"): "test_readme_view_line_is_what_the_demo_prints",
    ("README.md", "--target-rows 10000 --dry-run --pilot 50"): "test_readme_curation_commands",
    ("quickstart.md", "git clone"): "test_make_demo_runs_its_command_and_the_pages_state_its_flags",
    ("quickstart.md", '{"id": "demo-01"'): "test_quickstart_seed_line_is_the_first_seed",
    ("quickstart.md", "pipeline = Pipeline(\n    [Harden(rounds=1)"): "test_quickstart_python_block",
    ("quickstart.md", "final rows:"): "test_quickstart_funnel_adds_up",
    ("quickstart.md", "runs/quickstart/\n"): "test_quickstart_python_block",
    ("quickstart.md", "ds = result.load_dataset()"): "test_quickstart_python_block",
    ("quickstart.md", "orca-math generate --seeds examples/seeds.jsonl --out runs/demo"): "test_quickstart_shell_commands",
    ("quickstart.md", 'pipeline = Pipeline(model="openai:gpt-4o"'): "test_quickstart_real_teacher_blocks",
    ("quickstart.md", "orca-math generate --seeds seeds.jsonl --out data/run1 --model openai"): "test_quickstart_real_teacher_blocks",
}


def test_every_block_is_handled():
    for page, path in PAGES.items():
        for _, text in fenced_blocks(path):
            owners = [key for key in HANDLED if key[0] == page and key[1] in text]
            assert owners, f"{page}: a command block no test runs or checks:\n{text[:300]}"


# --------------------------------------------------------------------------- running commands


def _server_reply(messages: list[dict]) -> str:
    return pipeline_responder([UserMessage(content=m["content"], source="user") for m in messages if m["role"] == "user"])


@pytest.fixture(scope="module")
def server():
    with FaultServer(FaultConfig(reply=_server_reply)) as running:
        yield running


@pytest.fixture
def workdir(tmp_path):
    """A folder laid out as the pages assume: examples/seeds.jsonl, and seeds files named in them."""
    (tmp_path / "examples").mkdir()
    for name in ("examples/seeds.jsonl", "seeds.jsonl", "my_seeds.jsonl"):
        shutil.copy(REPO / "examples" / "seeds.jsonl", tmp_path / name)
    return tmp_path


def shrink(argv: list[str], server_url: str) -> list[str]:
    """A page's command, made small and offline: see the module docstring."""
    argv = [server_url if arg == SERVER_URL else arg for arg in argv]
    model = argv[argv.index("--model") + 1] if "--model" in argv else "local"
    limit = "1" if model.startswith("local") else "2"
    if "--limit" in argv:
        argv[argv.index("--limit") + 1] = limit
    else:
        argv += ["--limit", limit]
    if model.startswith("openai:"):
        argv.append("--dry-run")
    return argv


def orca_math(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": "sk-docs-test-not-a-key", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "orca_math", *argv[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode in (0, 1), f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def commands(block: str) -> list[list[str]]:
    """The `orca-math ...` lines of a shell block (comments and line continuations handled)."""
    text = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip().startswith("orca-math ")]


def funnel(stdout: str) -> dict[str, tuple[int, ...]]:
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == "seeds" and len(cells) == 2:
            rows["seeds"] = (int(cells[1]),)
        elif len(cells) >= 5 and all(c.isdigit() for c in cells[1:5]):
            rows[cells[0]] = tuple(int(c) for c in cells[1:5])
    return rows


def check_funnel(rows: dict[str, tuple[int, ...]], seeds: int) -> None:
    """The page's rule: each stage's `in` is the previous stage's `out`, starting from the seeds."""
    assert rows["seeds"] == (seeds,)
    previous = seeds
    for name, (inputs, outputs, *_) in list(rows.items())[1:]:
        assert inputs == previous, f"stage {name}: in {inputs}, but the stage before put out {previous}"
        previous = outputs


# --------------------------------------------------------------------------- the blocks


@pytest.mark.slow
def test_make_demo_runs_its_command_and_the_pages_state_its_flags(workdir):
    makefile = (REPO / "Makefile").read_text()
    command = re.search(r"^demo:.*\n\t@\$\(VENV\)/bin/(orca-math run (\S+\.yaml))\s*\\\n", makefile, re.M)
    recipe = _demo_recipe()
    assert (recipe["seeds"]["limit"], recipe["stages"]["rounds"]) == (4, 1)
    assert (recipe["seeds"]["path"], recipe["out"], recipe["model"]["spec"]) == ("examples/seeds.jsonl", "runs/demo", "local")
    index = (REPO / "docs" / "index.md").read_text()
    assert "first 4 seed problems (one hardening round)" in index and "with every extra" not in index
    assert "first 4 seed problems with one hardening round (seeds.limit: 4, stages.rounds: 1)" in _block("quickstart.md", "git clone")
    assert "make demo" in _block("README.md", "make demo   #")
    (workdir / "recipes").mkdir()
    shutil.copy(REPO / command.group(2), workdir / command.group(2))
    done = orca_math([*shlex.split(command.group(1)), "--set", "seeds.limit=1"], workdir)
    check_funnel(funnel(done.stdout), 1)
    assert (workdir / "runs" / "demo" / "dataset").is_dir() and (workdir / "runs" / "demo" / "recipe.yaml").is_file()


def _demo_recipe() -> dict:
    """The recipe file `make demo` runs (recipes/quick-local.yaml), as YAML data."""
    import yaml

    path = re.search(r"orca-math run (\S+\.yaml)", (REPO / "Makefile").read_text()).group(1)
    return yaml.safe_load((REPO / path).read_text(encoding="utf-8"))


@pytest.mark.slow
def test_readme_real_data_commands(workdir, server):
    block = _block("README.md", "export OPENAI_API_KEY")
    assert "vllm serve" in block  # stands for the server: the loopback server plays it here
    ran = commands(block)
    assert len(ran) == 2
    for argv in ran:
        done = orca_math(shrink(argv, server.base_url), workdir)
        if "openai:gpt-4o" in argv:
            assert "estimated" in done.stdout.lower() or "calls" in done.stdout.lower()
        else:
            check_funnel(funnel(done.stdout), 2)


def test_readme_notebook_block(workdir, server, monkeypatch, capsys):
    from orca_math.pipeline import default_stages

    block = _block("README.md", "from orca_math import Teacher")
    assert "The seven stages `orca-math generate` runs: expand, harden, dedup, decontaminate, solve, verify, filter." in block
    assert [stage.name for stage in default_stages()] == ["expand", "harden", "dedup", "decontaminate", "solve", "verify", "filter"]
    code = block.replace('"openai:gpt-4o"', repr(server.base_url)).replace('out="data/run1")', 'out="data/run1", limit=2)')
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["solution"].final_answer == "5"
    dataset = namespace["dataset"]
    assert dataset.column_names[:2] == ["question", "answer"] and dataset.num_rows > 0
    check_funnel(funnel(capsys.readouterr().out), 2)


def test_readme_agent_table_names_each_cards_inputs():
    from orca_math.agents.cards import load_card

    readme = PAGES["README.md"].read_text()
    cards = {"AskMeAnything": "ask_me_anything", "Suggester": "suggester", "Editor": "editor", "Teacher": "teacher",
             "Grader": "grader"}
    for cls, card in cards.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{cls}` |"))
        named = re.findall(r"`(\w+)`", row.split("|")[2])
        assert named == list(load_card(card).inputs), f"README's inputs of {cls}: {named}"
    import orca_math
    import orca_math.pipeline as pipeline
    from orca_math.agents.base import AgentFailedError

    assert all(hasattr(orca_math, cls) for cls in cards)
    for stage in ("Expand", "Harden", "Dedup", "Decontaminate", "Solve", "Verify", "Filter"):
        assert f"`{stage}`" in readme and hasattr(pipeline, stage)
    error = AgentFailedError("teacher", "no final answer", "I think so.", 3, None)
    assert (error.reason, error.raw_reply) == ("teacher: no final answer", "I think so.")


def test_readme_view_line_is_what_the_demo_prints():
    # `view` serves until stopped (its own tests drive it in a browser): here, the line is the demo's own.
    line = _block("README.md", "orca-math view runs/demo").split("#")[0].strip()
    assert line in (REPO / "Makefile").read_text().replace("$(VENV)", ".venv")
    assert _demo_recipe()["out"] == "runs/demo"
    assert '.[local,quality,view,report]"' in (REPO / "scripts" / "setup.sh").read_text()  # what view and report need


@pytest.mark.slow
def test_readme_curation_commands(workdir, server):
    from orca_math.cli import build_parser

    pilot, targeted = commands(_block("README.md", "--target-rows 10000 --dry-run --pilot 50"))
    for argv in (pilot, targeted):
        args = build_parser().parse_args(argv[1:])  # every flag exists and every value parses
        assert args.target_rows == 10000
    assert pilot[:-3] == targeted  # the pilot measures the recipe the real run runs
    # The pilot, shrunk: 2 seeds' real calls against the loopback server (teacher and student), a projection for 4 rows.
    argv = [server.base_url if arg in ("openai:gpt-4o", "vllm:ckpt/m1") else arg for arg in pilot]
    argv[argv.index("--pilot") + 1], argv[argv.index("--target-rows") + 1] = "2", "4"
    done = orca_math(argv, workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    estimate = json.loads((workdir / "data" / "run1" / "estimate.json").read_text())
    assert estimate and not (workdir / "data" / "run1" / "dataset").exists()  # a dry run writes no dataset


def test_readme_command_synopsis_names_real_flags():
    from orca_math.cli import build_parser

    subcommands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 -- argparse has no public way
    checked = set()
    for line in _block("README.md", "orca-math solve     --seeds").splitlines():
        for segment in line.split("(")[0].removeprefix("orca-math").split(" | "):  # "decontaminate X | report Y | ..."
            name = segment.split()[0]
            assert name in subcommands, f"README names a command orca-math does not have: {name}"
            known = {option for action in subcommands[name]._actions for option in action.option_strings}  # noqa: SLF001
            for flag in re.findall(r"(--[a-z][a-z-]*)", segment):
                assert flag in known, f"README: orca-math {name} has no {flag}"
            checked.add(name)
    assert {"solve", "generate", "eval", "report", "push", "doctor"} <= checked


def test_readme_layout_folders_exist():
    for line in _block("README.md", "orca_math/    the package").splitlines():
        for folder in re.findall(r"(\w+)/ ", line + " "):
            assert (REPO / folder).is_dir(), f"README layout names {folder}/, which does not exist"


def test_quickstart_seed_line_is_the_first_seed():
    first = json.loads((REPO / "examples" / "seeds.jsonl").read_text().splitlines()[0])
    shown = _block("quickstart.md", '{"id": "demo-01"')
    assert first["id"] == "demo-01" and first["question"].startswith(shown.split('"question": "')[1].split(" ...")[0])
    assert first["answer"].rstrip().endswith(shown.split('"answer": "... ')[1].split('"')[0])


def test_quickstart_funnel_adds_up():
    block = _block("quickstart.md", "final rows:")
    rows = funnel(block)
    check_funnel(rows, 3)  # "One run of the tiny model on three seeds"
    # "3 seeds in, 1 row out and 2 failures; the 3 drops are hardening rounds that produced nothing"
    assert rows["harden"][:2] == (3, 3) and rows["harden"][3] == 3 and rows["filter"][1] == 1
    assert sum(row[2] for name, row in rows.items() if name != "seeds") == 2
    assert "3 seeds in, 1 row out and 2 failures" in " ".join(PAGES["quickstart.md"].read_text().split())
    final_rows, tokens_in, tokens_out = map(int, re.search(r"final rows: (\d+)\s+tokens: (\d+) in \+ (\d+) out", block).groups())
    assert final_rows == rows["filter"][1]
    stage_tokens = [int(line.split()[5]) for line in block.splitlines() if line.split()[:1] and line.split()[0] in rows and line.split()[0] != "seeds"]
    assert sum(stage_tokens) == tokens_in + tokens_out
    assert "limit=3" in _block("quickstart.md", "pipeline = Pipeline(\n    [Harden(rounds=1)")


@pytest.mark.slow
def test_quickstart_python_block(workdir, monkeypatch, capsys):
    code = _block("quickstart.md", "pipeline = Pipeline(\n    [Harden(rounds=1)").replace("limit=3", "limit=1")
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    exec(compile(code, "quickstart.md", "exec"), namespace)
    check_funnel(funnel(capsys.readouterr().out), 1)
    out = workdir / "runs" / "quickstart"
    parents: list[str] = []  # the folders above an entry, by its indentation (two spaces a level)
    for line in _block("quickstart.md", "runs/quickstart/\n").splitlines()[1:]:
        name = line.split("#")[0].strip()
        depth = (len(line) - len(line.lstrip())) // 2 - 1
        parents = parents[:depth]
        path = out.joinpath(*parents, name.replace("<key>", namespace["result"].run_key))
        if name.endswith("/"):
            parents.append(name.replace("<key>", namespace["result"].run_key))
        if "<stage>" in name:
            assert list(path.parent.glob("*.jsonl")), f"no stage checkpoints in {path.parent}"
        else:
            assert path.exists(), f"quickstart's folder tree lists {name}, missing from {out}"
    listed = re.findall(r"'(\w+)'", _block("quickstart.md", "ds = result.load_dataset()"))
    assert namespace["result"].load_dataset().column_names[:len(listed)] == listed


@pytest.mark.slow
def test_quickstart_shell_commands(workdir):
    generate, solve, view = commands(_block("quickstart.md", "orca-math generate --seeds examples/seeds.jsonl --out runs/demo"))
    assert view == ["orca-math", "view", generate[generate.index("--out") + 1]]  # serves until stopped: its own tests run it
    check_funnel(funnel(orca_math(shrink(generate, ""), workdir).stdout), 1)
    done = orca_math(shrink(solve, ""), workdir)
    solved = int(re.search(r"solved (\d+) of 1 problem", done.stdout).group(1))
    assert len((workdir / "runs" / "solutions.jsonl").read_text().splitlines()) == solved


@pytest.mark.slow
def test_quickstart_real_teacher_blocks(workdir, server, monkeypatch):
    from orca_math.pipeline import Pipeline

    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test-not-a-key")
    code = _block("quickstart.md", 'pipeline = Pipeline(model="openai:gpt-4o"')
    namespace = {"Pipeline": Pipeline}
    exec(compile(code, "quickstart.md", "exec"), namespace)  # both lines build a pipeline; nothing is called
    assert namespace["pipeline"].model_spec == SERVER_URL
    for argv in commands(_block("quickstart.md", "orca-math generate --seeds seeds.jsonl --out data/run1 --model openai")):
        done = orca_math(shrink(argv, server.base_url), workdir)
        if "openai:gpt-4o" not in argv:
            check_funnel(funnel(done.stdout), 2)
