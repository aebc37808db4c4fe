"""API keys and URL passwords never reach logs, run folders, manifests, caches, outputs or cards.

A fault server demands a key; the library is given it by ``api_key=`` and by ``OPENAI_API_KEY``,
runs the pipeline (with some failures, so failure reasons are written), ``orca-math solve``,
``orca-math eval`` and ``orca-math report`` with DEBUG logging to a file, and then every byte
written under the output folders (the sqlite cache included), the log and stdout/stderr is
searched for the secrets.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from orca_math._sync import run_sync
from orca_math.cli import main as cli_main
from orca_math.engine import RetryPolicy
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer

API_KEY = "sk-secret-7f3a9c1e5b2d4f6a8c0e"
URL_PASSWORD = "pw-hunter2-8d1c5e"
BENCHMARKS_DIR = Path("/work/shared/data/benchmarks")


def write_seeds(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Ann has {i} pens and buys 3 more. How many?"}) + "\n"
                            for i in range(n)))
    return path


@pytest.fixture
def debug_log(tmp_path):
    """Every log record at DEBUG, from every library, into a file."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def files_containing(root: Path, secrets: list[str]) -> list[str]:
    """Every file under `root` (read as bytes, so sqlite and Arrow files too) holding any secret."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {secret}" for secret in secrets if secret.encode() in data]
    return hits


def pipeline_with_failures(model) -> Pipeline:
    """Solve with one attempt per call, so the scripted 500s become failure rows with reasons."""
    return Pipeline([Solve()], model=model, concurrency=2, progress=False,
                    client_options={"retry": RetryPolicy(max_attempts=1)})


def test_api_keys_never_leak_into_files_logs_or_output(tmp_path, debug_log, monkeypatch, capsys):
    outputs = tmp_path / "outputs"
    seeds = write_seeds(tmp_path / "seeds.jsonl", 6)
    config = FaultConfig(api_key=API_KEY, outcomes=["500", "500"], include_usage=True)
    with FaultServer(config) as server:
        client = load_model(server.base_url, model="fault-model", api_key=API_KEY)
        result = pipeline_with_failures(client).run_sync(seeds, out=outputs / "by-argument")
        run_sync(client.close())
        assert result.funnel.stages[0].failed == 2 and result.funnel.final_rows == 4

        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        model = ["--model", server.base_url, "--model-name", "fault-model"]
        solve = ["-v", "solve", "--seeds", str(seeds), *model, "--no-progress", "--out", str(outputs / "cli" / "solved.jsonl")]
        assert cli_main(solve) == 0
        evaluate = ["-v", "eval", *model, "--benchmarks", "gsm8k", "--limit", "2", "--grader", "exact",
                    "--benchmarks-dir", str(BENCHMARKS_DIR), "--no-progress", "--out", str(outputs / "eval")]
        assert cli_main(evaluate) == 0
        assert cli_main(["report", str(outputs / "by-argument")]) == 0
        assert cli_main(["report", str(outputs / "eval")]) == 0
        authorized = [r for r in server.chat_requests() if r.outcome != "401"]
    captured = capsys.readouterr()

    assert len(authorized) >= 6 + 6 + 2  # the key did reach the server, in its header
    assert (outputs / "by-argument" / "cache.sqlite").exists() and (outputs / "by-argument" / "README.md").exists()
    assert (outputs / "by-argument" / "report" / "report.html").exists()
    assert list((outputs / "eval").glob("runs/*/manifest.json"))
    assert debug_log.stat().st_size > 0
    assert files_containing(outputs, [API_KEY]) == []
    assert API_KEY not in debug_log.read_text() and API_KEY not in captured.out + captured.err


def _run_with_password_url(outputs: Path, seeds: Path) -> dict:
    """Runs against ``http://alice:<password>@host/v1``: by a built client and by a spec string."""
    with FaultServer(FaultConfig(outcomes=["500", "500"])) as server:
        url = server.base_url.replace("http://", f"http://alice:{URL_PASSWORD}@")
        # httpx: aiohttp refuses credentials in the URL next to the API key header (see the last test).
        client = load_model(url, model="fault-model", api_key=API_KEY, transport="httpx")
        built = pipeline_with_failures(client).run_sync(seeds, out=outputs / "run")
        run_sync(client.close())
        by_spec = pipeline_with_failures(url).run_sync(seeds, out=outputs / "by-spec")
        assert cli_main(["report", str(outputs / "run")]) == 0
    return {"built": built, "by_spec": by_spec}


def test_a_password_in_the_server_url_never_reaches_any_file(tmp_path, capsys):
    outputs = tmp_path / "outputs"
    results = _run_with_password_url(outputs, write_seeds(tmp_path / "seeds.jsonl", 4))
    captured = capsys.readouterr()

    built = results["built"]
    assert built.funnel.stages[0].failed == 2 and built.funnel.final_rows == 2
    failures = built.outputs["failures"].read_text()
    assert "Gave up on http://127.0.0.1:" in failures  # the reason still names the endpoint
    assert files_containing(outputs, [URL_PASSWORD, API_KEY]) == []
    assert URL_PASSWORD not in captured.out + captured.err


def test_a_password_in_the_server_url_never_reaches_the_debug_log(tmp_path, debug_log):
    _run_with_password_url(tmp_path / "outputs", write_seeds(tmp_path / "seeds.jsonl", 4))
    assert URL_PASSWORD not in debug_log.read_text()


def test_a_url_with_credentials_works_with_the_default_transport(tmp_path):
    with FaultServer(FaultConfig()) as server:
        url = server.base_url.replace("http://", f"http://alice:{URL_PASSWORD}@")
        result = pipeline_with_failures(url).run_sync(write_seeds(tmp_path / "seeds.jsonl", 2), out=tmp_path / "out")
    assert result.funnel.final_rows == 2
