"""The visual report: sections from a real run folder, missing data, evaluation folders, and a
headless Chromium check that the page renders with every image loaded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orca_math.cli import main
from orca_math.readers import GenerationReader
from orca_math.report import OutputFolder, ReportError, write_report, write_run_report
from orca_math.report.html import answer_type, difficulty_groups
from tests._report_helpers import make_evaluation_folder, make_generation_run

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    return make_generation_run(tmp_path_factory.mktemp("report") / "out")


def _images(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))


def _section(page: Path, title: str) -> str:
    text = page.read_text(encoding="utf-8")
    start = text.index(f"<h2>{title}</h2>")
    end = text.find("<section>", start)
    return text[start : end if end != -1 else len(text)]


def test_generation_report_has_every_chart_beside_the_page(run_out, tmp_path):
    page = write_report(run_out, out=tmp_path / "rep")
    assert page == tmp_path / "rep" / "report.html"
    images = _images(page)
    assert images == ["funnel.png", "difficulty.png", "answer_types.png", "tokens.png", "verification.png"]
    for name in images:
        assert (page.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = re.findall(r'<p class="missing">([^<]*)</p>', page.read_text(encoding="utf-8"))
    assert missing == ["This run did not check the data against benchmark test sets."]


def test_report_tables_match_the_run(run_out, tmp_path):
    page = write_report(run_out, out=tmp_path / "rep")
    summary = json.loads((run_out / "summary.json").read_text())
    funnel = _section(page, "Stage funnel")
    for stage in summary["funnel"]["stages"]:
        assert f"<td>{stage['name']}</td><td>{stage['inputs']}</td><td>{stage['outputs']}</td>" in funnel
    assert "<td>unsolvable</td><td>1</td>" in funnel
    difficulty = _section(page, "Difficulty before and after hardening")
    # Seeds were answered right (100%), round 2 answers are longer than round 1's, which are longer than the seeds'.
    assert "<td>seed (round 0)</td><td>3</td>" in difficulty and "<td>100.0%</td>" in difficulty
    types = _section(page, "Answer types")
    assert "<td>non-numeric</td><td>1</td><td>0</td>" in types  # solved once, filtered out of the final data
    assert "<td>negative</td><td>1</td><td>1</td>" in types
    assert "No cost was recorded" in _section(page, "Tokens and cost per stage")
    assert "<td>known_target</td>" in _section(page, "Grader methods and agreement")


def test_the_report_reads_the_rows_through_the_viewers_reader(run_out, tmp_path, monkeypatch):
    """One reader module for the report and `orca-math view` (#26): the report's solved rows are the reader's."""
    read = []
    original = GenerationReader.solved_rows

    def spy(self):
        rows = original(self)
        read.append((self.run_dir, len(rows)))
        return rows

    solved = len(original(GenerationReader(run_out)))
    monkeypatch.setattr(GenerationReader, "solved_rows", spy)
    write_run_report(run_out, out=tmp_path / "rep")
    assert solved and read == [(Path(json.loads((run_out / "summary.json").read_text())["run_dir"]), solved)]


def test_difficulty_grows_with_hardening_rounds(run_out):
    groups = {g["label"]: g for g in difficulty_groups(GenerationReader(run_out).solved_rows())}
    assert set(groups) == {"seed (round 0)", "round 1", "round 2", "ask-me-anything"}
    assert groups["seed (round 0)"]["mean_chars"] < groups["round 1"]["mean_chars"] < groups["round 2"]["mean_chars"]
    assert groups["seed (round 0)"]["mean_steps"] == 3 and groups["round 2"]["mean_steps"] == 9
    assert groups["seed (round 0)"]["agreement"] == 1.0
    assert groups["ask-me-anything"]["agreement"] == pytest.approx(5 / 6)
    assert groups["round 1"]["agreement"] is None  # no known answer and one solution: nothing to check


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("12", "integer"), ("7.0", "integer"), ("0.75", "decimal"), ("1/2", "fraction"), ("\\frac{3}{4}", "fraction"),
     ("-3", "negative"), ("-0.5", "negative"), ("many eggs", "non-numeric"), ("", "non-numeric"), (None, "non-numeric")],
)
def test_answer_type(answer, kind):
    assert answer_type(answer) == kind


