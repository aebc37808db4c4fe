"""The worked example of docs/extending.md: a Checker agent, added as a card, a template and a class.

The three files are the page's own code blocks. They are written into a package in a temporary
folder, with the entry point the page shows in a ``*.dist-info`` folder (found by
`importlib.metadata` as a pip-installed package is), and used through the public API on a scripted
model: registered, priced in dry runs, and asked by the Verify stage. Nothing in orca-math's own
tree is written or changed for it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import datasets
import pytest

from orca_math.agents import AGENTS, Agent, agent_classes, origins, shipped_cards, typical_completion_tokens
from orca_math.agents.replies import AgentFailedError
from orca_math.resources import resource_dir
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "extending.md"
SECTION = "### A worked example: a Checker that the Verify stage asks"
FILES = ("my_checker/checker.yaml", "my_checker/checker.jinja", "my_checker/checker.py")


def _blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the worked example's section."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ")]
    return re.findall(r"```(\w*)\n(.*?)```", section, re.DOTALL)


def _page_files() -> dict[str, str]:
    """The blocks whose first line names a file of the example package (``# my_checker/checker.py``)."""
    files = {}
    for _, code in _blocks():
        named = re.match(r"(?:#|\{#)\s*(my_checker/\S+)", code)
        if named:
            files[named.group(1)] = code
    return files


def _page_entry_points() -> str:
    """The page's pyproject.toml block as an ``entry_points.txt``."""
    toml = next(code for language, code in _blocks() if language == "toml")
    lines = []  # (tomllib is Python 3.11+; the block is a table header and ``name = "target"`` lines)
    for line in toml.splitlines():
        header = re.fullmatch(r'\[project\.entry-points\."([\w.]+)"\]', line.strip())
        entry = re.fullmatch(r'(\w+)\s*=\s*"([\w.:]+)"', line.strip())
        if header:
            lines.append(f"[{header.group(1)}]")
        elif entry:
            lines.append(f"{entry.group(1)} = {entry.group(2)}")
    return "".join(f"{line}\n" for line in lines)


def _usage_block() -> str:
    return next(code for language, code in _blocks() if language == "python" and "from my_checker" in code)


def checker_responder(messages) -> str:
    """The Checker's replies: problems that say "some" instead of a number are unsolvable; other agents as usual."""
    prompt = "\n".join(str(m.content) for m in messages if type(m).__name__ == "UserMessage")
    if '"solvable"' not in prompt:
        return pipeline_responder(messages)
    question = prompt.split("Problem:", 1)[1].split("\n\n", 1)[0]
    if " some " in question:
        return json.dumps({"solvable": False, "reason": "It never says how many there are at the start."})
    return json.dumps({"solvable": True, "reason": "Every number it needs is given."})


@pytest.fixture
def checker_package(tmp_path, monkeypatch):
    """The page's package on sys.path, with its entry point; the agent registry reads it afresh, and forgets it after."""
    site = tmp_path / "site"
    package = site / "my_checker"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    for name, code in _page_files().items():
        (site / name).write_text(code, encoding="utf-8")
    dist = site / "my_checker-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-checker\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(_page_entry_points(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    AGENTS.rediscover()
    import my_checker.checker

    yield my_checker.checker
    monkeypatch.undo()
    for module in [name for name in sys.modules if name == "my_checker" or name.startswith("my_checker.")]:
        sys.modules.pop(module)
    AGENTS.rediscover()


def _tree(*folders: Path) -> dict[str, bytes]:
    return {str(path.relative_to(REPO)): path.read_bytes() for folder in folders for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


def test_the_page_shows_a_card_a_template_a_class_and_one_entry_point():
    assert sorted(_page_files()) == sorted(FILES)
    assert _page_entry_points() == "[orca_math.agents]\nchecker = my_checker.checker:Checker\n"


def test_the_checker_is_registered_by_its_three_files_alone(checker_package):
    before = _tree(REPO / "orca_math", resource_dir("agents"), resource_dir("prompts"))
    shipped = [card.name for card in shipped_cards()]
    assert "checker" not in shipped and not (REPO / "orca_math" / "agents" / "checker.py").exists()

    classes = agent_classes()
    assert classes["checker"] is checker_package.Checker and issubclass(classes["checker"], Agent)
    assert list(classes) == [*shipped, "checker"]  # the shipped agents first, then the plug-ins
    assert AGENTS.get("checker").source == "my-checker"
    card = checker_package.Checker.default_card()
    assert card.path == Path(checker_package.__file__).with_name("checker.yaml")
    assert typical_completion_tokens()["checker"] == 40  # its dry-run hint, from its card
    assert set(origins()) == {"seed", "ask_me_anything", "suggester_editor"}  # it writes no problems
    assert _tree(REPO / "orca_math", resource_dir("agents"), resource_dir("prompts")) == before


def test_the_checker_replies_through_the_base_class(checker_package):
    client = ScriptedChatClient(["I think it is fine.", '{"solvable": false, "reason": "No starting count is given."}'])
    result = checker_package.Checker(client).run_sync(question="Ann has some apples and eats 2. How many are left?")
    assert (result.solvable, result.reason) == (False, "No starting count is given.")
    assert len(client.calls) == 2  # the reply without JSON was asked again, saying what was wrong
    assert "Ann has some apples" in client.calls[0]["messages"][-1].content
    with pytest.raises(AgentFailedError, match="checker"):
        checker_package.Checker(ScriptedChatClient(['{"solvable": "maybe"}'] * 3)).run_sync(question="What is 2 + 2?")


def test_the_verify_stage_keeps_what_the_checker_finds_solvable(checker_package, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    problems = [("p1", "Bo has 4 pens and buys 6 more. How many pens?"),
                ("p2", "Ann has some apples and eats 2. How many are left?"),
                ("p3", "A box holds 7 eggs and 1 more is added. How many eggs?")]
    seeds.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in problems), encoding="utf-8")
    namespace = {"__name__": "page_example"}
    # The page's own lines, on the scripted model instead of a paid one.
    exec(_usage_block().replace('"openai:gpt-4o-mini"', "model"), {**namespace, "model": ScriptedChatClient(responder=checker_responder)}, namespace)
    pipeline = namespace["pipeline"]
    pipeline.progress = False

    estimate = pipeline.estimate(seeds)
    verify = next(stage for stage in estimate.stages if stage.name == "verify")
    assert verify.calls == 3 and verify.completion_tokens == 3 * 40  # priced at the card's hint

    result = pipeline.run_sync(seeds, out=tmp_path / "out")
    rows = {row["id"]: row for row in datasets.load_from_disk(str(result.dataset_path))}
    assert sorted(rows) == ["p1", "p3"]
    assert all(row["verification"]["method"] == "solvable" and row["verified"] for row in rows.values())
    drops = [json.loads(line) for line in (tmp_path / "out" / "drops.jsonl").read_text().splitlines()]
    assert [(d["id"], d["reason"]) for d in drops] == [("p2", "unverified")]
    assert "It never says how many there are" in drops[0]["detail"]
    manifest = json.loads(next((tmp_path / "out").rglob("manifest.json")).read_text())
    assert "checker" in json.dumps(manifest)  # its card and template hashes are part of the run
