"""benchmarks/gpu_check.py --tiny: the GPU check's own code path, run on CPU at a toy size, as CI runs it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    root = str(SCRIPT.parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_tiny_gpu_check_trains_every_adapter_and_reports_speed_and_memory(tmp_path):
    out = tmp_path / "report.json"
    done = _run("--tiny", "--steps", "2", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())

    assert [method["method"] for method in report["methods"]] == ["sft", "dpo", "kto"]
    preset = report["preset"]
    assert preset["name"] == "mistral-7b" and preset["use_lora"] is True and preset["gradient_checkpointing"] is True
    assert (preset["lora_r"], preset["lora_alpha"], len(preset["lora_target_modules"])) == (16, 32, 7)
    assert report["environment"]["device"] == "cpu"
    assert 0 < report["model"]["parameters"] < 10_000_000
    for method in report["methods"]:
        assert method["steps"] == 2
        assert len(method["losses"]) == 2 and all(math.isfinite(loss) for loss in method["losses"])
        assert method["step_s"] > 0 and method["tokens_per_s"] > 0
        # every sequence is cut to the preset's max_length (256): the worst case it allows
        per_sequence = method["tokens_per_step"] / method["sequences_per_step"]
        assert 200 < per_sequence <= report["preset"]["max_length"], method
        assert method["peak_gpu_allocated_gib"] is None  # no GPU: not a made-up zero
    assert report["peak_rss_mib"] > 0
    # the table names every method; nothing but the report is written to the working folder
    assert all(f"\n{kind} " in done.stdout for kind in ("sft", "dpo", "kto"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.json"]


def test_bad_flags_are_one_line_errors(tmp_path):
    done = _run("--tiny", "--methods", "sft,ppo", cwd=tmp_path)
    assert done.returncode == 2
    assert "--methods: use names from sft, dpo, kto" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_gpu_the_full_check_says_to_use_tiny(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the full check would run")
    done = _run("--out", str(tmp_path / "x.json"), cwd=tmp_path)
    assert done.returncode == 2
    assert "no CUDA GPU" in done.stderr and "--tiny" in done.stderr
    assert "Traceback" not in done.stderr
