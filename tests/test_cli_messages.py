"""Messages a user reads at the end of a command: counts in good English, no "(0 failed, reasons in …)",
and an empty run's card and report that say what happened instead of claiming a stage or folder is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orca_math.cli import main
from orca_math.cli.outcome import counted
from orca_math.pipeline import Filter, Pipeline, Solve, Verify
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer


def _seeds(path, n):
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Bo has {i} cards and gets 2 more. How many?",
                                        "answer": str(i + 2)}) + "\n" for i in range(n)))
    return path


def _solve(server, seeds, out):
    return main(["solve", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name", "fault-model",
                 "--no-progress"])


def test_counted_says_one_problem_and_two_problems():
    assert counted(1, "problems") == "1 problem"
    assert counted(2, "problems") == "2 problems"
    assert counted(0, "samples") == "0 samples"
    assert counted(1, "samples or labels") == "1 sample or label"


def test_one_failed_problem_is_one_problem(tmp_path, capsys):
    with FaultServer(FaultConfig(rate_bad_format=1.0)) as server:
        code = _solve(server, _seeds(tmp_path / "s.jsonl", 1), tmp_path / "o.jsonl")
    captured = capsys.readouterr()
    assert code == 1
    assert "solved 0 of 1 problem (1 failed, reasons in" in captured.out
    assert "1 problem failed (reasons in" in captured.err
    assert "1 problems" not in captured.err + captured.out


def test_a_run_without_failures_names_no_failure_file(tmp_path, capsys):
    with FaultServer(FaultConfig()) as server:
        code = _solve(server, _seeds(tmp_path / "s.jsonl", 3), tmp_path / "o.jsonl")
    out = capsys.readouterr().out
    assert code == 0
    assert "solved 3 of 3 problems\n" in out and "0 failed" not in out and "reasons in" not in out


@pytest.fixture(scope="module")
def empty_run(tmp_path_factory):
    """A finished run whose every problem failed at the Teacher: the stages exist, the dataset has no rows."""
    out = tmp_path_factory.mktemp("empty") / "out"
    client = ScriptedChatClient(responder=lambda messages: "I cannot tell.")
    seeds = _seeds(tmp_path_factory.mktemp("seeds") / "s.jsonl", 2)
    Pipeline([Solve(), Verify(), Filter()], model=client, managed=False, progress=False).run_sync(seeds, out=out)
    return out


def test_the_card_of_an_empty_run_says_it_has_no_rows(empty_run):
    card = (empty_run / "README.md").read_text()
    assert "The dataset has no rows: every problem was dropped or failed" in card
    assert "was not found" not in card and "no `origin` column" not in card


def test_the_report_of_an_empty_run_does_not_deny_its_stages(empty_run, capsys):
    assert main(["report", str(empty_run), "--out", str(empty_run / "r")]) == 0
    page = (empty_run / "r" / "report.html").read_text()
    assert "The verify stage checked no problem" in page and "the run has no verify stage" not in page
    assert "No problem was solved" in page and "has no solve or verify" not in page


def test_report_without_matplotlib_names_the_extra(empty_run, tmp_path):
    # A fresh interpreter where `import matplotlib` fails, as after `make demo` (no report extra).
    script = ("import sys; sys.modules['matplotlib'] = None; from orca_math.cli import main; "
              f"sys.exit(main(['report', {str(empty_run)!r}, '--out', {str(tmp_path / 'r')!r}]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "matplotlib, which is not installed: pip install 'orca-math[report]'" in done.stderr
    assert "Traceback" not in done.stderr
