"""The wheel carries the agent cards and prompt templates, and no top-level `agents` package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    return next(out.glob("orca_math-*.whl"))


def test_wheel_ships_cards_and_templates_inside_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    agents = sorted(path.stem for path in (REPO / "agents").glob("*.yaml"))
    assert agents  # every card in the source folder, whatever their number
    for agent in agents:
        assert f"orca_math/_resources/agents/{agent}.yaml" in names
        assert f"orca_math/_resources/prompts/{agent}.jinja" in names
    assert not any(name.startswith(("agents/", "prompts/")) for name in names), "no top-level agents/ or prompts/ in the wheel"


def test_installed_wheel_finds_its_cards_outside_the_repo(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)
    script = (
        "import orca_math, orca_math.resources as r;"
        "from orca_math.agents import shipped_cards, Teacher;"
        "from orca_math.testing import ScriptedChatClient;"
        "print(orca_math.__file__); print(r.resource_dir('agents')); print(len(shipped_cards()));"
        "print(Teacher(ScriptedChatClient(['Final answer: 4'])).run_sync(question='2+2?').final_answer)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    # Run from an empty folder so nothing can come from the source checkout.
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    module, agents_dir, count, answer = done.stdout.split()
    assert module.startswith(str(target)) and agents_dir.startswith(str(target))
    assert (count, answer) == (str(len(list((REPO / "agents").glob("*.yaml")))), "4")
    cli = subprocess.run([sys.executable, "-m", "orca_math", "solve", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert cli.returncode == 0 and "--seeds" in cli.stdout


def test_wheel_ships_the_viewer_page(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("index.html", "app.js", "style.css"):
        assert f"orca_math/view/static/{name}" in names, f"orca-math view would serve no {name}"