def test_cost_and_decontamination_when_the_summary_has_them(run_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    summary = json.loads((out / "summary.json").read_text())
    for stage in summary["funnel"]["stages"]:
        stage["cost_usd"] = 0.25
    summary["decontamination"] = {"method": "13-gram overlap", "action": "drop", "references": {"gsm8k": 1319},
                                  "checked": 15, "contaminated": 2, "per_benchmark": {"gsm8k": 2}}
    (out / "summary.json").write_text(json.dumps(summary))
    page = write_report(out)
    tokens = _section(page, "Tokens and cost per stage")
    assert "<th>cost (USD)</th>" in tokens and "<td>0.25</td>" in tokens and "No cost was recorded" not in tokens
    decontamination = _section(page, "Decontamination")
    assert "2 of 15 rows overlapped" in decontamination and "<td>gsm8k</td><td>1319</td><td>2</td>" in decontamination


def test_missing_data_is_reported_not_raised(run_out, tmp_path):
    out = tmp_path / "bare"
    out.mkdir()
    summary = json.loads((run_out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({"run_key": summary["run_key"], "funnel": summary["funnel"]}))
    page = write_report(out)
    assert page == out / "report" / "report.html"
    assert "No solved problems found" in _section(page, "Difficulty before and after hardening")
    assert "No final answers found" in _section(page, "Answer types")
    assert "No verification results found" in _section(page, "Grader methods and agreement")
    assert _images(page) == ["funnel.png", "tokens.png"]
    (out / "summary.json").write_text(json.dumps({"run_key": "x"}))
    assert "No funnel was recorded" in write_report(out).read_text(encoding="utf-8")


def test_evaluation_report(tmp_path):
    page = write_report(make_evaluation_folder(tmp_path / "eval"))
    assert OutputFolder.open(tmp_path / "eval").kind == "evaluation"
    assert _images(page) == ["accuracy.png", "grader_methods.png", "iterations.png"]
    assert "<td>gsm8k</td><td>50</td><td>40</td><td>80.0%</td>" in _section(page, "Accuracy per benchmark")
    assert "<td>gsm8k</td><td>35</td><td>15</td><td>90.0%</td>" in _section(page, "Grader methods and agreement")
    assert "<td>2</td><td>m2</td><td>80.0%</td><td>90.0%</td>" in _section(page, "Accuracy per iteration")
    single = write_report(make_evaluation_folder(tmp_path / "eval1", iterations=False))
    assert "has no learning-loop iterations" in _section(single, "Accuracy per iteration")


def test_run_folder_inside_the_output_folder_is_accepted(run_out):
    run_dir = next((run_out / "runs").iterdir())
    folder = OutputFolder.open(run_dir)
    assert folder.path == run_out and folder.manifest["run_key"] == run_dir.name


def test_bad_folders_fail_with_one_sentence(tmp_path, capsys):
    with pytest.raises(ReportError, match="is not a folder"):
        write_report(tmp_path / "nope")
    with pytest.raises(ReportError, match="no summary.json"):
        write_report(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="JSON object"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_cli_report_prints_the_path(run_out, tmp_path, capsys):
    assert main(["report", str(run_out), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "report.html")


def _chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def _chromium_args(binary: str, profile: Path) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]


def test_page_renders_in_headless_chromium_with_every_image_loaded(run_out, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary found (apt-get install chromium)")
    page = write_report(run_out, out=tmp_path / "rep")
    url = page.resolve().as_uri()
    shot = tmp_path / "report.png"
    subprocess.run([*_chromium_args(binary, tmp_path / "profile"), f"--screenshot={shot}", "--window-size=1200,2000", url],
                   check=True, capture_output=True, timeout=60)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    dom = subprocess.run([*_chromium_args(binary, tmp_path / "profile2"), "--virtual-time-budget=5000", "--dump-dom", url],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    total = len(_images(page))
    assert f'data-images-total="{total}"' in body
    assert f'data-images-loaded="{total}"' in body, body


def test_report_of_a_real_evaluation_folder(tmp_path):
    import os

    from orca_math.evaluate import evaluate_sync
    from orca_math.testing import ScriptedChatClient

    def reply(messages):
        if "Final Verdict" in str(messages[-1].content):
            return "Error analysis: the final answers differ.\nFinal Verdict: Incorrect"
        return "Add the numbers.\nFinal answer: 18"

    evaluate_sync(ScriptedChatClient(responder=reply), ["gsm8k"], limit=3, grader="exact", audit_rate=1.0, out=tmp_path / "eval",
                  path=os.environ["ORCA_MATH_BENCHMARKS_DIR"], progress=False, managed=False)
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())["benchmarks"]["gsm8k"]
    page = write_report(tmp_path / "eval")
    accuracy = _section(page, "Accuracy per benchmark")
    assert f"<td>gsm8k</td><td>3</td><td>{summary['correct']}</td><td>{summary['pass@1']:.1%}</td>" in accuracy
    grader = _section(page, "Grader methods and agreement")
    assert f"<td>gsm8k</td><td>{summary['exact']}</td><td>{summary['llm']}</td><td>{summary['audit_agreements']}/3" in grader
    assert _images(page) == ["accuracy.png", "grader_methods.png"]


def _captured_figures(monkeypatch):
    from orca_math.report import charts

    figures = []

    def keep(fig, path):
        figures.append(fig)
        return path

    monkeypatch.setattr(charts, "_save", keep)
    return figures


def test_an_empty_final_dataset_is_labelled_n_0(monkeypatch, tmp_path):
    from collections import Counter

    from orca_math.report import charts

    figures = _captured_figures(monkeypatch)
    charts.answer_types_chart({"solved": Counter(integer=2), "final dataset": Counter()}, ["integer"], tmp_path / "a.png")
    labels = [text.get_text() for text in figures[0].axes[0].get_legend().get_texts()]
    assert labels == ["solved (n=2)", "final dataset (n=0)"]


def test_a_free_model_gets_no_cost_axis_and_a_paid_one_starts_at_zero(monkeypatch, tmp_path):
    from orca_math.report import charts

    figures = _captured_figures(monkeypatch)
    stages = [{"name": "solve", "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0}]
    charts.tokens_chart(stages, tmp_path / "t.png")
    assert len(figures[-1].axes) == 1
    charts.tokens_chart([{**stages[0], "cost_usd": 0.02}], tmp_path / "t.png")
    assert len(figures[-1].axes) == 2 and figures[-1].axes[1].get_ylim()[0] == 0


def test_a_learning_loop_folder_names_its_base_model_without_question_marks(tmp_path):
    out = tmp_path / "loop"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"iterations": [
        {"iteration": 1, "model": "loop/iteration-1/model", "benchmarks": {"holdout": 0.5}, "method": "sft"},
        {"iteration": 2, "model": "loop/iteration-2/model", "benchmarks": {"holdout": 0.6}, "method": "kto"},
    ]}))
    (out / "learner.json").write_text(json.dumps({"base_model": "models/tiny-mistral"}))
    page = write_report(out).read_text(encoding="utf-8")
    meta = re.search(r'<p class="meta">(.*?)</p>', page).group(1)
    assert "learning loop in" in meta and "2 iteration(s)" in meta and "base model <code>models/tiny-mistral</code>" in meta
    assert "?" not in meta and "unknown" not in meta
