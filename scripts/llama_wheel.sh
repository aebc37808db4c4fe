#!/usr/bin/env bash
# Builds a portable llama-cpp-python wheel once, into a project-local folder keyed by everything
# that changes the binary, and prints the wheel's path on the last line of stdout.
#
#   scripts/llama_wheel.sh PYTHON [CACHE_DIR]
#
# Why not a plain `pip install llama-cpp-python`: it compiles llama.cpp with -march=native, so a
# wheel built on one CPU can die with SIGILL on another (or on the same CPU inside a VM: AMX
# kernels fault where the VM withholds the tile state). And pip's wheel cache is keyed by the
# source, not by CMAKE_ARGS, so a native wheel built earlier would be reused silently. Here the
# wheel is built with --no-cache-dir and stored under a key of (version, flags, machine), so a
# second set-up reuses it and a change of flags builds a new one.
#
# Environment:
#   ORCA_MATH_LLAMA_CMAKE_ARGS  CMake flags for llama.cpp (default: portable flags for this machine
#                               type, see below); e.g. "-DGGML_NATIVE=ON" for a build tuned to
#                               this CPU only.
#   ORCA_MATH_LLAMA_VERSION     llama-cpp-python version (default 0.3.36).
#   CMAKE_BUILD_PARALLEL_LEVEL  compile jobs (default: the number of cores).
set -euo pipefail

python=${1:?usage: scripts/llama_wheel.sh PYTHON [CACHE_DIR]}
cache_dir=${2:-"$(cd "$(dirname "$0")/.." && pwd)/.cache/llama-cpp-python"}
version=${ORCA_MATH_LLAMA_VERSION:-0.3.36}
machine=$(uname -m)

# Portable defaults. x86-64: AVX2/FMA/F16C/BMI2, which every common cloud and laptop CPU of the
# last ten years has; no AVX-512 and no AMX (llama.cpp's AMX kernels fault on VMs that advertise
# AMX without granting its tile state to worker threads). aarch64: the armv8-a baseline (NEON),
# which runs on every 64-bit ARM CPU; a native build is faster on newer cores.
case "$machine" in
  x86_64|amd64) portable="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" ;;
  *) portable="-DGGML_NATIVE=OFF" ;;
esac
flags=${ORCA_MATH_LLAMA_CMAKE_ARGS:-$portable}
# The multimodal (llava/mtmd) library is never used by orca-math: skipping it halves the compile.
build_flags="$flags -DLLAVA_BUILD=OFF"

key=$(printf '%s\n' "$version" "$build_flags" "$machine" | sha256sum | cut -c1-16)
target="$cache_dir/$version-$key"
wheel=$(ls "$target"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n1 || true)
if [ -n "$wheel" ]; then
  echo "llama-cpp-python $version: reusing the wheel built with: $build_flags" >&2
  echo "$wheel"
  exit 0
fi

echo "llama-cpp-python $version: compiling llama.cpp with: $build_flags" >&2
echo "  (about 3 minutes on 2 cores; this happens once per set of flags)" >&2
rm -rf "$target.partial"
mkdir -p "$target.partial"
started=$(date +%s)
log="$target.partial/build.log"
if ! CMAKE_ARGS="$build_flags" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$python" -m pip wheel --no-deps --no-cache-dir -w "$target.partial" "llama-cpp-python==$version" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "error: building llama-cpp-python failed (full log: $log)" >&2
  exit 1
fi
echo "$build_flags" >"$target.partial/FLAGS"
rm -rf "$target"
mv "$target.partial" "$target"
echo "  built in $(( $(date +%s) - started )) s" >&2
ls "$target"/llama_cpp_python-"$version"-*.whl | head -n1
