"""A local checkpoint's identity in run keys and cache keys follows its weights, not its folder name.

Before, `orca-math sample --model hf:.../iteration-1/model --out X` then `--model hf:.../iteration-3/model
--out X` reused the first model's samples: both were "model at local transformers (cpu)".
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from orca_math.cli import main as cli_main
from orca_math.models import describe_client, describe_spec
from orca_math.models.identity import checkpoint_fingerprint
from tests._learn_helpers import save_tiny_mistral


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_mistral(tmp_path_factory.mktemp("tiny") / "model")


def _touch_later(path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_fingerprint_follows_config_and_weight_files(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 64}')
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    (folder / "README.md").write_text("notes")
    first = checkpoint_fingerprint(folder)
    assert checkpoint_fingerprint(folder) == first
    (folder / "README.md").write_text("other notes")  # not part of the weights
    assert checkpoint_fingerprint(folder) == first

    changes = [
        lambda: _touch_later(folder / "model.safetensors"),  # retrained in place, same size
        lambda: (folder / "model.safetensors").write_bytes(b"\0" * 101),
        lambda: (folder / "config.json").write_text('{"hidden_size": 65}'),
        lambda: (folder / "extra.bin").write_bytes(b"x"),
        lambda: (folder / "model.gguf").write_bytes(b"x"),
        lambda: (folder / "lora.pt").write_bytes(b"x"),
    ]
    seen = {first}
    for change in changes:
        change()
        fingerprint = checkpoint_fingerprint(folder)
        assert fingerprint not in seen
        seen.add(fingerprint)


def test_a_weight_file_alone_has_a_fingerprint_and_a_missing_one_is_an_error(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    first = checkpoint_fingerprint(gguf)
    _touch_later(gguf)
    assert checkpoint_fingerprint(gguf) != first
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        checkpoint_fingerprint(tmp_path / "nothing")


def test_specs_of_local_checkpoints_carry_their_weights(tmp_path):
    a, b = tmp_path / "iteration-1" / "model", tmp_path / "iteration-3" / "model"
    for folder, size in ((a, 10), (b, 11)):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"\0" * size)
    assert describe_spec(f"hf:{a}") != describe_spec(f"hf:{b}")
    assert describe_spec(f"hf:{a}").startswith(f"hf:{a} (checkpoint ")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    before = describe_spec(f"local:{gguf}")
    _touch_later(gguf)
    assert describe_spec(f"local:{gguf}") != before
    assert describe_spec("hf:HuggingFaceTB/SmolLM2-135M") == "hf:HuggingFaceTB/SmolLM2-135M"  # a Hub id stays as written


def test_hf_clients_of_two_checkpoints_with_the_same_folder_name_differ(tiny, tmp_path):
    from orca_math.models.hf import TransformersChatCompletionClient

    copy = tmp_path / "other" / "model"
    shutil.copytree(tiny, copy)
    _touch_later(next(copy.glob("*.safetensors")))
    one, two = TransformersChatCompletionClient(tiny), TransformersChatCompletionClient(copy)
    assert describe_client(one, with_url=False) == describe_client(two, with_url=False) == "model"  # names, for prices
    assert describe_client(one) != describe_client(two)  # identities, for run and cache keys


def test_sampling_another_checkpoint_into_the_same_out_reuses_nothing(tiny, tmp_path, capsys):
    data = tmp_path / "problems.jsonl"
    data.write_text(json.dumps({"id": "q1", "question": "What is 2 + 3?", "answer": "2 + 3 = 5\nFinal answer: 5"}) + "\n")
    first, third = tmp_path / "iteration-1" / "model", tmp_path / "iteration-3" / "model"
    shutil.copytree(tiny, first)
    shutil.copytree(tiny, third)
    _touch_later(next(third.glob("*.safetensors")))  # the same bytes, but written later: another checkpoint
    common = ["sample", "--data", str(data), "--k", "2", "--max-tokens", "4", "--no-progress", "--out", str(tmp_path / "X")]
    assert cli_main([*common, "--model", f"hf:{first}"]) == 0
    assert cli_main([*common, "--model", f"hf:{third}"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "samples in" in line]
    assert lines[0].endswith("0 reused)") and lines[1].endswith("0 reused)"), lines
    assert cli_main([*common, "--model", f"hf:{third}"]) == 0  # the same checkpoint again: resumed
    assert capsys.readouterr().out.strip().endswith("2 reused)")
