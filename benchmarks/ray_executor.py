"""The Ray executor against the local one and against `ray.data.llm`'s HTTP processor, on the same problems.

One fault server (no faults, `--latency` seconds per reply, a canned teacher solution) runs in
its own process on 127.0.0.1. The same N problems go through:

* the `solve` stage with the local executor (`Pipeline([Solve()])`: checkpoints, retries, all);
* the same with `RayExecutor(workers=1)` and `RayExecutor(workers=2)` on a local cluster
  (their actors are started before the clock runs; start-up is reported apart);
* the same `solve` stage as a Ray Data ``map_batches`` over an actor pool (1 and 2 actors): each
  actor builds the managed client once and runs a batch's rows at once with asyncio (an async
  UDF), and the driver writes each returned row (the design Ray Data suggests; the executor's
  pool streams each item's outcome back instead);
* `ray.data.llm`'s `HttpRequestProcessorConfig` with as many actors (1 and 2), sending the same
  chat requests (the Teacher's messages) and keeping the replies: no checkpoints, no retries.
  Ray Data starts its actors inside the dataset's execution, so for both Ray Data rows the
  start-up column is the time until the first result reached the driver (actor start-up plus,
  for ``map_batches``, the first block of results, which come back a block at a time).

It prints problems/s, the ratios, and the driver's (this process's) peak RSS during each run
(the kernel's high-water mark, reset before each run).

    python benchmarks/ray_executor.py --problems 2000 --latency 0.1
    python benchmarks/ray_executor.py --problems 2000 --latency 0.1 --stragglers 0.01   # 1% of replies take 2 s more

No assertions: the numbers go into docs/ray.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


#: How much longer a straggler's reply takes (`--stragglers`), in seconds.
STRAGGLER_S = 2.0


def start_server(latency: float, stragglers: float = 0.0) -> tuple[subprocess.Popen, str]:
    # The fault server's "timeout" outcome waits timeout_hang s and then answers: a slow reply, not a lost one.
    config = {"base_latency": latency, "rate_timeout": stragglers, "timeout_hang": STRAGGLER_S}
    command = [sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", json.dumps(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def write_seeds(path: Path, n: int) -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"p{i}", "question": f"A box holds {i} apples and 6 more are added. How many apples?",
                                     "answer": str(i + 6)}) + "\n")
    return path


def reset_peak() -> None:
    """Reset this process's VmHWM (Linux: writing 5 to clear_refs), so each run reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_pipeline(url: str, seeds: Path, out: Path, concurrency: int, executor=None) -> float:
    from orca_math.engine.config import EngineConfig
    from orca_math.pipeline import Pipeline, Solve

    config = EngineConfig(concurrency=concurrency, progress=False, cache=False)
    started = time.perf_counter()
    result = Pipeline([Solve()], model=url, engine=config, executor=executor).run_sync(seeds, out=out)
    seconds = time.perf_counter() - started
    assert result.funnel.final_rows == sum(1 for _ in open(seeds)), result.funnel
    return seconds


def prestarted(workers: int):
    """A `RayExecutor` whose actors are up already; returns it and the seconds start-up took."""
    from orca_math.engine.executors.ray import RayExecutor

    executor = RayExecutor(workers=workers)
    started = time.perf_counter()
    executor.connect()
    asyncio.run(executor._ensure_pool(None))  # the run reuses this pool (and closes it at the end)
    return executor, time.perf_counter() - started


class SolveBatches:
    """The `solve` stage as a Ray Data UDF: the client is built once per actor, a batch's rows run at once."""

    def __init__(self, url: str, concurrency: int) -> None:
        from orca_math.engine.config import EngineConfig, build_client
        from orca_math.pipeline import Solve

        self.stage = Solve()
        self.stage.bind(build_client(url, EngineConfig(concurrency=concurrency, progress=False, cache=False)))

    async def __call__(self, batch):
        rows = [{"id": i, "question": q, "answer": a} for i, q, a in zip(batch["id"], batch["question"], batch["answer"], strict=True)]
        results = await asyncio.gather(*(self.stage.process(row) for row in rows), return_exceptions=True)
        yield {"id": [row["id"] for row in rows],
               "record": [json.dumps(result.outputs[0] if not isinstance(result, BaseException) else {"error": str(result)},
                                     default=str) for row, result in zip(rows, results, strict=True)]}


def run_map_batches(url: str, seeds: Path, out: Path, concurrency: int, actors: int) -> tuple[float, float]:
    """The seeds read lazily by Ray Data, solved by `SolveBatches` actors, each row written by the driver."""
    import ray.data

    # Half a CPU per actor: with a whole one each, 2 actors on 2 CPUs leave none for the read tasks, and it deadlocks.
    dataset = ray.data.read_json(str(seeds)).map_batches(
        SolveBatches, fn_constructor_args=(url, concurrency), batch_size=concurrency, concurrency=actors, num_cpus=0.5)
    started = time.perf_counter()
    first = None
    with open(out, "w") as handle:
        for row in dataset.iter_rows():
            handle.write(row["record"] + "\n")
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return end - started, end - (first or started)


