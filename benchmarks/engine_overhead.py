"""CPU cost of the ManagedClient per request, and peak memory of a 200,000-problem run.

Overhead is measured where nothing else costs time, so what is left is the wrapper itself:

* ``scripted``: an in-process `ScriptedChatClient` that answers at once; N calls at a given
  concurrency, bare, through `ManagedClient` (retries, AIMD, breaker, meter), and through
  `ManagedClient` with the sqlite `ResponseCache` (every call a miss plus a write);
* ``http``: the real autogen OpenAI client against a zero-latency fault server in another
  process; bare versus wrapped.

CPU seconds of this process (user + system) per call are reported, with wall time; the
difference between rows is the wrapper's cost. ``--controller`` runs a 256-wide `solve` pipeline
against a healthy 100 ms server, whose latency the client's own CPU inflates, with the default
AIMD controller, with latency backoff off, and with the pre-fix setting (no latency floor, a
one-reply window): the default must keep the full ceiling. ``--scale N`` then runs
``benchmarks/pipeline_throughput.py --scale N`` (one N-problem `solve` pipeline in a child
process) and prints its peak RSS.

    python benchmarks/engine_overhead.py                    # 5000 scripted, 2000 HTTP calls
    python benchmarks/engine_overhead.py --controller       # plus the healthy-server controller check
    python benchmarks/engine_overhead.py --scale 200000     # plus the 200K memory run (minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed_calls(client, n: int, concurrency: int, tag: str) -> tuple[float, float]:
    """CPU and wall seconds for `n` distinct calls, `concurrency` at a time."""
    from autogen_core.models import UserMessage

    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await client.create([UserMessage(content=f"[{tag}] What is {i} + 2?", source="user")])

    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return cpu_seconds() - cpu, time.perf_counter() - wall


def managed(inner, concurrency: int, cache_path: Path | None = None):
    from orca_math.engine import CircuitBreaker, ManagedClient, ResponseCache

    cache = ResponseCache(cache_path) if cache_path else None
    return ManagedClient(inner, concurrency=concurrency, breaker=CircuitBreaker(), cache=cache)


def report(name: str, n: int, cpu: float, wall: float, bare_cpu: float | None) -> None:
    extra = "" if bare_cpu is None else f"{(cpu - bare_cpu) / n * 1e6:>+12.0f}"
    print(f"{name:<28} {n:>7} {cpu / n * 1e6:>12.0f} {wall / n * 1e6:>12.0f} {extra:>12}", flush=True)


def scripted(n: int, concurrency: int, tmp: Path) -> None:
    from orca_math.testing import ScriptedChatClient

    def reply(_messages) -> str:
        return "2 + 2 = 4\nFinal answer: 4"

    # Warm-up: imports and the tokenizer load on first use and must not count as per-call cost.
    asyncio.run(timed_calls(managed(ScriptedChatClient(responder=reply), concurrency, tmp / "warm.sqlite"), 200, concurrency, "warm"))
    bare_cpu, bare_wall = asyncio.run(timed_calls(ScriptedChatClient(responder=reply), n, concurrency, "bare"))
    report("scripted, bare", n, bare_cpu, bare_wall, None)
    cpu, wall = asyncio.run(timed_calls(managed(ScriptedChatClient(responder=reply), concurrency), n, concurrency, "managed"))
    report("scripted, ManagedClient", n, cpu, wall, bare_cpu)
    cpu, wall = asyncio.run(timed_calls(managed(ScriptedChatClient(responder=reply), concurrency, tmp / "cache.sqlite"),
                                        n, concurrency, "cached"))
    report("scripted, Managed + cache", n, cpu, wall, bare_cpu)


def http(n: int, concurrency: int) -> None:
    from orca_math.models import load_model

    process = subprocess.Popen(
        [sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", "{}"],
        stdout=subprocess.PIPE, text=True,
    )
    base_url = process.stdout.readline().strip()

    async def measure(wrap: bool, tag: str) -> tuple[float, float]:
        inner = load_model(base_url, model="fault-model", api_key="bench")
        client = managed(inner, concurrency) if wrap else inner
        result = await timed_calls(client, n, concurrency, tag)
        await client.close()
        return result

    try:
        asyncio.run(measure(False, "warm-up"))  # connection pools, imports, tiktoken
        bare_cpu, bare_wall = asyncio.run(measure(False, "bare"))
        report("HTTP, bare autogen client", n, bare_cpu, bare_wall, None)
        cpu, wall = asyncio.run(measure(True, "managed"))
        report("HTTP, ManagedClient", n, cpu, wall, bare_cpu)
    finally:
        process.terminate()


def controller(n: int = 2048, ceiling: int = 256, latency: float = 0.1) -> None:
    from orca_math.engine import AdaptiveConcurrency
    from orca_math.models import load_model
    from orca_math.pipeline import Pipeline, Solve

    process = subprocess.Popen(
        [sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", json.dumps({"base_latency": latency})],
        stdout=subprocess.PIPE, text=True,
    )
    base_url = process.stdout.readline().strip()
    settings = {"default": {}, "latency off": {"latency_factor": None},
                "pre-fix (floor 0, window 1)": {"latency_floor": 0.0, "latency_window": 1}}

    async def one(tmp: Path, name: str, seeds: Path) -> None:
        limits = AdaptiveConcurrency(ceiling, **settings[name])
        client = load_model(base_url, model="fault-model", api_key="bench")
        pipeline = Pipeline([Solve()], model=client, concurrency=ceiling, progress=False, cache=False,
                            client_options={"concurrency": limits})
        started = time.perf_counter()
        result = await pipeline.run(str(seeds), out=tmp / name.replace(" ", "_"))
        rate = result.funnel.seeds / (time.perf_counter() - started)
        await client.close()
        stats = limits.stats()
        print(f"{name:<28} {rate:>10.1f} {stats['lowest_limit']:>7} {stats['concurrency_limit']:>7} "
              f"{stats['concurrency_decreases']:>10}", flush=True)

    print(f"\n{n} problems, ceiling {ceiling}, healthy server at {latency * 1000:.0f} ms")
    print(f"{'controller':<28} {'problems/s':>10} {'lowest':>7} {'final':>7} {'decreases':>10}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seeds = Path(tmp) / "seeds.jsonl"
            seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Sam has {i} marbles and finds 2 more. How many?"}) + "\n"
                                     for i in range(n)))
            for name in settings:
                asyncio.run(one(Path(tmp), name, seeds))
    finally:
        process.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="scripted calls per row (default 5000)")
    parser.add_argument("--http-n", type=int, default=2000, help="HTTP calls per row (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--controller", action="store_true", help="also check the AIMD controller on a healthy server")
    parser.add_argument("--scale", type=int, default=0, help="also run a pipeline of this many problems for peak RSS")
    args = parser.parse_args()
    print(f"{'':<28} {'calls':>7} {'CPU us/call':>12} {'wall us/call':>12} {'vs bare CPU':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        scripted(args.n, args.concurrency, Path(tmp))
    http(args.http_n, args.concurrency)
    if args.controller:
        controller()
    if args.scale:
        script = Path(__file__).with_name("pipeline_throughput.py")
        child = subprocess.run([sys.executable, str(script), "--scale", str(args.scale)], capture_output=True, text=True)
        line = child.stdout.strip().splitlines()[-1] if child.stdout.strip() else child.stderr[-2000:]
        print(f"\n{args.scale}-problem solve pipeline: {line}")
        try:
            print(f"peak RSS: {json.loads(line)['peak_rss_mb']} MB")
        except (ValueError, KeyError):
            pass


if __name__ == "__main__":
    main()
