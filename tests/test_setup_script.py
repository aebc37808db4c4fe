"""scripts/llama_wheel.sh: a portable llama-cpp-python wheel, cached by (version, flags, machine).

A fake interpreter stands in for `python -m pip wheel`: it records each build and writes a dummy
wheel, so these tests check the cache key without compiling anything.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "llama_wheel.sh"

FAKE_PYTHON = """#!/usr/bin/env bash
# Called as: fake -m pip wheel --no-deps --no-cache-dir -w DIR SPEC
echo "CMAKE_ARGS=$CMAKE_ARGS :: $*" >> "$BUILD_LOG"
while [ $# -gt 0 ]; do
  if [ "$1" = "-w" ]; then out=$2; fi
  shift
done
touch "$out/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
"""


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "python"
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


def build(fake_python: Path, cache: Path, log: Path, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ORCA_MATH_LLAMA_CMAKE_ARGS"}
    environment.update(BUILD_LOG=str(log), **env)
    done = subprocess.run(["bash", str(SCRIPT), str(fake_python), str(cache)], capture_output=True, text=True,
                          env=environment, check=True)
    return done.stdout.strip().splitlines()[-1]


def builds(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_an_unchanged_second_run_reuses_the_wheel(fake_python, tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    first = build(fake_python, cache, log)
    second = build(fake_python, cache, log)
    assert first == second and Path(first).is_file()
    assert len(builds(log)) == 1


def test_changing_the_build_flags_builds_again_into_another_folder(fake_python, tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    portable = build(fake_python, cache, log)
    native = build(fake_python, cache, log, ORCA_MATH_LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON")
    assert Path(portable).parent != Path(native).parent
    assert len(builds(log)) == 2
    assert "-DGGML_NATIVE=ON" in builds(log)[1]
    assert "-DGGML_NATIVE=ON" in (Path(native).parent / "FLAGS").read_text()
    # Back to the default: the portable wheel is still there, nothing is rebuilt.
    assert build(fake_python, cache, log) == portable
    assert len(builds(log)) == 2


def test_the_default_build_is_portable_and_never_uses_pips_wheel_cache(fake_python, tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    build(fake_python, cache, log)
    (line,) = builds(log)
    assert "-DGGML_NATIVE=OFF" in line
    assert "AMX" not in line and "AVX512" not in line
    assert "--no-cache-dir" in line and "llama-cpp-python==" in line
    if os.uname().machine == "x86_64":
        assert "-DGGML_AVX2=ON" in line


def test_a_failed_build_leaves_no_wheel_to_reuse(tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/usr/bin/env bash\necho 'compiler exploded' >&2\nexit 1\n")
    broken.chmod(0o755)
    cache = tmp_path / "cache"
    done = subprocess.run(["bash", str(SCRIPT), str(broken), str(cache)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "compiler exploded" in done.stderr and "building llama-cpp-python failed" in done.stderr
    assert not list(cache.glob("*/llama_cpp_python-*.whl"))
