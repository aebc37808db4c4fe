"""Batch mode's driver at scale, against the fake batch server in a process of its own.

Runs `sample_responses` (one model call per item, the thinnest job) in batch mode over N problems
and reports: requests per batch, the driver's CPU time and peak RSS (per request and per 100K
requests), and the time from "results ready" (the poll that finds the batches ended) to
"checkpointed" (every item's line written). Peak RSS is reported up to "checkpointed" (the batch
driver) and with `sample_responses`' own output writing (attempts.jsonl, the same in every mode).
The server runs in a child process, so its work is not counted as the driver's.

Targets (issue #15): peak RSS under 500 MB at 200K requests (results are streamed, not loaded
whole) and at most 0.2 ms of driver CPU per request.

    python benchmarks/batch_mode.py --requests 20000            # a quick look
    python benchmarks/batch_mode.py --requests 200000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "orca_math.testing.batch_server", "serve", "--config", "{}"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _problems(n: int):
    """The problems, generated as they are read (as from a file): `sample_responses` keeps its own copy."""
    return ({"id": f"p{i}", "question": f"Tom has {i} apples and buys 2 more. How many apples now?", "answer": str(i + 2)}
            for i in range(n))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(requests: int, max_per_batch: int, out: Path) -> dict:
    from orca_math._sync import run_sync
    from orca_math.engine.batch import BatchCalls, BatchOptions
    from orca_math.engine.batch import calls as calls_module
    from orca_math.learn.sampling import sample_responses
    from orca_math.models import load_model

    process, base_url = _server()
    marks: dict[str, float] = {}
    store = calls_module.BatchCalls._store

    async def timed_store(self, *args, **kwargs):  # the first ended batch found: "results ready"
        marks.setdefault("ready", time.perf_counter())
        marks.setdefault("ready_cpu", _cpu())
        return await store(self, *args, **kwargs)

    import orca_math.learn.sampling as sampling

    write_outputs = sampling._write_outputs

    def marked_outputs(*args, **kwargs):  # every item checkpointed: what follows is sampling's own output writing
        marks["checkpointed"] = time.perf_counter()
        marks["checkpointed_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return write_outputs(*args, **kwargs)

    calls_module.BatchCalls._store = timed_store
    sampling._write_outputs = marked_outputs
    try:
        problems = _problems(requests)
        client = load_model(base_url, model="batch-model", api_key="sk-bench")
        calls = BatchCalls(out, BatchOptions(max_requests=max_per_batch, max_open=64, poll_seconds=0.05, max_poll_seconds=0.2))
        cpu0, wall0 = _cpu(), time.perf_counter()
        run_sync(sample_responses(client, problems, k=1, out=out, progress=False, concurrency=256, calls=calls))
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        run_sync(client.close())
        batches = calls.summary()["batches"]
    finally:
        calls_module.BatchCalls._store = store
        sampling._write_outputs = write_outputs
        process.terminate()
        process.wait(timeout=10)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ready_to_done = marks["checkpointed"] - marks["ready"] if "ready" in marks else None
    return {
        "requests": requests, "batches": len(batches), "requests_per_batch": requests / max(1, len(batches)),
        "wall_seconds": round(wall, 2), "driver_cpu_seconds": round(cpu, 2),
        "driver_cpu_ms_per_request": round(1000 * cpu / requests, 4),
        "driver_cpu_seconds_per_100k": round(cpu * 100_000 / requests, 1),
        "peak_rss_mb_until_checkpointed": round(marks["checkpointed_rss_mb"], 1),
        "peak_rss_mb_with_outputs": round(peak_mb, 1),
        "results_ready_to_checkpointed_seconds": None if ready_to_done is None else round(ready_to_done, 2),
        "cpu_before_results_ready_ms_per_request": round(1000 * (marks.get("ready_cpu", cpu0) - cpu0) / requests, 4),
    }


def online_baseline(requests: int, out: Path) -> dict:
    """The same job online, through the fault server (healthy) in a process of its own: the driver's CPU per request."""
    from orca_math._sync import run_sync
    from orca_math.learn.sampling import sample_responses
    from orca_math.models import load_model

    process = subprocess.Popen([sys.executable, "-m", "orca_math.testing.fault_server", "--config", json.dumps({"model": "batch-model"})],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    try:
        problems = _problems(requests)
        client = load_model(base_url, model="batch-model", api_key="sk-bench")
        cpu0, wall0 = _cpu(), time.perf_counter()
        run_sync(sample_responses(client, problems, k=1, out=out, progress=False, concurrency=256))
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        run_sync(client.close())
    finally:
        process.terminate()
        process.wait(timeout=10)
    return {"requests": requests, "wall_seconds": round(wall, 2), "driver_cpu_ms_per_request": round(1000 * cpu / requests, 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--max-per-batch", type=int, default=50_000, help="requests per batch (OpenAI's limit by default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--baseline-requests", type=int, default=20_000,
                        help="requests of the online baseline (0: none); it runs after the batch run, in the same process")
    args = parser.parse_args(argv)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "tiktoken-cache"))
    with tempfile.TemporaryDirectory(prefix="orca-batch-bench-") as folder:
        report = run(args.requests, args.max_per_batch, Path(folder) / "batch")
        if args.baseline_requests:
            report["online_baseline"] = online_baseline(args.baseline_requests, Path(folder) / "online")
            report["cpu_per_request_batch_over_online"] = round(
                report["driver_cpu_ms_per_request"] / report["online_baseline"]["driver_cpu_ms_per_request"], 3)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
