"""The evaluation harness on a scripted student, resume and crashes, and `orca-math eval` end to end."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from orca_math.cli import main
from orca_math.data import BenchmarkError, load_benchmark
from orca_math.engine.client import ManagedClient, RetryPolicy
from orca_math.engine.runner import RunStopped
from orca_math.evaluate import ITEM_FEATURES, evaluate_sync
from orca_math.models.errors import ServerError
from orca_math.testing import ScriptedChatClient

BENCHMARKS_DIR = os.environ["ORCA_MATH_BENCHMARKS_DIR"]  # set by tests/conftest.py
COLUMNS = ["benchmark", "id", "question", "gold", "response", "extracted_answer", "extraction_rule",
           "verdict", "correct", "method", "analysis", "audit_verdict", "audit_error", "error"]


def _items() -> dict[str, dict]:
    """question -> item of the first 5 GSM8K and SVAMP test items."""
    rows = {}
    for name in ("gsm8k", "svamp"):
        for index, row in enumerate(load_benchmark(name, path=BENCHMARKS_DIR, limit=5)):
            rows[row["question"]] = {**row, "index": index}
    return rows


ITEMS = _items()
# GSM8K: items 0, 2, 4 answered right; SVAMP: item 0 only. Item 1 of each replies without a
# "Final answer:" line (graded as is), item 3 of SVAMP gives no answer at all.
RIGHT = {(b, i) for b, i in [("gsm8k", 0), ("gsm8k", 2), ("gsm8k", 4), ("svamp", 0)]}
EXPECTED_PASS = {"gsm8k": 3 / 5, "svamp": 1 / 5}


def _prompt(messages) -> str:
    return str(messages[-1].content)


def _question_of(prompt: str) -> dict:
    return next(item for question, item in ITEMS.items() if question in prompt)


def student_reply(messages) -> str:
    item = _question_of(_prompt(messages))
    key = (item["benchmark"], item["index"])
    answer = item["gold"] if key in RIGHT else str(float(item["gold"]) + 7).removesuffix(".0")
    if key == ("svamp", 3):
        return "I am not able to solve this one."
    if item["index"] == 1:
        return f"Working through it step by step.\nThe answer is {answer}."
    return f"Working through it step by step.\nFinal answer: {answer}"


def responder(grader_label: str = "Incorrect"):
    def reply(messages):
        if "Final Verdict" in _prompt(messages):
            return f"Error analysis: Judged by the scripted grader.\nFinal Verdict: {grader_label}"
        return student_reply(messages)

    return reply


def run(client, tmp_path, **kwargs):
    options = dict(limit=5, grading="exact", out=tmp_path / "eval", path=BENCHMARKS_DIR, progress=False, concurrency=3)
    return evaluate_sync(client, ["gsm8k", "svamp"], **{**options, **kwargs})


def student_calls(client) -> int:
    return sum("Final Verdict" not in _prompt(call["messages"]) for call in client.calls)


# --------------------------------------------------------------------------- scores and files


def test_pass_at_1_per_benchmark_with_exact_grading(tmp_path):
    client = ScriptedChatClient(responder=responder())
    result = run(client, tmp_path)
    for name, expected in EXPECTED_PASS.items():
        assert result.summary.pass_at_1(name) == pytest.approx(expected)
        assert result.summary.scores[name].n == 5 and result.summary.scores[name].exact == 5
    assert student_calls(client) == len(client.calls) == 10  # exact mode never asks a grader
    rows = result.dataset.to_list()
    assert result.dataset.column_names == COLUMNS and result.dataset.features == ITEM_FEATURES
    assert {(r["benchmark"], int(ITEMS[r["question"]]["index"])) for r in rows if r["correct"]} == RIGHT
    no_line = [r for r in rows if ITEMS[r["question"]]["index"] == 1]
    assert {r["extraction_rule"] for r in no_line} == {"the_answer_is"} and all(r["error"] is None for r in no_line)
    silent = next(r for r in rows if r["benchmark"] == "svamp" and ITEMS[r["question"]]["index"] == 3)
    assert silent["verdict"] == "Incorrect" and "could not tell" in silent["analysis"]
    assert [r["id"] for r in rows] == [item["id"] for item in ITEMS.values()]  # benchmark order kept


def test_output_files_hold_the_items_summary_and_table(tmp_path):
    result = run(ScriptedChatClient(responder=responder()), tmp_path)
    out = tmp_path / "eval"
    lines = (out / "items.jsonl").read_text().splitlines()
    assert len(lines) == 10 and list(json.loads(lines[0])) == COLUMNS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["gsm8k"]["pass@1"] == pytest.approx(0.6)
    assert summary["overall"]["correct"] == 4 and summary["grading"] == summary["grader"] == "exact"  # the old key kept for one release
    table = (out / "table.md").read_text()
    assert table.strip() == result.table()
    assert "| gsm8k" in table and "60.00%" in table and "20.00%" in table and "| overall" in table
    assert result.files["items"] == out / "items.jsonl" and result.run_dir.parent == out / "runs"


def test_hybrid_asks_the_llm_grader_only_where_the_checker_cant_tell(tmp_path):
    student = ScriptedChatClient(responder=student_reply)
    judge = ScriptedChatClient(responder=responder("Correct"))
    result = run(student, tmp_path, grading="hybrid", grader_model=judge)
    assert len(judge.calls) == 1  # SVAMP item 3, which states no answer
    methods = Counter(result.dataset["method"])
    assert methods == {"exact": 9, "llm": 1}
    assert result.summary.scores["svamp"].llm == 1 and result.summary.pass_at_1("svamp") == pytest.approx(2 / 5)
    assert f"Final answer: {ITEMS[next(q for q in ITEMS if ITEMS[q]['benchmark'] == 'svamp' and ITEMS[q]['index'] == 3)]['gold']}" \
        in _prompt(judge.calls[0]["messages"])


def test_llm_mode_grades_everything_and_shows_gsm8k_its_worked_solution(tmp_path):
    student = ScriptedChatClient(responder=student_reply)
    judge = ScriptedChatClient(responder=responder("Correct"))
    result = run(student, tmp_path, grading="llm", grader_model=judge)
    assert len(judge.calls) == 10 and set(result.dataset["method"]) == {"llm"}
    assert result.summary.pass_at_1("gsm8k") == 1.0
    gsm8k_prompts = [_prompt(c["messages"]) for c in judge.calls if "####" in _prompt(c["messages"])]
    assert len(gsm8k_prompts) == 5  # the gold worked solution, ending in "#### N"


def test_the_grader_defaults_to_the_student_model_and_audits(tmp_path):
    client = ScriptedChatClient(responder=responder("Correct"))
    result = run(client, tmp_path, grading="hybrid", audit_rate=1.0)
    score = result.summary.overall
    assert score.audited == 9 and score.audit_agreements == 4  # the grader says Correct; 4 are
    assert len(client.calls) == 10 + 1 + 9


def test_audit_replies_that_never_parse_are_counted_not_failures(tmp_path):
    def reply(messages):
        return "no verdict" if "Final Verdict" in _prompt(messages) else student_reply(messages)

    result = run(ScriptedChatClient(responder=reply), tmp_path, audit_rate=1.0)  # exact mode, audited
    # Every decided verdict is audited; SVAMP item 3 (no answer, "can't tell") is not a decided one.
    assert result.summary.overall.failures == 0 and result.summary.overall.audit_failures == 9
    assert sum(bool(row["audit_error"]) for row in result.dataset) == 9
    assert all(row["audit_verdict"] is None and row["verdict"] for row in result.dataset)
    assert "9 unparsed" in result.table()


# --------------------------------------------------------------------------- failures


def test_model_errors_after_retries_and_unparsable_grades_are_failure_rows(tmp_path):
    failing = next(q for q in ITEMS if ITEMS[q]["benchmark"] == "gsm8k" and ITEMS[q]["index"] == 2)

    def reply(messages):
        if failing in _prompt(messages) and "Final Verdict" not in _prompt(messages):
            return ServerError("the scripted server answered 500; it may pass.")
        return "no verdict here" if "Final Verdict" in _prompt(messages) else student_reply(messages)

    inner = ScriptedChatClient(responder=reply)
    client = ManagedClient(inner, retry=RetryPolicy(max_attempts=2, initial_wait=0, jitter=0))
    result = run(client, tmp_path, grading="hybrid")
    errors = {r["id"]: r["error"] for r in result.dataset if r["error"]}
    assert len(errors) == 2
    assert any("after 2 attempt" in e for e in errors.values())
    assert any("grader's reply never parsed" in e for e in errors.values())
    assert result.summary.scores["gsm8k"].failures == 1 and result.summary.scores["svamp"].failures == 1
    assert result.summary.pass_at_1("gsm8k") == pytest.approx(2 / 5)  # a failure counts as not correct
    assert all(r["verdict"] is None and r["correct"] is False for r in result.dataset if r["error"])
    assert sum(failing in _prompt(c["messages"]) for c in inner.calls) == 2  # retried once, then recorded


def test_failed_items_are_retried_on_rerun(tmp_path):
    def flaky(messages):
        if "Final Verdict" in _prompt(messages):
            return "unparsable"
        return student_reply(messages)

    client = ScriptedChatClient(responder=flaky)
    first = run(client, tmp_path, grading="hybrid")
    assert first.summary.overall.failures == 1
    calls = len(client.calls)
    client._responder = responder("Incorrect")  # the grader recovers
    second = run(client, tmp_path, grading="hybrid")
    assert second.resumed and second.summary.overall.failures == 0
    # Only the failed item's grading is asked again: its student answer is a finished step of its own.
    assert len(client.calls) - calls == 1


# --------------------------------------------------------------------------- resume


def test_rerun_resumes_with_no_new_calls_and_the_same_results(tmp_path):
    client = ScriptedChatClient(responder=responder())
    first = run(client, tmp_path)
    calls = len(client.calls)
    second = run(client, tmp_path, concurrency=1)  # concurrency does not change the run key
    assert len(client.calls) == calls and second.resumed and not first.resumed
    assert second.dataset.to_list() == first.dataset.to_list() and second.run_key == first.run_key
    fresh = run(client, tmp_path, fresh=True)
    assert len(client.calls) == 2 * calls and not fresh.resumed


def test_a_different_config_is_a_different_run(tmp_path):
    client = ScriptedChatClient(responder=responder())
    first = run(client, tmp_path)
    other = run(client, tmp_path, limit=4)
    assert other.run_key != first.run_key and other.dataset.num_rows == 8


class _Crash(RuntimeError):
    stops_run = True  # the runner stops at once and records nothing for items in flight


def test_a_crash_mid_run_then_rerun_completes_each_item_exactly_once(tmp_path):
    seen = Counter()

    def crashing(messages):
        if student_calls_made() >= 6:
            return _Crash("the process died")
        seen[_question_of(_prompt(messages))["id"]] += 1
        return student_reply(messages)

    client = ScriptedChatClient(responder=crashing)

    def student_calls_made():
        return len(client.calls) - 1  # this call is already in client.calls

    with pytest.raises(RunStopped, match="the process died"):
        run(client, tmp_path, concurrency=2)
    done = sum(seen.values())
    assert 0 < done <= 6

    again = ScriptedChatClient(responder=student_reply)
    result = run(again, tmp_path, concurrency=2)
    assert result.resumed and result.dataset.num_rows == 10
    assert Counter(result.dataset["id"]) == Counter({item["id"]: 1 for item in ITEMS.values()})
    run_dir = result.run_dir / "stages"
    for stage in ("answer", "grade"):  # one line per item in each stage's checkpoint, no duplicates
        ok_lines = [json.loads(line)["key"] for line in (run_dir / f"{stage}.jsonl").read_text().splitlines()]
        assert sorted(ok_lines) == sorted(item["id"] for item in ITEMS.values())
    assert len(again.calls) == 10 - done
    assert result.summary.pass_at_1("gsm8k") == pytest.approx(0.6)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"benchmarks": ["gsm8k", "mmlu"]}, BenchmarkError, "unknown benchmark 'mmlu'; known: gsm8k, svamp"),
        ({"benchmarks": []}, BenchmarkError, "no benchmark given"),
        ({"grading": "fuzzy"}, ValueError, "unknown grading mode 'fuzzy'"),
        ({"limit": 0}, ValueError, "limit must be a positive integer"),
        ({"concurrency": 0}, ValueError, "concurrency must be a positive integer"),
        ({"sampling": "hot"}, ValueError, "sampling must be a dict"),
    ],
)
def test_bad_arguments_are_clear_errors_before_any_call(tmp_path, kwargs, error, message):
    client = ScriptedChatClient(responder=responder())
    benchmarks = kwargs.pop("benchmarks", ["gsm8k"])
    with pytest.raises(error, match=message):
        evaluate_sync(client, benchmarks, out=tmp_path, path=BENCHMARKS_DIR, progress=False, **kwargs)
    assert client.calls == []


def test_benchmarks_as_a_comma_separated_string(tmp_path):
    result = evaluate_sync(ScriptedChatClient(responder=responder()), "GSM8K, svamp", limit=1, grading="exact",
                           out=tmp_path, path=BENCHMARKS_DIR, progress=False)
    assert list(result.summary.scores) == ["gsm8k", "svamp"]


def test_cli_unknown_benchmark_is_one_sentence_and_exit_2(tmp_path, capsys):
    code = main(["eval", "--model", "local", "--benchmarks", "gsm8k,nope", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: unknown benchmark 'nope'; known: gsm8k") and len(err.splitlines()) == 1


def test_cli_bad_limit_is_a_user_error(tmp_path, capsys):
    code = main(["eval", "--model", "local", "--benchmarks", "svamp", "--limit", "0", "--grading", "exact",
                 "--out", str(tmp_path)])
    assert code == 2 and "limit must be a positive integer" in capsys.readouterr().err


# --------------------------------------------------------------------------- real server


@pytest.mark.integration
def test_cli_eval_end_to_end_against_llama_cpp(llama_server, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "--model", llama_server, "--benchmarks", "gsm8k,svamp", "--limit", "5", "--grading", "exact",
            "--out", str(out), "--max-tokens", "48", "--concurrency", "2", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| benchmark" in printed and "| gsm8k" in printed and "| svamp" in printed and "pass@1" in printed
    assert f"per-item results: {out / 'items.jsonl'} (10 rows)" in printed
    rows = [json.loads(line) for line in Path(out / "items.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(list(row) == COLUMNS for row in rows)
    assert all(row["error"] is None and row["method"] == "exact" and row["response"] for row in rows)
