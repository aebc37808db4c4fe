"""Sampling k responses per problem, and labelling them against the teacher's solution."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from orca_math.grading import AnswerGrader
from orca_math.learn import label_attempts, read_attempts, sample_responses
from orca_math.records import Attempt
from orca_math.testing.scripted import ScriptedChatClient

PROBLEMS = [
    {"id": "p1", "question": "Ann has 2 apples and buys 3 more. How many apples?", "answer": "2 + 3 = 5\n#### 5"},
    {"id": "p2", "question": "Bob has 10 pens and loses 4. How many pens?", "answer": "10 - 4 = 6\nFinal answer: 6"},
]


def _counting_responder():
    """Replies 'Final answer: <n>' where n counts calls, so every sample is distinct."""
    counter = {"n": 0}

    def respond(messages):
        counter["n"] += 1
        return f"I think it is {counter['n']}.\nFinal answer: {counter['n']}"

    return respond


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_samples_k_rows_per_problem_with_distinct_indices_and_seeds(tmp_path):
    client = ScriptedChatClient(responder=_counting_responder())
    path = asyncio.run(sample_responses(client, PROBLEMS, k=3, out=tmp_path, progress=False, seed=True))
    rows = [Attempt.model_validate(row) for row in _read(path)]
    assert [(r.problem_id, r.sample_index) for r in rows] == [("p1", 0), ("p1", 1), ("p1", 2), ("p2", 0), ("p2", 1), ("p2", 2)]
    assert len({r.response for r in rows}) == 6
    assert all(r.label is None for r in rows)
    assert rows[3].reference == PROBLEMS[1]["answer"] and rows[3].question == PROBLEMS[1]["question"]
    assert rows[0].final_answer == rows[0].response.rsplit(" ", 1)[-1]
    # The question is the only (user) message; the paper's sampling parameters go with it.
    first = client.calls[0]
    assert [type(m).__name__ for m in first["messages"]] == ["UserMessage"]
    assert first["messages"][0].content in {p["question"] for p in PROBLEMS}
    assert first["extra_create_args"]["temperature"] == 0.7 and first["extra_create_args"]["top_p"] == 0.95
    seeds = sorted((c["messages"][0].content, c["extra_create_args"]["seed"]) for c in client.calls)
    assert len(set(seeds)) == 6 and {s for _, s in seeds} == {0, 1, 2}
    assert "orca_math_sample" not in first["extra_create_args"]  # stripped before the model call


def test_scripted_client_gets_no_seed_by_default(tmp_path):
    client = ScriptedChatClient(responder=_counting_responder())
    asyncio.run(sample_responses(client, PROBLEMS[:1], k=2, out=tmp_path, progress=False))
    assert all("seed" not in call["extra_create_args"] for call in client.calls)


def test_resume_skips_done_samples_and_retries_failures(tmp_path):
    flaky = ScriptedChatClient(
        [RuntimeError("boom")], responder=_counting_responder()
    )
    path = asyncio.run(sample_responses(flaky, PROBLEMS, k=2, out=tmp_path, progress=False, concurrency=1))
    assert len(_read(path)) == 3
    failures = _read(tmp_path / "failures.jsonl")
    assert len(failures) == 1 and "boom" in failures[0]["reason"] and failures[0]["id"] == "p1#0"
    assert json.loads((tmp_path / "summary.json").read_text())["counts"]["failed"] == 1

    again = ScriptedChatClient(responder=_counting_responder())
    path = asyncio.run(sample_responses(again, PROBLEMS, k=2, out=tmp_path, progress=False))
    assert len(again.calls) == 1  # only the failed sample is asked again
    assert [(r["problem_id"], r["sample_index"]) for r in _read(path)] == [("p1", 0), ("p1", 1), ("p2", 0), ("p2", 1)]
    assert _read(tmp_path / "failures.jsonl") == []

    third = ScriptedChatClient(responder=_counting_responder())
    asyncio.run(sample_responses(third, PROBLEMS, k=2, out=tmp_path, progress=False))
    assert third.calls == []


def test_changed_settings_start_a_new_run(tmp_path):
    asyncio.run(sample_responses(ScriptedChatClient(responder=_counting_responder()), PROBLEMS, k=1, out=tmp_path,
                                 progress=False))
    hotter = ScriptedChatClient(responder=_counting_responder())
    asyncio.run(sample_responses(hotter, PROBLEMS, k=1, temperature=1.0, out=tmp_path, progress=False))
    assert len(hotter.calls) == 2
    assert len(list((tmp_path / "runs").iterdir())) == 2


@pytest.mark.parametrize(
    ("problems", "kwargs", "message"),
    [
        ([{"id": "a", "question": "q"}], {}, "no answer"),
        ([PROBLEMS[0], PROBLEMS[0]], {}, "appears twice"),
        ([], {}, "no problems"),
        (PROBLEMS, {"k": 0}, "k must be a positive integer"),
        (PROBLEMS, {"top_p": 1.5}, "top_p"),
        (PROBLEMS, {"temperature": -1}, "temperature"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, problems, kwargs, message):
    with pytest.raises(ValueError, match=message):
        asyncio.run(sample_responses(ScriptedChatClient(), problems, out=tmp_path, progress=False, **kwargs))


def _attempt(pid: str, index: int, response: str, reference: str | None = "3 + 4 = 7\n#### 7") -> dict:
    return Attempt(problem_id=pid, sample_index=index, question=f"Question {pid}?", response=response,
                   reference=reference).to_row()


def test_exact_labelling_gives_labels_and_methods(tmp_path):
    attempts = [
        _attempt("a", 0, "3 + 4 = 7. Final answer: 7"),
        _attempt("a", 1, "3 + 4 = 8. Final answer: 8"),
        _attempt("a", 2, "I don't know"),
        _attempt("b", 0, "Final answer: 7", reference=None),
        _attempt("c", 0, "Final answer: 7", reference="no answer stated here"),
    ]
    source = tmp_path / "attempts.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in attempts))
    out = tmp_path / "labels"
    path = asyncio.run(label_attempts(source, grader=AnswerGrader(mode="exact"), out=out, progress=False))
    labelled = read_attempts(path)
    assert [(a.problem_id, a.sample_index, a.label, a.method) for a in labelled] == [
        ("a", 0, True, "exact"), ("a", 1, False, "exact"), ("a", 2, False, "exact")]
    assert labelled[1].final_answer == "8"
    failures = _read(out / "label_failures.jsonl")
    assert [f["id"] for f in failures] == ["b#0", "c#0"]
    assert "no teacher solution" in failures[0]["reason"] and "no final answer" in failures[1]["reason"]
    stats = json.loads((out / "summary.json").read_text())["counts"]
    assert stats["by_method"] == {"exact": 3} and stats["correct"] == 1 and stats["failed"] == 2

    # Rerunning resumes: nothing done is graded again.
    grader = AnswerGrader(mode="exact")
    asyncio.run(label_attempts(source, grader=grader, out=out, progress=False))
    assert grader.stats.exact == 0


def test_llm_labelling_records_the_llm_method(tmp_path):
    judge = ScriptedChatClient(responder=lambda m: "The answers match.\nFinal Verdict: Correct")
    attempts = [_attempt("a", 0, "I think seven")]
    path = asyncio.run(label_attempts(attempts, grader=AnswerGrader(judge, mode="hybrid"), out=tmp_path, progress=False))
    [attempt] = read_attempts(path)
    assert (attempt.label, attempt.method) == (True, "llm")


def test_labelling_rejects_bad_attempts(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem_id": "a", "question": "q"}) + "\n")
    with pytest.raises(ValueError, match="line 1 is not an Attempt"):
        asyncio.run(label_attempts(bad, grader=AnswerGrader(mode="exact"), out=tmp_path / "o", progress=False))
    with pytest.raises(ValueError, match="appears twice"):
        asyncio.run(label_attempts([_attempt("a", 0, "x"), _attempt("a", 0, "y")], grader=AnswerGrader(mode="exact"),
                                   out=tmp_path / "o", progress=False))
    with pytest.raises(FileNotFoundError):
        asyncio.run(label_attempts(tmp_path / "missing.jsonl", grader=AnswerGrader(mode="exact"), out=tmp_path / "o"))
