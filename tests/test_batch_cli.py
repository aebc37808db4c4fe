"""The command line in batch mode: `generate --batch --no-wait`, its rerun, and `orca-math status`."""

from __future__ import annotations

import json

import pytest

from orca_math.cli import main
from orca_math.testing.batch_server import BatchServer, BatchServerConfig
from tests._batch_helpers import MODEL, write_seeds

FAST = ["--batch-poll-seconds", "0.01"]


def test_generate_batch_no_wait_then_rerun_then_status(tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    out = tmp_path / "data"
    with BatchServer(BatchServerConfig(polls_before_done=1)) as server:
        argv = ["generate", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name", MODEL,
                "--rounds", "1", "--no-progress", "--batch", "--no-wait", *FAST]
        assert main(argv) == 3  # paused: the first stage's batch is still running
        paused = capsys.readouterr().err
        assert "Rerun the same command to continue" in paused and paused.count("\n") == 1
        assert not paused.startswith("error")  # a pause is not an error
        assert len(server.created_batches()) == 1

        assert main(["status", str(out)]) == 0
        shown = capsys.readouterr().out
        assert server.created_batches()[0].id in shown and "submitted" in shown and "still open" in shown

        for _ in range(10):  # each rerun polls, collects what ended and submits the next stage's batch
            status = main(argv)
            capsys.readouterr()
            if status != 3:  # 3: paused again, batches still running
                break
        assert status == 0
        billed = server.billed
        created = server.created_batches()
    assert max(billed.values()) == 1 and sum(billed.values()) == sum(len(b.lines) for b in created)
    # expand; the Suggester, then the Editor of the one hardening round; solve; the ProgramWriter that Verify
    # asks for a program per hardened problem (the default verifier, #22)
    assert len(created) == 5
    assert all("assign the final result to a variable named answer" in json.dumps(line) for line in created[-1].lines)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["batch"]["price_multiplier"] == 0.5 and all(b["state"] == "stored" for b in summary["batch"]["batches"])
    assert main(["status", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["requests"]["succeeded"] == sum(len(b.lines) for b in created) and data["requests"]["submitted"] == 0


def test_solve_batch_waits_and_writes_the_file(tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 4, answers=False)
    out = tmp_path / "solved.jsonl"
    with BatchServer() as server:
        assert main(["solve", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name", MODEL,
                     "--no-progress", "--batch", *FAST]) == 0
        assert len(server.created_batches()) == 1
    assert len(out.read_text().splitlines()) == 4


def test_status_of_a_folder_without_batches_says_so_in_one_sentence(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no batch state" in err and err.count("\n") == 1


def test_no_wait_without_batch_is_refused(tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 1)
    assert main(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--model", "http://127.0.0.1:9/v1",
                 "--model-name", MODEL, "--no-wait"]) == 2
    assert "--no-wait needs --batch" in capsys.readouterr().err


def test_eval_and_sample_take_batch(tmp_path, capsys):
    import os

    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} plus 2?", "answer": str(i + 2)}) + "\n"
                            for i in range(3)))
    with BatchServer() as server:
        model = ["--model", server.base_url, "--model-name", MODEL]
        assert main(["sample", *model, "--data", str(data), "--out", str(tmp_path / "samples"), "--k", "2",
                     "--no-progress", "--batch", *FAST]) == 0
        assert [len(b.lines) for b in server.created_batches()] == [6]
        assert main(["eval", *model, "--benchmarks", "gsm8k", "--limit", "2", "--grading", "llm", "--out", str(tmp_path / "eval"),
                     "--benchmarks-dir", os.environ["ORCA_MATH_BENCHMARKS_DIR"], "--no-progress", "--batch", *FAST]) == 0
        assert [len(b.lines) for b in server.created_batches()] == [6, 2, 2]  # samples; answers; then grades


def test_dry_run_prices_batch_mode_at_the_batch_price(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dry-run")
    seeds = write_seeds(tmp_path / "seeds.jsonl", 5)
    base = ["generate", "--seeds", str(seeds), "--out", str(tmp_path / "x"), "--model", "openai:gpt-4o", "--dry-run"]
    costs = {}
    for name, extra in {"online": [], "batch": ["--batch"], "quarter": ["--batch", "--batch-price-multiplier", "0.25"]}.items():
        assert main([*base, *extra]) == 0
        costs[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["cost_usd"]
    assert costs["batch"] == pytest.approx(costs["online"] * 0.5, abs=1e-4) and costs["online"] > 0  # rounded to 4 places
    assert costs["quarter"] == pytest.approx(costs["online"] * 0.25, abs=1e-4)


def test_batch_mode_on_ray_is_refused_before_any_call(tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 1)
    with BatchServer(BatchServerConfig()) as server:
        code = main(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--model", server.base_url,
                     "--model-name", MODEL, "--batch", "--executor", "ray"])
        assert server.created_batches() == []
    err = capsys.readouterr().err
    assert code == 2 and "batch mode runs on the local executor" in err and err.count("\n") == 1
