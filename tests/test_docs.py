"""The docs site: generated reference pages are current, and `mkdocs build --strict` passes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GEN_DOCS = REPO / "scripts" / "gen_docs.py"


def _gen_docs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GEN_DOCS), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_generated_pages_are_current():
    result = _gen_docs("--check")
    assert result.returncode == 0, result.stderr


def test_check_reports_a_stale_page_and_regenerating_fixes_it(tmp_path):
    for name in ("agents.md", "cli.md"):
        (tmp_path / name).write_text((REPO / "docs" / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "cli.md").write_text("# CLI reference\n\nedited by hand\n", encoding="utf-8")

    stale = _gen_docs("--check", "--docs-dir", str(tmp_path))
    assert stale.returncode == 1
    assert "cli.md" in stale.stderr and "agents.md" not in stale.stderr
    assert "edited by hand" in (tmp_path / "cli.md").read_text(encoding="utf-8"), "--check must not write"

    assert _gen_docs("--docs-dir", str(tmp_path)).returncode == 0
    assert _gen_docs("--check", "--docs-dir", str(tmp_path)).returncode == 0


def test_generated_pages_cover_every_card_and_command():
    from orca_math.agents import shipped_cards
    from orca_math.cli import build_parser

    agents_page = (REPO / "docs" / "agents.md").read_text(encoding="utf-8")
    for card in shipped_cards():
        assert f"(`{card.name}`)" in agents_page
        assert card.template in agents_page
    cli_page = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name, parser in commands.items():
        assert f"\n## {name}\n" in cli_page
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in cli_page, f"{name} {flag} is missing from docs/cli.md"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
                    reason="mkdocs-material is not installed (extra 'docs')")
def test_mkdocs_build_strict_passes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "agents" / "index.html").exists()
    assert (tmp_path / "site" / "cli" / "index.html").exists()
