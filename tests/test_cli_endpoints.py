"""One endpoint, one spelling: a trailing slash or a capital in the scheme or host never re-pays a run."""

from __future__ import annotations

import json

import pytest

from orca_math.cli import main
from orca_math.models import describe_client, describe_spec, load_model, normalize_endpoint
from orca_math.testing.fault_server import FaultConfig, FaultServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("HTTP://Example.COM:8000/v1//", "http://example.com:8000/v1"),
        ("https://api.example.com:443/v1", "https://api.example.com/v1"),
        ("http://[::1]:8000/v1/", "http://[::1]:8000/v1"),
        ("local", "local"),
        ("openai:gpt-4o", "openai:gpt-4o"),
    ],
)
def test_normalize_endpoint(url, expected):
    assert normalize_endpoint(url) == expected


def test_localhost_keeps_its_spelling_because_it_may_be_another_server():
    assert normalize_endpoint("http://localhost:8000/v1") != normalize_endpoint("http://127.0.0.1:8000/v1")


def test_run_keys_and_cache_identity_ignore_the_trailing_slash():
    assert describe_spec("http://127.0.0.1:9/v1/") == describe_spec("http://127.0.0.1:9/v1")
    with_slash = load_model("http://127.0.0.1:9/v1/", model="m", api_key="k")
    without = load_model("http://127.0.0.1:9/v1", model="m", api_key="k")
    assert describe_client(with_slash) == describe_client(without) == "m at http://127.0.0.1:9/v1"


def test_a_trailing_slash_resumes_the_same_run_without_new_calls(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"question": f"Ivy has {i} kites and makes 3 more. How many?"}) + "\n" for i in range(4)))
    out = tmp_path / "solved.jsonl"
    with FaultServer(FaultConfig()) as server:
        argv = ["solve", "--seeds", str(seeds), "--out", str(out), "--model-name", "fault-model", "--no-progress"]
        assert main([*argv, "--model", server.base_url + "/"]) == 0
        paid = len(server.chat_requests())
        assert main([*argv, "--model", server.base_url]) == 0
        assert len(server.chat_requests()) == paid
    assert len(list((tmp_path / "solved.jsonl.run" / "runs").iterdir())) == 1  # one run key
    assert "solved 4 of 4" in capsys.readouterr().out
