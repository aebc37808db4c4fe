"""Throughput and memory of the `solve` stage through the library, against a plain-SDK baseline.

A fault-injection server (no faults, fixed latency, canned solutions) runs in its own process on
127.0.0.1. For each concurrency, the same N problems are solved

* through the library: `Pipeline([Solve()])` with the ManagedClient, checkpoints and all;
* by the baseline: plain `openai.AsyncOpenAI` + `asyncio.Semaphore`, the same requests, no files;
* by the baseline again, under the garbage-collector settings the library applies during runs
  (`orca_math.engine.gc_tuning`), to show the library's own overhead apart from that tuning;

in the same process, and the script prints problems/s for each (medians of interleaved runs),
the ratios, the ideal (concurrency / latency) and the peak RSS. `--scale N` instead runs one N-problem pipeline in a
child process against a near-zero-latency server and reports its peak RSS (memory stays flat
because seeds and checkpoints are streamed).

    python benchmarks/pipeline_throughput.py                       # 16, 64, 256 at 100 ms
    python benchmarks/pipeline_throughput.py --scale 200000        # memory at 200K problems
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    config = json.dumps({"base_latency": latency})
    process = subprocess.Popen(
        [sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", config],
        stdout=subprocess.PIPE, text=True,
    )
    return process, process.stdout.readline().strip()


def write_seeds(path: Path, n: int) -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"p{i}", "question": f"Sam has {i} marbles and finds 2 more. How many marbles now?"}) + "\n")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_baseline(base_url: str, n: int, concurrency: int, transport: str, *, tuned_gc: bool = False) -> float:
    """Problems/s of plain AsyncOpenAI + a semaphore; `tuned_gc` gives it the library's GC settings."""
    import openai

    from orca_math.agents import Teacher
    from orca_math.engine.gc_tuning import tuned_gc as gc_settings
    from orca_math.testing import ScriptedChatClient

    kwargs = {}
    if transport == "aiohttp":
        kwargs["http_client"] = openai.DefaultAioHttpClient()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, **kwargs)
    teacher = Teacher(ScriptedChatClient())
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        messages = teacher.build_messages({"question": f"Sam has {i} marbles and finds 2 more. How many marbles now?"})
        payload = [{"role": "system" if type(m).__name__ == "SystemMessage" else "user", "content": m.content} for m in messages]
        async with semaphore:
            reply = await client.chat.completions.create(model="fault-model", messages=payload, temperature=0, max_tokens=1024)
        assert reply.choices[0].message.content

    started = time.perf_counter()
    with gc_settings(tuned_gc):
        await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await client.close()
    return n / elapsed


async def run_library(base_url: str, seeds: Path, out: Path, concurrency: int, transport: str) -> tuple[float, float]:
    """Problems/s of the solve stage itself, and end to end (with writing the dataset, card and summary)."""
    from orca_math.engine.client import ManagedClient
    from orca_math.engine.limits import CircuitBreaker, RateLimits
    from orca_math.models import load_model
    from orca_math.pipeline import Pipeline, Solve

    # The same ManagedClient the pipeline builds by default, built here so its stats can be read.
    client = ManagedClient(
        load_model(base_url, model="fault-model", transport=transport),
        concurrency=concurrency, breaker=CircuitBreaker(), rate_limits=RateLimits(),
    )
    pipeline = Pipeline([Solve()], model=client, concurrency=concurrency, progress=False, cache=False)
    started = time.perf_counter()
    result = await pipeline.run(str(seeds), out=out)
    elapsed = time.perf_counter() - started
    await client.close()
    stats = client.stats()
    if stats.get("lowest_limit", concurrency) < concurrency:
        print(f"  (the adaptive limit went down to {stats['lowest_limit']} of {concurrency})")
    assert result.funnel.stages[0].outputs == result.funnel.seeds, result.funnel.render()
    return result.funnel.seeds / result.funnel.seconds, result.funnel.seeds / elapsed


