#!/usr/bin/env bash
# Creates .venv and installs orca-math with every extra the demo and the tests need.
# Safe to run again: it does nothing when pyproject.toml has not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

# --test also installs what only the tests need: Debian's chromium, for the report screenshot test.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "could not install chromium: the report screenshot test will be skipped"
  else
    echo "chromium is not installed (needs root and apt-get): the report screenshot test will be skipped"
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# llama-cpp-python compiles from source (about 6 minutes on 2 cores); pip keeps the built wheel in
# its cache, so later setups reuse it instead of compiling again.
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  .venv/bin/python -m pip install --quiet -e ".[local,train,quality,report,docs,dev]"
rm -f .venv/.installed-*
touch "$stamp"
echo "orca-math is installed in .venv"