def run_ray_data_llm(url: str, n: int, actors: int) -> tuple[float, float]:
    """The baseline: the same Teacher requests through `HttpRequestProcessorConfig`; (wall, first-to-last) seconds."""
    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    from orca_math.agents import Teacher

    teacher = Teacher()  # builds messages only: its default model is never loaded
    roles = {"SystemMessage": "system", "UserMessage": "user", "AssistantMessage": "assistant"}

    def messages(i: int) -> list[dict[str, str]]:  # the Teacher's own messages, as plain dicts
        question = f"A box holds {i} apples and 6 more are added. How many apples?"
        return [{"role": roles[type(m).__name__], "content": m.content}
                for m in teacher.build_messages({"id": f"p{i}", "question": question})]

    def preprocess(row):
        return {"payload": {"model": "fault-model", "messages": row["messages"], "temperature": 0.0}}

    def postprocess(row):
        return {"answer": row["http_response"]["choices"][0]["message"]["content"]}

    config = HttpRequestProcessorConfig(url=url + "/chat/completions", concurrency=actors, batch_size=64)
    processor = build_processor(config, preprocess=preprocess, postprocess=postprocess)
    rows = [{"messages": messages(i)} for i in range(n)]
    started = time.perf_counter()
    first = None
    count = 0
    for _ in processor(ray.data.from_items(rows)).iter_rows():
        count += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert count == n, count
    return end - started, end - (first or started)


class _Rows(list):
    """The table's rows; each one is also printed as it is measured (a long run shows progress)."""

    def __init__(self, problems: int) -> None:
        super().__init__()
        self.problems = problems

    def append(self, row) -> None:
        super().append(row)
        print(f"  measured: {row[0]}: {self.problems / row[1]:.0f} problems/s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per reply")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (per worker on Ray)")
    parser.add_argument("--stragglers", type=float, default=0.0, help=f"share of replies that take {STRAGGLER_S:g} s more")
    parser.add_argument("--skip-baseline", action="store_true", help="skip ray.data.llm")
    args = parser.parse_args()
    import logging

    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    server, url = start_server(args.latency, args.stragglers)
    rows = _Rows(args.problems)
    try:
        with tempfile.TemporaryDirectory() as folder:
            seeds = write_seeds(Path(folder) / "seeds.jsonl", args.problems)
            reset_peak()
            seconds = run_pipeline(url, seeds, Path(folder) / "local", args.concurrency)
            rows.append(("local executor", seconds, None, peak_mb()))
            for workers in (1, 2):
                executor, startup = prestarted(workers)
                reset_peak()
                seconds = run_pipeline(url, seeds, Path(folder) / f"ray{workers}", args.concurrency, executor)
                rows.append((f"RayExecutor, {workers} worker{'s' if workers > 1 else ''}", seconds, startup, peak_mb()))
            for actors in (1, 2):
                reset_peak()
                wall, streaming = run_map_batches(url, seeds, Path(folder) / f"map_batches{actors}.jsonl", args.concurrency, actors)
                rows.append((f"Ray Data map_batches, {actors} actor{'s' if actors > 1 else ''}", wall, wall - streaming, peak_mb()))
            if not args.skip_baseline:
                for actors in (1, 2):
                    reset_peak()
                    wall, streaming = run_ray_data_llm(url, args.problems, actors)
                    rows.append((f"ray.data.llm HTTP, {actors} actor{'s' if actors > 1 else ''}", wall, wall - streaming, peak_mb()))
    finally:
        server.kill()
    local = args.problems / rows[0][1]
    stragglers = f", {args.stragglers:.0%} of replies {STRAGGLER_S:g} s slower" if args.stragglers else ""
    print(f"{args.problems} problems, {args.latency * 1000:.0f} ms per reply{stragglers}, concurrency {args.concurrency} (per worker), "
          f"{os.cpu_count()} CPUs")
    print(f"| {'run':34s} | problems/s | vs local | start-up s | driver peak RSS MB |")
    print(f"|{'-' * 36}|-----------:|---------:|-----------:|-------------------:|")
    for name, seconds, startup, peak in rows:
        rate = args.problems / seconds
        extra = f"{startup:10.1f}" if startup is not None else f"{'-':>10s}"
        print(f"| {name:34s} | {rate:10.0f} | {rate / local:8.2f} | {extra} | {peak:18.0f} |")
    by_name = {name: args.problems / seconds for name, seconds, _, _ in rows}
    for workers in (1, 2):
        ours = by_name.get(f"RayExecutor, {workers} worker{'s' if workers > 1 else ''}")
        for other in ("ray.data.llm HTTP", "Ray Data map_batches"):
            name = f"{other}, {workers} actor{'s' if workers > 1 else ''}"
            if ours and name in by_name:
                print(f"RayExecutor / {other} at {workers} actor(s): {ours / by_name[name]:.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
