"""Every agent's sampling settings reach the wire, through every stage and entry point.

A loopback fault server records every request body and answers each agent plausibly. For each
request the test finds the agent by its system message (the card's role) and checks that the
body carries the card's `sampling` (temperature, max_tokens), or the user's explicit overrides:
through `Pipeline` with the default stages, `orca-math solve`, `generate`, `sample`, `eval`, and
the learning loop's sampling through a URL model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import SystemMessage, UserMessage

from orca_math._sync import run_sync
from orca_math.agents.cards import load_card, shipped_cards
from orca_math.cli import main as cli_main
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve, default_stages
from orca_math.testing.fault_server import FaultConfig, FaultServer, RequestRecord
from orca_math.testing.responders import pipeline_responder

AGENTS = tuple(card.name for card in shipped_cards())
ROLES = {load_card(name).role: name for name in AGENTS}


def _reply(messages: Sequence[dict[str, Any]]) -> str:
    """`pipeline_responder` over the server's JSON messages."""
    converted = [SystemMessage(content=m["content"]) if m["role"] == "system" else UserMessage(content=str(m["content"]), source="user")
                 for m in messages if m["role"] in ("system", "user")]
    return pipeline_responder(converted)


def _server() -> FaultServer:
    return FaultServer(FaultConfig(reply=_reply))


def _agent_of(record: RequestRecord) -> str | None:
    """The agent that sent a request (by its system message), None for a bare student prompt."""
    first = record.body["messages"][0]
    return ROLES.get(first["content"]) if first["role"] == "system" else None


def _sampling_by_agent(records: list[RequestRecord]) -> dict[str | None, set[tuple]]:
    """Agent -> the distinct (temperature, top_p, max_tokens) triples its requests carried."""
    seen: dict[str | None, set[tuple]] = {}
    for record in records:
        body = record.body
        seen.setdefault(_agent_of(record), set()).add((body.get("temperature"), body.get("top_p"), body.get("max_tokens")))
    return seen


def _card_sampling(name: str) -> tuple:
    sampling = load_card(name).sampling
    return (sampling.get("temperature"), sampling.get("top_p"), sampling.get("max_tokens"))


def _seeds(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"id": f"s{i}", "question": f"Ann has {i + 2} pens and buys 3 more. How many pens now?",
                                        "answer": str(i + 5)}) + "\n" for i in range(n)))
    return path


def test_pipeline_with_the_default_stages_sends_every_cards_settings(tmp_path):
    with _server() as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        try:
            result = Pipeline(default_stages(), model=client, concurrency=4, progress=False).run_sync(
                _seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "out")
        finally:
            run_sync(client.close())
        seen = _sampling_by_agent(server.chat_requests())
    assert result.funnel.final_rows > 0
    assert set(seen) == {"ask_me_anything", "suggester", "editor", "teacher", "program_writer"}
    for name, triples in seen.items():
        assert triples == {_card_sampling(name)}, name


def test_explicit_solve_overrides_reach_the_wire(tmp_path):
    with _server() as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        try:
            Pipeline([Solve(temperature=0.25, max_tokens=77)], model=client, progress=False).run_sync(
                _seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "out")
        finally:
            run_sync(client.close())
        seen = _sampling_by_agent(server.chat_requests())
    assert seen == {"teacher": {(0.25, None, 77)}}


def test_self_consistency_samples_at_its_temperature_with_the_cards_max_tokens(tmp_path):
    with _server() as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        try:
            Pipeline([Solve(k=2)], model=client, progress=False).run_sync(_seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "out")
        finally:
            run_sync(client.close())
        seen = _sampling_by_agent(server.chat_requests())
    assert seen == {"teacher": {(0.7, None, _card_sampling("teacher")[2])}}


def _model_args(server: FaultServer) -> list[str]:
    return ["--model", server.base_url, "--model-name", "fault-model", "--no-progress"]


