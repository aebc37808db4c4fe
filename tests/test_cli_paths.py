"""Bad `--out` paths: every writing command checks them before its first model call, in one sentence.

The model is a loopback `FaultServer`, so "before the first call" is checked by counting the
requests it received.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orca_math.cli import main
from orca_math.testing.fault_server import FaultConfig, FaultServer


@pytest.fixture(scope="module")
def server():
    with FaultServer(FaultConfig()) as running:
        yield running


@pytest.fixture
def seeds(tmp_path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "question": f"Sam has {i} pens and buys 2 more. How many?", "answer": str(i + 2)}) + "\n"
                            for i in range(3)))
    return path


def _run(argv, capsys):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _model(server) -> list[str]:
    return ["--model", server.base_url, "--model-name", "fault-model", "--no-progress"]


def _one_sentence(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_generate_out_that_is_a_file_is_refused_before_any_call(server, seeds, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    before = len(server.chat_requests())
    code, _, err = _run(["generate", "--seeds", seeds, "--out", out, *_model(server), "--no-decontaminate"], capsys)
    assert code == 2
    assert "--out" in _one_sentence(err) and "is a file, not a folder" in err
    assert len(server.chat_requests()) == before


def test_solve_whose_run_folder_is_a_file_is_refused(server, seeds, tmp_path, capsys):
    out = tmp_path / "solved.jsonl"
    (tmp_path / "solved.jsonl.run").write_text("in the way")
    before = len(server.chat_requests())
    code, _, err = _run(["solve", "--seeds", seeds, "--out", out, *_model(server)], capsys)
    assert code == 2 and "solved.jsonl.run" in _one_sentence(err) and "is a file" in err
    assert len(server.chat_requests()) == before


def test_solve_out_that_is_a_folder_fails_before_the_calls_and_leaves_nothing(server, seeds, tmp_path, capsys):
    out = tmp_path / "dir.jsonl"
    out.mkdir()
    before = len(server.chat_requests())
    code, _, err = _run(["solve", "--seeds", seeds, "--out", out, *_model(server)], capsys)
    assert code == 2 and "is a folder" in _one_sentence(err)
    assert len(server.chat_requests()) == before
    assert not (tmp_path / "dir.jsonl.partial").exists() and not (tmp_path / "dir.jsonl.run").exists()


def test_solve_never_overwrites_a_file_it_did_not_write(server, seeds, tmp_path, capsys):
    precious = tmp_path / "precious.jsonl"
    precious.write_text('{"my": "notes"}\n')
    before = len(server.chat_requests())
    code, _, err = _run(["solve", "--seeds", seeds, "--out", precious, *_model(server)], capsys)
    assert code == 2 and "--overwrite" in _one_sentence(err)
    assert precious.read_text() == '{"my": "notes"}\n' and len(server.chat_requests()) == before

    code, _, _ = _run(["solve", "--seeds", seeds, "--out", precious, *_model(server), "--overwrite"], capsys)
    assert code == 0 and len(precious.read_text().splitlines()) == 3
    # Now it is this command's own output: the same command runs again without any flag.
    code, _, _ = _run(["solve", "--seeds", seeds, "--out", precious, *_model(server)], capsys)
    assert code == 0


def test_solve_fresh_also_allows_replacing_the_file(server, seeds, tmp_path, capsys):
    out = tmp_path / "old.jsonl"
    out.write_text("old\n")
    code, _, _ = _run(["solve", "--seeds", seeds, "--out", out, *_model(server), "--fresh"], capsys)
    assert code == 0 and out.read_text() != "old\n"


def test_solve_refuses_to_write_over_its_own_seeds(server, seeds, capsys):
    code, _, err = _run(["solve", "--seeds", seeds, "--out", seeds, *_model(server), "--overwrite"], capsys)
    assert code == 2 and "input" in _one_sentence(err)


def test_generate_refuses_a_folder_whose_files_it_would_replace(server, seeds, tmp_path, capsys):
    out = tmp_path / "my-repo"
    out.mkdir()
    (out / "README.md").write_text("my project\n")
    (out / "notes.txt").write_text("keep\n")
    before = len(server.chat_requests())
    code, _, err = _run(["generate", "--seeds", seeds, "--out", out, *_model(server), "--no-decontaminate"], capsys)
    assert code == 2 and "README.md" in _one_sentence(err) and "--overwrite" in err
    assert len(server.chat_requests()) == before
    # A folder holding only unrelated names is fine: nothing of the user's would be replaced.
    (out / "README.md").unlink()
    code, _, _ = _run(["generate", "--seeds", seeds, "--out", out, *_model(server), "--no-decontaminate", "--no-expand",
                       "--rounds", "1"], capsys)
    assert code in (0, 1) and (out / "summary.json").exists() and (out / "notes.txt").read_text() == "keep\n"


def test_generate_whose_runs_entry_is_a_file_is_refused(server, seeds, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs").write_text("x")
    code, _, err = _run(["generate", "--seeds", seeds, "--out", out, *_model(server), "--no-decontaminate"], capsys)
    assert code == 2 and "runs" in _one_sentence(err) and "is a file" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, where nothing can be created")
def test_an_out_that_cannot_be_created_is_one_sentence(server, seeds, capsys):
    before = len(server.chat_requests())
    code, _, err = _run(["generate", "--seeds", seeds, "--out", "/proc/orca-math-out", *_model(server), "--no-decontaminate"], capsys)
    assert code == 2 and "cannot be written" in _one_sentence(err) and "--out" in err
    assert len(server.chat_requests()) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write into a read-only folder")
def test_an_out_in_a_read_only_folder_is_one_sentence(server, seeds, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = _run(["solve", "--seeds", seeds, "--out", locked / "s.jsonl", *_model(server)], capsys)
    finally:
        locked.chmod(0o700)
    assert code == 2 and "not writable" in _one_sentence(err)


def _command_lines(tmp_path: Path, out: Path) -> dict[str, list]:
    data = tmp_path / "problems.jsonl"
    data.write_text('{"question": "What is 1 + 1?", "answer": "2"}\n')
    return {
        "sample": ["sample", "--model", "hf:/nonexistent", "--data", data, "--out", out],
        "eval": ["eval", "--model", "local", "--benchmarks", "gsm8k", "--out", out],
        "preferences": ["preferences", "--attempts", data, "--out", out],
        "train": ["train", "sft", "--data", data, "--model", "/nonexistent", "--out", out],
        "learn": ["learn", "--model", "/nonexistent", "--data", data, "--out", out],
        "decontaminate": ["decontaminate", data, "--out", out],
        "report": ["report", tmp_path, "--out", out],
    }


@pytest.mark.parametrize("command", ["sample", "eval", "preferences", "train", "learn", "decontaminate", "report"])
def test_every_writing_command_checks_its_out_first(command, tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("a file")
    code, _, err = _run(_command_lines(tmp_path, out)[command], capsys)
    assert code == 2 and "--out" in _one_sentence(err) and "is a file, not a folder" in err


@pytest.mark.parametrize("command", ["sample", "eval", "preferences", "train", "learn"])
def test_every_writing_command_refuses_a_strangers_folder(command, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    for name in ("summary.json", "failures.jsonl"):
        (out / name).write_text("mine")
    (out / "dpo").mkdir()
    code, _, err = _run(_command_lines(tmp_path, out)[command], capsys)
    assert code == 2 and "--overwrite" in _one_sentence(err)


def test_decontaminate_drops_out_keeps_a_strangers_file(tmp_path, capsys):
    data = tmp_path / "problems.jsonl"
    data.write_text('{"question": "What is 1 + 1?", "answer": "2"}\n')
    drops = tmp_path / "drops.jsonl"
    drops.write_text("precious\n")
    code, _, err = _run(["decontaminate", data, "--drops-out", drops], capsys)
    assert code == 2 and "--drops-out" in _one_sentence(err) and drops.read_text() == "precious\n"
