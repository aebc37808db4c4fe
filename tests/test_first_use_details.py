"""First-use details: `--rounds 0` skips hardening, `eval` leaves no run folder after a spec it cannot load,
and the dataset's rows come in seed order whatever order the items finished in."""

from __future__ import annotations

import asyncio
import json

import datasets

from orca_math.cli import main
from orca_math.pipeline import Filter, Harden, Pipeline, Solve, Verify, default_stages
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer


def _seeds(path, n):
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Bo has {i} cards and gets 2 more. How many?",
                                        "answer": str(i + 2)}) + "\n" for i in range(n)))
    return path


def test_rounds_0_leaves_hardening_out(tmp_path, capsys):
    assert not any(isinstance(stage, Harden) for stage in default_stages(rounds=0))
    assert any(isinstance(stage, Harden) for stage in default_stages(rounds=1))
    with FaultServer(FaultConfig()) as server:
        code = main(["generate", "--seeds", str(_seeds(tmp_path / "s.jsonl", 2)), "--out", str(tmp_path / "g"),
                     "--model", server.base_url, "--model-name", "fault-model", "--no-progress", "--no-decontaminate",
                     "--no-expand", "--rounds", "0"])
        calls = len(server.chat_requests())
    out = capsys.readouterr().out
    stages = [line.split()[0] for line in out.splitlines() if line[:1].isalpha() and not line.startswith(("stage", "final"))]
    assert code == 0 and "harden" not in stages and "solve" in stages
    assert calls == 2  # the Teacher once per seed, no Suggester or Editor


def test_rounds_below_0_is_refused_naming_the_flag(tmp_path, capsys):
    code = main(["generate", "--seeds", str(_seeds(tmp_path / "s.jsonl", 1)), "--out", str(tmp_path / "g"),
                 "--rounds", "-1"])
    assert code == 2 and "--rounds" in capsys.readouterr().err


def test_eval_with_an_unknown_spec_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "e"
    code = main(["eval", "--model", "bogus:xyz", "--benchmarks", "svamp", "--limit", "2", "--grading", "exact",
                 "--out", str(out)])
    assert code == 2 and "Unknown model spec 'bogus:xyz'" in capsys.readouterr().err
    assert not out.exists()


def test_eval_keeps_an_earlier_run_when_a_later_start_fails(tmp_path, capsys):
    out = tmp_path / "e"
    earlier = out / "runs" / "0123456789abcdef"
    (earlier / "stages").mkdir(parents=True)
    (earlier / "stages" / "answer.jsonl").write_text('{"key": "x", "status": "ok", "outputs": []}\n')
    assert main(["eval", "--model", "bogus:xyz", "--benchmarks", "svamp", "--limit", "2", "--grading", "exact",
                 "--out", str(out)]) == 2
    assert [path.name for path in (out / "runs").iterdir()] == [earlier.name]


class _SlowFirst(ScriptedChatClient):
    """Answers every problem, the earlier seeds more slowly: items finish in the reverse of seed order."""

    async def create(self, messages, **kwargs):
        question = messages[-1].content
        number = next(int(word) for word in question.split() if word.isdigit())
        await asyncio.sleep(0.02 * (10 - number))
        return await super().create(messages, **kwargs)


def test_dataset_rows_are_in_seed_order(tmp_path):
    def teacher(messages):
        question = messages[-1].content
        number = next(int(word) for word in question.split() if word.isdigit())
        return f"{number} + 2 = {number + 2}\nFinal answer: {number + 2}"

    client = _SlowFirst(responder=teacher)
    seeds = _seeds(tmp_path / "s.jsonl", 8)
    result = Pipeline([Solve(), Verify(), Filter()], model=client, managed=False, progress=False, concurrency=8).run_sync(
        seeds, out=tmp_path / "out")
    checkpoint_order = [json.loads(line)["key"] for line in (result.run_dir / "stages" / "filter.jsonl").read_text().splitlines()]
    assert checkpoint_order != sorted(checkpoint_order)  # the items really did finish out of order
    dataset = datasets.load_from_disk(str(result.dataset_path))
    assert dataset["id"] == [f"q{i}" for i in range(8)]