def test_cli_solve_and_generate_send_the_cards_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    seeds = _seeds(tmp_path / "seeds.jsonl")
    with _server() as server:
        assert cli_main(["solve", "--seeds", str(seeds), *_model_args(server), "--out", str(tmp_path / "solved.jsonl")]) == 0
        solve_seen = _sampling_by_agent(server.chat_requests())
        before = len(server.chat_requests())
        assert cli_main(["generate", "--seeds", str(seeds), *_model_args(server), "--out", str(tmp_path / "gen")]) == 0
        generate_seen = _sampling_by_agent(server.chat_requests()[before:])
    assert solve_seen == {"teacher": {_card_sampling("teacher")}}
    assert set(generate_seen) == {"ask_me_anything", "suggester", "editor", "teacher", "program_writer"}
    for name, triples in generate_seen.items():
        assert triples == {_card_sampling(name)}, name


def test_cli_sample_sends_the_paper_settings_and_explicit_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data = _seeds(tmp_path / "problems.jsonl", 2)
    with _server() as server:
        assert cli_main(["sample", *_model_args(server), "--data", str(data), "--k", "2", "--out", str(tmp_path / "a")]) == 0
        defaults = _sampling_by_agent(server.chat_requests())
        before = len(server.chat_requests())
        assert cli_main(["sample", *_model_args(server), "--data", str(data), "--k", "1", "--temperature", "0.3",
                         "--top-p", "0.5", "--max-tokens", "64", "--out", str(tmp_path / "b")]) == 0
        explicit = _sampling_by_agent(server.chat_requests()[before:])
    assert defaults == {None: {(0.7, 0.95, 1024)}}
    assert explicit == {None: {(0.3, 0.5, 64)}}


def test_cli_eval_sends_the_student_and_grader_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with _server() as server:
        common = ["eval", *_model_args(server), "--benchmarks", "gsm8k", "--limit", "2"]
        assert cli_main([*common, "--grader", "llm", "--out", str(tmp_path / "e1")]) == 0
        defaults = _sampling_by_agent(server.chat_requests())
        before = len(server.chat_requests())
        assert cli_main([*common, "--grader", "exact", "--temperature", "0.4", "--max-tokens", "90",
                         "--out", str(tmp_path / "e2")]) == 0
        explicit = _sampling_by_agent(server.chat_requests()[before:])
    assert defaults == {"teacher": {_card_sampling("teacher")}, "grader": {_card_sampling("grader")}}
    assert explicit == {"teacher": {(0.4, None, 90)}}


class _CopyTrainer:
    """A `Trainer` that copies the model folder: the loop's sampling is what this test watches."""

    def train(self, dataset, output_dir, preset, *, model, ref_model=None):
        shutil.copytree(model, output_dir)
        return Path(output_dir)


@pytest.mark.parametrize("max_tokens", [1024, 321])
def test_learning_loop_samples_through_a_url_with_the_student_settings(tmp_path, max_tokens):
    from orca_math.learn import IterativeLearner

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    problems = [{"id": f"q{i}", "question": f"Tom has {i} marbles and finds 3 more. How many marbles does he have?",
                 "answer": f"{i} + 3 = {i + 3}\nFinal answer: {i + 3}"} for i in range(1, 7)]
    with _server() as server:
        trainer = _CopyTrainer()
        learner = IterativeLearner(
            base, problems, out=tmp_path / "loop", iterations=2, samples_per_problem=2, eval=0.34,
            sampler_model_factory=lambda checkpoint: server.base_url, trainers={"sft": trainer, "kto": trainer},
            max_tokens=max_tokens, progress=False,
        )
        learner.run_sync()
        seen = _sampling_by_agent(server.chat_requests())
    # Iteration 2 samples at the paper's settings; each iteration's holdout evaluation is greedy.
    assert seen == {None: {(0.7, 0.95, max_tokens), (0.0, 1.0, max_tokens)}}
