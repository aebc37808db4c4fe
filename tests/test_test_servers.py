"""Test servers die with the test run: a killed pytest (SIGKILL, or SIGTERM from `timeout`) leaves no llama.cpp server behind (#11 item 9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

TESTS = Path(__file__).parent

# A stand-in for a pytest process: it starts the real llama.cpp server exactly as the session
# fixtures do, prints the server's pid, then waits to be killed.
PARENT = textwrap.dedent(f"""
    import sys, time
    sys.path.insert(0, {str(TESTS)!r})
    import conftest
    process, url = conftest._start_llama_server()
    print(process.pid, flush=True)
    time.sleep(600)
""")


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_test_run_takes_its_llama_server_with_it(signum):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(parent.stdout.readline())
        server = psutil.Process(server_pid)
        assert "llama_cpp.server" in " ".join(server.cmdline())
        assert server.ppid() == parent.pid
        os.kill(parent.pid, signum)  # no fixture teardown, no atexit: only the kernel can tell
        parent.wait(timeout=10)
        assert _gone(server_pid, within=20), "the llama.cpp server outlived the killed test run"
    finally:
        if parent.poll() is None:
            parent.kill()
