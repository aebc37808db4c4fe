"""The embedded model's self-check: it runs in a child process, and a crash there becomes a paragraph."""

from __future__ import annotations

import signal
import sys

import pytest

from orca_math import doctor
from orca_math.cli import main


def test_the_embedded_model_generates_tokens_in_a_child_process():
    check = doctor.run_local_model_check()
    # On failure the assertion shows the self-check's paragraph, not a crash of the test runner.
    assert check.ok, check.explanation()
    assert check.tokens >= 1
    assert check.signal is None
    assert check.explanation() == ""


@pytest.mark.parametrize("sig", [signal.SIGILL, signal.SIGSEGV])
def test_a_runtime_killed_by_a_signal_gets_one_paragraph_on_how_to_rebuild(sig):
    crash = [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), {int(sig)})"]
    check = doctor.run_local_model_check(command=crash)
    assert not check.ok
    assert check.signal == sig
    text = check.explanation()
    assert sig.name in text
    assert "ORCA_MATH_LLAMA_CMAKE_ARGS" in text and "make setup" in text
    assert "\n" not in text  # one paragraph


def test_a_child_that_prints_nothing_usable_is_a_failure_with_its_output():
    check = doctor.run_local_model_check(command=[sys.executable, "-c", "import sys; sys.exit('no llama here')"])
    assert not check.ok and check.signal is None
    assert "no llama here" in check.explanation()


def test_a_child_that_hangs_is_stopped_at_the_time_limit():
    check = doctor.run_local_model_check(command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout=1)
    assert not check.ok and check.returncode == 124
    assert "time limit" in check.explanation()


def test_doctor_command_reports_versions_build_and_a_running_model(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "llama-cpp-python" in out and "orca-math" in out
    assert "llama.cpp build flags" in out
    assert "embedded model: runs" in out


def test_setup_check_exits_1_with_the_paragraph_when_the_model_crashes(monkeypatch, capsys):
    crashed = doctor.ModelCheck(ok=False, signal=int(signal.SIGILL), returncode=-int(signal.SIGILL))
    monkeypatch.setattr(doctor, "run_local_model_check", lambda **_: crashed)
    assert doctor.main(["--setup-check"]) == 1
    err = capsys.readouterr().err
    assert "SIGILL" in err and "illegal instruction" in err
