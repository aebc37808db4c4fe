"""Student sampling throughput: ``hf:`` (one generation at a time) vs ``vllm:`` in-process vs ``vllm serve``.

Same checkpoint (the bundled SmolLM2-135M converted to an HF folder), the same GSM8K test problems,
k samples each at the paper's temperature 0.7 / top_p 0.95, the same max tokens and the same Orca
prompt (``USER: {q}\\nASSISTANT:``; the server gets it as its chat template), all through
`sample_responses` as the learning loop calls it. Each mode runs in a child process of its own, so
its load time and peak memory (RSS of the child and everything it started: vLLM's engine core,
workers, the server) are its own.

``hf:`` generates one reply at a time, so its tokens/s does not depend on how many problems it
gets: ``--hf-problems`` (default 8) keeps its share of the run to minutes; the vLLM modes get all
``--problems``.

    python benchmarks/vllm_sampling.py                                  # 64 problems, k=4, 128 tokens
    python benchmarks/vllm_sampling.py --modes vllm,serve --problems 256 --kv-cache-gib 4
    python benchmarks/vllm_sampling.py --checkpoint ckpt/m1 --device cuda --max-model-len 2048   # on a GPU

Needs an environment with vLLM (``bash scripts/setup_vllm.sh <venv>`` on CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GSM8K = REPO.parent / "shared" / "data" / "benchmarks" / "gsm8k" / "test.jsonl"
MODES = ("hf", "vllm", "serve")


def problems(count: int) -> list[dict]:
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()[:count]]
    return [{"id": f"gsm8k-test-{i}", "question": r["question"], "answer": r["answer"]} for i, r in enumerate(rows)]


async def _sample(client, rows: list[dict], args, *, concurrency: int, managed: bool) -> float:
    from orca_math.engine.client import ManagedClient, RetryPolicy
    from orca_math.learn.sampling import sample_responses

    if managed:  # batched engines answer late calls late: no per-call timeout
        client = ManagedClient(client, concurrency=concurrency, retry=RetryPolicy(timeout=None))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        path = await sample_responses(client, rows, k=args.k, temperature=0.7, top_p=0.95,
                                      max_tokens=args.max_tokens, out=out, concurrency=concurrency, progress=False,
                                      seed=False)
        attempts = Path(path) if isinstance(path, str | Path) else Path(out) / "attempts.jsonl"
        made = len(attempts.read_text(encoding="utf-8").splitlines())
    if made != len(rows) * args.k:
        raise RuntimeError(f"{len(rows) * args.k - made} of {len(rows) * args.k} samples failed")
    return time.perf_counter() - started


def worker(mode: str, args) -> dict:
    """Run one mode in this process; returns its measurements."""
    from orca_math.models.convert import bundled_hf_checkpoint

    checkpoint = Path(args.checkpoint) if args.checkpoint else bundled_hf_checkpoint()
    rows = problems(args.hf_problems if mode == "hf" else args.problems)
    started = time.perf_counter()
    if mode == "hf":
        from orca_math.models.hf import TransformersChatCompletionClient

        if args.hf_threads:
            import torch

            torch.set_num_threads(args.hf_threads)
        client = TransformersChatCompletionClient(checkpoint, prompt_format="orca", device=args.device,
                                                  max_new_tokens=args.max_tokens)
        load = time.perf_counter() - started
        wall = asyncio.run(_sample(client, rows, args, concurrency=1, managed=False))
        tokens = client.total_usage().completion_tokens
    elif mode == "vllm":
        from orca_math.models.vllm import VLLMChatCompletionClient

        client = VLLMChatCompletionClient(checkpoint, prompt_format="orca", max_new_tokens=args.max_tokens,
                                          max_model_len=args.max_model_len, kv_cache_space_gib=args.kv_cache_gib)
        load = time.perf_counter() - started
        wall = asyncio.run(_sample(client, rows, args, concurrency=args.concurrency, managed=True))
        tokens = client.total_usage().completion_tokens
        client.shutdown()
    else:
        from transformers import AutoTokenizer

        from orca_math.learn import orca_chat_template
        from orca_math.models import load_model
        from orca_math.models.vllm_server import VLLMServer

        template = orca_chat_template(AutoTokenizer.from_pretrained(checkpoint))
        on_cpu = args.device == "cpu"
        server = VLLMServer(checkpoint, python=args.serve_python, dtype="float32" if on_cpu else None,
                            enforce_eager=on_cpu, max_model_len=args.max_model_len,
                            kv_cache_space_gib=args.kv_cache_gib if on_cpu else None, chat_template=template,
                            served_model_name="student", extra_args=args.serve_args.split())
        with server as url:
            load = time.perf_counter() - started
            client = load_model(url)
            wall = asyncio.run(_sample(client, rows, args, concurrency=args.concurrency, managed=True))
            tokens = client.total_usage().completion_tokens
    return {"mode": mode, "problems": len(rows), "samples": len(rows) * args.k, "tokens": tokens,
            "load_s": round(load, 1), "wall_s": round(wall, 1), "tokens_per_s": round(tokens / wall, 1)}


def run_mode(mode: str, argv: list[str]) -> dict:
    """Run `mode` in a child process; adds the peak RSS of its process tree and the load average."""
    import psutil

    child = subprocess.Popen([sys.executable, __file__, "--worker", mode, *argv], stdout=subprocess.PIPE, text=True)
    peak, done = 0, threading.Event()

    def watch() -> None:
        nonlocal peak
        root = psutil.Process(child.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            done.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = child.communicate()
    done.set()
    watcher.join()
    if child.returncode != 0:
        raise SystemExit(f"mode {mode} failed (exit {child.returncode})")
    # vLLM logs to stdout too: the result is the last line that is one.
    result = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith('{"mode"')))
    result["peak_rss_mib"] = round(peak / 2**20)
    result["load_avg_1m"] = round(os.getloadavg()[0], 1)
    return result


def table(results: list[dict]) -> str:
    base = next((r["tokens_per_s"] for r in results if r["mode"] == "hf"), None)
    lines = ["| mode | problems x k | generated tokens | load s | sampling wall s | tokens/s | vs hf: | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    names = {"hf": "`hf:` (transformers, one at a time)", "vllm": "`vllm:` in-process",
             "serve": "`vllm serve` + OpenAI client"}
    for r in results:
        ratio = f"{r['tokens_per_s'] / base:.1f}x" if base else "-"
        lines.append(f"| {names[r['mode']]} | {r['problems']} x {r['samples'] // r['problems']} | {r['tokens']:,} | "
                     f"{r['load_s']} | {r['wall_s']} | {r['tokens_per_s']} | {ratio} | {r['peak_rss_mib']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: hf, vllm, serve")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--hf-problems", type=int, default=8, help="problems for hf: (one at a time)")
    parser.add_argument("--hf-threads", type=int, help="torch threads for hf: (default: torch's own)")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--kv-cache-gib", type=int, default=2, help="CPU KV cache (VLLM_CPU_KVCACHE_SPACE)")
    parser.add_argument("--concurrency", type=int, default=256, help="samples in flight for the vLLM modes")
    parser.add_argument("--checkpoint", help="an HF checkpoint folder; default: the bundled SmolLM2, converted")
    parser.add_argument("--device", default="cpu", help="hf: device, and whether the server gets CPU settings")
    parser.add_argument("--serve-python", help="the Python with vLLM for served mode; default: this one")
    parser.add_argument("--serve-args", default="", help="more `vllm serve` arguments, e.g. '--data-parallel-size 8'")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)), flush=True)
        return
    argv = sys.argv[1:]
    results = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        print(f"running {mode} ...", file=sys.stderr, flush=True)
        results.append(run_mode(mode, argv))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
