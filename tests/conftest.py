"""Shared fixtures: a scripted chat client, and a real llama.cpp OpenAI-compatible server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orca_math.processes import spawn, stop

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken-cache"))
os.environ.setdefault("ORCA_MATH_BENCHMARKS_DIR", str(SHARED / "data" / "benchmarks"))
# Tests never reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SERVER_API_KEY = "sk-orca-test-key-0123456789"


@pytest.fixture
def scripted():
    """A fresh `ScriptedChatClient`."""
    from orca_math.testing import ScriptedChatClient

    return ScriptedChatClient()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_llama_server(*extra: str) -> tuple[subprocess.Popen, str]:
    from orca_math.models.local import bundled_gguf_path

    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(bundled_gguf_path()),
        "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", "--n_threads", "2", "--seed", "0",
        *extra,
    ]
    # llama.cpp logs a lot while loading: a pipe nobody reads would fill up and block the server.
    log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)
    # spawn: the server dies with this process, even when pytest is SIGKILLed or crashes (#11 item 9);
    # with SIGKILL, since a uvicorn shutdown on SIGTERM can wait on open connections for a long time.
    process = spawn(command, stdout=log, stderr=subprocess.STDOUT, text=True, death_signal=signal.SIGKILL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {Path(log.name).read_text()[-2000:]}")
        request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {SERVER_API_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return process, base_url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    stop(process)
    raise RuntimeError("llama.cpp server did not start within 120 s")


def _stop(process: subprocess.Popen) -> None:
    stop(process)


@pytest.fixture(scope="session")
def llama_server():
    """Base URL of a real `python -m llama_cpp.server` with the bundled GGUF on 127.0.0.1."""
    process, base_url = _start_llama_server()
    yield base_url
    _stop(process)


@pytest.fixture(scope="session")
def llama_server_with_key():
    """A llama.cpp server that checks API keys (`SERVER_API_KEY`)."""
    process, base_url = _start_llama_server("--api_key", SERVER_API_KEY)
    yield base_url
    _stop(process)
