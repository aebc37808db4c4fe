"""Evaluation on any benchmark file: the Python API and `orca-math eval --benchmark-file`.

The file's golds are floats (-9867630.0, 12.5), as in a harder GSM8K variant with large, negative or
non-integer answers: they must be read as numbers, so the replies "-9867630" and "12.5" are equal.
"""

from __future__ import annotations

import json

import pytest

from orca_math.cli import main
from orca_math.data import BenchmarkError, load_custom
from orca_math.evaluate import benchmark_file, evaluate_sync
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer

ROWS = [
    {"problem": "A company lost 9867630 dollars. Write the change as a signed number.", "solution": -9867630.0},
    {"problem": "Half of 25 liters of water is poured out. How many liters are left?", "solution": 12.5},
    {"problem": "A train travels 3.5 km each minute for 4 minutes. How far does it go?", "solution": 14.0},
]
# What the student says for each question: the first two right, the third wrong.
REPLIES = {
    "lost 9867630": "The change is a loss, so it is negative.\nFinal answer: -9867630",
    "Half of 25": "25 / 2 = 12.5, so 12.5 liters are left.",
    "3.5 km": "3.5 * 4 = 15 km.\nFinal answer: 15",
}


def student(prompt: str) -> str:
    return next(reply for key, reply in REPLIES.items() if key in prompt)


@pytest.fixture
def hard_file(tmp_path):
    path = tmp_path / "hard_gsm8k.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return path


def scripted() -> ScriptedChatClient:
    return ScriptedChatClient(responder=lambda messages: student(str(messages[-1].content)))


def test_float_golds_are_read_as_numbers(hard_file):
    bench = benchmark_file(hard_file, question="problem", answer="solution", name="hard")
    assert bench.name == "hard"
    assert [item["gold"] for item in bench.items] == ["-9867630", "12.5", "14"]


def test_evaluate_takes_a_file_set_a_path_and_a_load_custom_dataset_in_one_table(hard_file, tmp_path):
    csv = tmp_path / "heldout.csv"
    csv.write_text("question,answer\nA company lost 9867630 dollars. Write the change as a signed number.,-9867630.0\n",
                   encoding="utf-8")
    sets = [
        benchmark_file(hard_file, question="problem", answer="solution", name="hard"),
        str(csv),  # a path: columns question and answer, named after the file
        load_custom(str(hard_file), question="problem", answer="solution", name="custom_hard"),
    ]
    result = evaluate_sync(scripted(), sets, grading="exact", out=tmp_path / "eval", progress=False)
    assert list(result.summary.scores) == ["hard", "heldout", "custom_hard"]
    assert result.summary.scores["hard"].correct == 2 and result.summary.scores["hard"].n == 3
    assert result.summary.scores["heldout"].correct == 1
    assert result.summary.scores["custom_hard"].correct == 2
    rows = {(row["benchmark"], row["gold"]): row for row in result.dataset}
    assert rows[("hard", "-9867630")]["correct"] and rows[("hard", "12.5")]["correct"]
    assert not rows[("hard", "14")]["correct"]
    assert "| hard " in result.table() and "| heldout " in result.table()
    summary = json.loads(result.files["summary"].read_text())
    assert summary["grading"] == "exact" and list(summary["benchmarks"]) == ["hard", "heldout", "custom_hard"]


def test_a_missing_column_is_one_sentence_that_lists_the_columns(hard_file):
    with pytest.raises(BenchmarkError) as caught:
        benchmark_file(hard_file, question="question", answer="solution")
    message = str(caught.value)
    assert message == f"no column 'question' in {hard_file.name}; found columns: problem, solution."


def test_a_column_that_mixes_numbers_and_text_loads(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"question": "q1", "answer": 12.5}) + "\n" + json.dumps({"question": "q2", "answer": "4"}) + "\n")
    rows = benchmark_file(path).items
    assert [row["gold"] for row in rows] == ["12.5", "4"]


# --------------------------------------------------------------------------- the CLI, on a loopback server


def server_reply(messages) -> str:
    return student(str(messages[-1]["content"]))


def eval_argv(server, hard_file, out, *extra: str) -> list[str]:
    return ["eval", "--model", server.base_url, "--model-name", "fault-model", "--benchmark-file", str(hard_file),
            "--question-column", "problem", "--answer-column", "solution", "--grading", "exact", "--out", str(out),
            "--no-progress", *extra]


def test_cli_evaluates_a_benchmark_file_with_its_columns_and_name(hard_file, tmp_path, capsys):
    out = tmp_path / "eval"
    with FaultServer(FaultConfig(reply=server_reply)) as server:
        status = main(eval_argv(server, hard_file, out, "--name", "hard"))
        asked = len(server.chat_requests())
    printed = capsys.readouterr().out
    assert asked == 3  # only the file's items: no built-in benchmark by default when a file is given
    assert status == 0, printed
    assert "| hard " in printed and "66.67%" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["hard"]["correct"] == 2 and summary["grading"] == "exact"


def test_cli_missing_column_fails_before_any_request(hard_file, tmp_path, capsys):
    with FaultServer(FaultConfig(reply=server_reply)) as server:
        argv = eval_argv(server, hard_file, tmp_path / "eval")
        argv[argv.index("problem")] = "q"
        assert main(argv) == 2
        assert server.chat_requests() == []
    err = capsys.readouterr().err
    assert f"no column 'q' in {hard_file.name}; found columns: problem, solution." in err


def test_cli_more_names_than_files_is_a_user_error(hard_file, tmp_path, capsys):
    with FaultServer(FaultConfig(reply=server_reply)) as server:
        assert main(eval_argv(server, hard_file, tmp_path / "eval", "--name", "a", "--name", "b")) == 2
    assert "2 --name given for 1 --benchmark-file" in capsys.readouterr().err


def test_cli_old_grader_flag_still_works_with_a_note_and_is_hidden(hard_file, tmp_path, capsys):
    with FaultServer(FaultConfig(reply=server_reply)) as server:
        argv = eval_argv(server, hard_file, tmp_path / "eval")
        argv[argv.index("--grading")] = "--grader"
        assert main(argv) == 0
    captured = capsys.readouterr()
    assert "--grader is now --grading" in captured.err and "| hard_gsm8k " in captured.out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = capsys.readouterr().out
    assert "--grading" in help_text and "--grader " not in help_text and "--benchmark-file" in help_text
