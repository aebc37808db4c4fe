"""One exit-status rule, an early stop when every item fails alike, and readable failure reasons.

0: every item succeeded; 1: some failed (count and where the reasons are on stderr); 2: the command
could not run or stopped early. The model is a loopback `FaultServer`.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from orca_math.cli import build_parser, main
from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.client import RetryPolicy
from orca_math.engine.reasons import failure_label
from orca_math.engine.runner import SAME_FAILURE_STOP, ItemResult, RunStopped, run_items
from orca_math.models import load_model
from orca_math.models.errors import BadRequestError
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer


def _seeds(path, n):
    path.write_text("".join(json.dumps({"id": f"q{i:03d}", "question": f"Bo has {i} cards and gets 2 more. How many?", "answer": str(i + 2)}) + "\n"
                            for i in range(n)))
    return path


def _run(argv, capsys):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _solve(server, seeds, out, *extra):
    return ["solve", "--seeds", seeds, "--out", out, "--model", server.base_url, "--model-name", "fault-model", "--no-progress", *extra]


def test_solve_exits_1_when_items_failed_and_says_where_the_reasons_are(tmp_path, capsys):
    with FaultServer(FaultConfig(rate_bad_format=1.0)) as server:
        code, out, err = _run(_solve(server, _seeds(tmp_path / "s.jsonl", 3), tmp_path / "o.jsonl"), capsys)
    assert code == 1
    assert "solved 0 of 3" in out
    assert f"3 problems failed (reasons in {tmp_path / 'o.jsonl.run' / 'failures.jsonl'}); run the same command again" in err


def test_solve_exits_0_only_when_everything_succeeded(tmp_path, capsys):
    with FaultServer(FaultConfig()) as server:
        code, _, err = _run(_solve(server, _seeds(tmp_path / "s.jsonl", 3), tmp_path / "o.jsonl"), capsys)
    assert code == 0 and "failed" not in err


def test_generate_follows_the_same_rule(tmp_path, capsys):
    with FaultServer(FaultConfig(rate_bad_format=1.0)) as server:
        code, _, err = _run(["generate", "--seeds", _seeds(tmp_path / "s.jsonl", 2), "--out", tmp_path / "g", "--model",
                             server.base_url, "--model-name", "fault-model", "--no-progress", "--no-decontaminate"], capsys)
    assert code == 1 and "items failed (reasons in" in err and "failures.jsonl" in err


def test_the_rule_is_in_the_help_and_the_cli_reference():
    from orca_math.cli.outcome import EXIT_STATUS_TEXT

    assert build_parser().epilog == EXIT_STATUS_TEXT
    import scripts.gen_docs as gen_docs

    page = gen_docs.cli_page()
    assert "## Exit status" in page and "1 when the command finished but some items failed" in page


def test_the_first_items_all_failing_alike_stop_the_run_in_one_sentence(tmp_path, capsys):
    seeds = _seeds(tmp_path / "s.jsonl", 60)
    with FaultServer(FaultConfig(rate_bad_format=1.0)) as server:
        code, _, err = _run(_solve(server, seeds, tmp_path / "o.jsonl", "--concurrency", "2"), capsys)
        requests = len(server.chat_requests())
    assert code == 2
    assert f"the first {SAME_FAILURE_STOP} items of solve all failed the same way" in err and len(err.strip().splitlines()) == 1
    checkpoint = next((tmp_path / "o.jsonl.run" / "runs").iterdir()) / "stages" / "solve.jsonl"
    recorded = checkpoint.read_text().splitlines()
    assert SAME_FAILURE_STOP <= len(recorded) < 60  # the failures were kept; the rest was never asked
    assert requests < 60 * 3


def _run_items(tmp_path, process, n=50):
    checkpoint = CheckpointFile(tmp_path / "step.jsonl")
    items = [{"id": f"i{k}"} for k in range(n)]
    return asyncio.run(run_items("solve", items, process, checkpoint, concurrency=4)), checkpoint


def test_a_400_for_every_request_stops_the_runner_after_the_first_items(tmp_path):
    calls = []

    async def refused(item):
        calls.append(item["id"])
        raise BadRequestError(f"http://127.0.0.1:9/v1 refused the request (400): Error code: 400 - bad field {item['id']}")

    with pytest.raises(RunStopped, match=r"first 20 items of solve all failed the same way \(BadRequestError 400: the server refused"):
        _run_items(tmp_path, refused)
    rows = [json.loads(line) for line in (tmp_path / "step.jsonl").read_text().splitlines()]
    assert len(rows) >= SAME_FAILURE_STOP and len(calls) < 50
    assert {row["failure"]["status"] for row in rows} == {400}


def test_a_success_among_the_first_items_means_no_early_stop(tmp_path):
    async def mostly_refused(item):
        if item["id"] == "i0":
            return ItemResult(outputs=[item])
        await asyncio.sleep(0)
        raise BadRequestError("refused (400)")

    stats, _ = _run_items(tmp_path, mostly_refused)
    assert stats.failed == 49 and stats.ok == 1


def test_different_failures_mean_no_early_stop(tmp_path):
    async def varied(item):
        raise ValueError(f"reply {int(item['id'][1:]) % 2} was not JSON")

    stats, _ = _run_items(tmp_path, varied)
    assert stats.failed == 50


def test_failure_reasons_group_by_class_and_status_not_a_url_fragment(tmp_path):
    seeds = _seeds(tmp_path / "s.jsonl", 3)
    with FaultServer(FaultConfig(rate_500=1.0)) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        fast = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0.0)
        pipeline = Pipeline([Solve()], model=client, progress=False, client_options={"retry": fast})
        result = pipeline.run_sync(seeds, out=tmp_path / "out")
        from orca_math._sync import run_sync

        run_sync(client.close())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    reasons = summary["funnel"]["stages"][0]["failures_by_reason"]
    assert len(reasons) == 1
    (label, count), = reasons.items()
    assert count == 3 and label.startswith("RetriesExhaustedError 500: the server answered 500") and "//" not in label
    assert f"fail: {label[:90]}" in result.funnel.render()
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert {row["status"] for row in failures} == {500}


@pytest.mark.parametrize(
    ("row", "label"),
    [
        ({"error_type": "BadRequestError", "status": 400, "reason": "Error code: 400 - {'error': {'message': 'bad'}}"},
         "BadRequestError 400: Error code: 400 - {'error': {'message': 'bad'}}"),
        ({"error_type": "ServerError", "status": 503, "reason": "http://127.0.0.1:8000/v1 answered 503; it may pass."},
         "ServerError 503: the server answered 503; it may pass."),
        ({"error_type": "ItemFailedError", "reason": "teacher: no 'Final answer: <value>' line"},
         "teacher: no 'Final answer: <value>' line"),
        ({"error_type": "ModelTimeoutError", "status": 408, "reason": "A request to https://API.example.com/v1 timed out."},
         "ModelTimeoutError 408: A request to the server timed out."),
    ],
)
def test_failure_labels_are_readable(row, label):
    assert failure_label(row) == label