def compare(args: argparse.Namespace) -> None:
    process, base_url = start_server(args.latency)
    try:
        print(f"server {base_url}, latency {args.latency * 1000:.0f} ms; problems/s (higher is better), median of {args.repeats} runs")
        print("library = the solve stage (calls, parsing, checkpoints); e2e adds writing the dataset, card and summary once")
        print("baseline = plain AsyncOpenAI + semaphore; baseline+gc = the same under the GC settings the library uses in runs")
        print(
            f"{'concurrency':>11} {'transport':>9} {'n':>6} {'library':>9} {'e2e':>7} {'baseline':>9} {'ratio':>6} "
            f"{'baseline+gc':>12} {'ratio':>6} {'ideal':>7} {'peak RSS MB':>12}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            # Warm up imports, tiktoken and connections so the first row isn't charged for them.
            asyncio.run(run_library(base_url, write_seeds(Path(tmp) / "warm.jsonl", 50), Path(tmp) / "warm", 16, "aiohttp"))
            asyncio.run(run_baseline(base_url, 50, 16, "aiohttp"))
            for concurrency in args.concurrency:
                n = max(args.min_problems, concurrency * args.rounds)
                seeds = write_seeds(Path(tmp) / f"seeds-{concurrency}.jsonl", n)
                for transport in args.transport:
                    runs: dict[str, list[float]] = {"library": [], "e2e": [], "baseline": [], "baseline_gc": []}
                    for repeat in range(args.repeats):  # interleaved, so drifts in machine load hit all alike
                        out = Path(tmp) / f"out-{concurrency}-{transport}-{repeat}"
                        library, end_to_end = asyncio.run(run_library(base_url, seeds, out, concurrency, transport))
                        runs["library"].append(library)
                        runs["e2e"].append(end_to_end)
                        runs["baseline"].append(asyncio.run(run_baseline(base_url, n, concurrency, transport)))
                        runs["baseline_gc"].append(asyncio.run(run_baseline(base_url, n, concurrency, transport, tuned_gc=True)))
                    m = {name: statistics.median(values) for name, values in runs.items()}
                    print(
                        f"{concurrency:>11} {transport:>9} {n:>6} {m['library']:>9.1f} {m['e2e']:>7.1f} {m['baseline']:>9.1f} "
                        f"{m['library'] / m['baseline']:>6.2f} {m['baseline_gc']:>12.1f} {m['library'] / m['baseline_gc']:>6.2f} "
                        f"{concurrency / args.latency:>7.0f} {peak_rss_mb():>12.0f}"
                    )
    finally:
        process.terminate()


def scale_child(args: argparse.Namespace) -> None:
    """Runs in a child process: one big pipeline, then its own peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        seeds = write_seeds(Path(tmp) / "seeds.jsonl", args.scale)
        started = time.perf_counter()
        rate, _ = asyncio.run(run_library(args.base_url, seeds, Path(tmp) / "out", args.concurrency[0], "aiohttp"))
        print(json.dumps({"problems": args.scale, "problems_per_s": round(rate, 1), "seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": round(peak_rss_mb())}))


def scale(args: argparse.Namespace) -> None:
    process, base_url = start_server(0.001)
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--scale-child", "--scale", str(args.scale), "--base-url", base_url, "--concurrency", str(args.concurrency[0])],
            capture_output=True, text=True,
        )
        print(child.stdout.strip() or child.stderr[-3000:])
    finally:
        process.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default 0.1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--transport", nargs="+", default=["aiohttp", "httpx"], choices=["aiohttp", "httpx"])
    parser.add_argument("--rounds", type=int, default=16, help="problems per run = concurrency x rounds (at least --min-problems)")
    parser.add_argument("--min-problems", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the table shows medians")
    parser.add_argument("--scale", type=int, default=0, help="instead, run one pipeline of this many problems and report its peak RSS")
    parser.add_argument("--scale-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        scale_child(args)
    elif args.scale:
        if args.concurrency == [16, 64, 256]:
            args.concurrency = [256]
        scale(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
