"""`orca-math sample`: every sampling flag with every kind of student spec, through the CLI's own mapping.

Sampling flags (--temperature, --top-p, --max-tokens) go with each request; load options are only
what a spec's client takes. Before the fix `sample --model vllm:CKPT --max-tokens 64` passed
``max_tokens`` to the vLLM client's constructor and died with a TypeError.

The ``hf:`` student runs for real on a tiny checkpoint, the URL student against a real loopback
server; ``vllm:`` and ``vllm-serve:`` engines take minutes to start, so their clients are stand-ins
that accept exactly the real constructors' arguments (``vllm-serve:``'s still sends its requests to
a loopback server through the real client).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from orca_math.cli import main
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer

FLAGS = ["--k", "2", "--temperature", "0.3", "--top-p", "0.9", "--max-tokens", "7", "--limit", "2", "--no-progress"]
SAMPLING = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 7}


@pytest.fixture
def problems(tmp_path) -> Path:
    rows = [{"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}
            for i in range(1, 4)]
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _sample(spec: str, problems: Path, out: Path, *extra: str) -> int:
    return main(["sample", "--model", spec, "--data", str(problems), "--out", str(out), *FLAGS, *extra])


def _attempts(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]


def _stand_in(real: type, seen: dict):
    """A scripted client built with exactly the arguments `real`'s constructor accepts (else its TypeError)."""

    class StandIn(ScriptedChatClient):
        def __init__(self, *args, **options):
            inspect.signature(real).bind(*args, **options)  # raises the TypeError the real client would
            seen["load"] = options
            super().__init__(responder=lambda messages: "2 + 2 = 4. Final answer: 4")
            seen["client"] = self

    return StandIn


@pytest.mark.parametrize("prompt_format", [[], ["--prompt-format", "chat"]])
def test_vllm_student_gets_sampling_flags_per_request_and_load_options_it_takes(problems, tmp_path, monkeypatch,
                                                                                 prompt_format):
    import orca_math.models.vllm as vllm_module

    seen: dict = {}
    monkeypatch.setattr(vllm_module, "VLLMChatCompletionClient", _stand_in(vllm_module.VLLMChatCompletionClient, seen))
    out = tmp_path / "s"
    assert _sample(f"vllm:{tmp_path}", problems, out, *prompt_format) == 0
    assert seen["load"] == {"prompt_format": prompt_format[-1] if prompt_format else "orca", "max_new_tokens": 7}
    calls = seen["client"].calls
    assert len(calls) == 4 and all({k: c["extra_create_args"][k] for k in SAMPLING} == SAMPLING for c in calls)
    assert len(_attempts(out)) == 4


def test_hf_student_samples_with_every_flag(problems, tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests._learn_helpers import save_tiny_mistral

    checkpoint = save_tiny_mistral(tmp_path / "tiny")
    for prompt_format in ("orca", "chat"):
        out = tmp_path / f"s-{prompt_format}"
        assert _sample(f"hf:{checkpoint}", problems, out, "--prompt-format", prompt_format) == 0
        rows = _attempts(out)
        assert [(r["problem_id"], r["sample_index"]) for r in rows] == [("q1", 0), ("q1", 1), ("q2", 0), ("q2", 1)]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["funnel"]["stages"][0]["completion_tokens"] <= 4 * 7  # --max-tokens reached the model


def test_url_student_sends_every_flag_with_each_request(problems, tmp_path):
    with FaultServer(FaultConfig()) as server:
        out = tmp_path / "s"
        assert _sample(server.base_url, problems, out, "--model-name", "fault-model") == 0
        bodies = [r.body for r in server.chat_requests() if r.outcome == "ok"]
    assert len(bodies) == 4
    assert all(b["model"] == "fault-model" and {k: b[k] for k in SAMPLING} == SAMPLING for b in bodies)
    assert len(_attempts(out)) == 4


def test_vllm_serve_student_sends_every_flag_to_its_server(problems, tmp_path, monkeypatch):
    from orca_math.models.vllm_server import VLLMServer

    started: list[str] = []
    with FaultServer(FaultConfig(model="student")) as server:
        async def astart(self):  # `vllm serve` itself takes minutes: the loopback server stands in for it
            started.append(self.checkpoint)
            return server.base_url

        monkeypatch.setattr(VLLMServer, "astart", astart)
        monkeypatch.setattr(VLLMServer, "running", lambda self: True)
        monkeypatch.setattr(VLLMServer, "stop", lambda self: None)
        out = tmp_path / "s"
        assert _sample(f"vllm-serve:{tmp_path}", problems, out) == 0
        bodies = [r.body for r in server.chat_requests() if r.outcome == "ok"]
    assert started == [str(tmp_path)] and len(bodies) == 4
    assert all({k: b[k] for k in SAMPLING} == SAMPLING for b in bodies)


@pytest.mark.parametrize(("spec", "extra", "message"), [
    ("vllm:ckpt", ["--model-name", "m"], "drop --model-name"),
    ("hf:ckpt", ["--model-name", "m"], "drop --model-name"),
    ("vllm-serve:ckpt", ["--model-name", "m"], "drop --model-name"),
    ("vllm-serve:ckpt", ["--prompt-format", "chat"], "drop --prompt-format"),
    ("http://127.0.0.1:9/v1", ["--prompt-format", "orca"], "drop --prompt-format"),
])
def test_a_flag_the_spec_cannot_use_is_one_sentence(spec, extra, message, problems, tmp_path, capsys):
    assert _sample(spec, problems, tmp_path / "s", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
