"""Throughput under random faults, as a share of a fault-free run: the controller, and the CLI as a user runs it.

Each scenario starts `orca_math.testing.fault_server` in its own process (50 ms a reply). The
first five send N distinct calls through one `ManagedClient` with a ceiling of 16, all callers at
once:

* ``fault-free``: the baseline;
* ``429 5%`` and ``429 20%``: that share of replies are 429s with ``Retry-After: 1``, at random,
  whatever the load (a provider's random refusals);
* ``mixed``: the fault run from issue #12: 20% 429s, 5% 500s, 2% hangs of 20 s and 2% broken
  bodies;
* ``pipeline 429 20%``: a ``Pipeline([Solve()])`` of N problems at ``concurrency=16``;

The last two run ``orca-math solve --concurrency 16`` on N seeds as a whole process, with every
other setting at its default (the response cache included), as a user would:

* ``cli fault-free``: their baseline;
* ``cli mixed``: issue #21's mix: 20% 429s (Retry-After 1 s), 5% 500s, 2% hangs of 20 s, 2%
  non-JSON bodies, 1% truncated bodies and 2% dropped connections.

It prints, per scenario, the sustained rate (calls or problems per second until 90% were done:
the retries of the last unlucky calls, and a 20 s hang near the end, are a tail that says
nothing about the pace), the total time, the rate as a share of its fault-free run of the same
repeat (the CLI's against the CLI's), the median and lowest concurrency limit where known, and
the peak RSS of the process that did the work (for the CLI, the CLI's own, with its CPU time per
problem, user and system: on a busy machine the steadier figure). Scenarios run in
child processes, in a rotating order, `--repeat` times; the summary gives medians. No assertions.

    python benchmarks/fault_throughput.py                 # 2000 calls a scenario, 3 repeats
    python benchmarks/fault_throughput.py --n 1000 --repeat 1 --only fault-free "429 20%"
    python benchmarks/fault_throughput.py --n 2000 --repeat 1 --only "cli fault-free" "cli mixed"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS: dict[str, dict] = {
    "fault-free": {},
    "429 5%": {"rate_429": 0.05, "retry_after": 1.0},
    "429 20%": {"rate_429": 0.20, "retry_after": 1.0},
    "mixed": {"rate_429": 0.20, "retry_after": 1.0, "rate_500": 0.05, "rate_timeout": 0.02, "timeout_hang": 20.0,
              "rate_truncated": 0.01, "rate_malformed": 0.01},
    "pipeline 429 20%": {"rate_429": 0.20, "retry_after": 1.0},
    "cli fault-free": {},
    "cli mixed": {"rate_429": 0.20, "retry_after": 1.0, "rate_500": 0.05, "rate_timeout": 0.02, "timeout_hang": 20.0,
                  "rate_malformed": 0.02, "rate_truncated": 0.01, "rate_drop": 0.02},
}
LATENCY = 0.05
CEILING = 16


def start_server(faults: dict, seed: int) -> tuple[subprocess.Popen, str]:
    config = json.dumps({"base_latency": LATENCY, "seed": seed, **faults})
    process = subprocess.Popen([sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", config],
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


async def through_client(base_url: str, n: int, tag: str) -> dict:
    from autogen_core.models import UserMessage

    from orca_math.engine import AdaptiveConcurrency, ManagedClient, RetryPolicy
    from orca_math.models import load_model

    controller = AdaptiveConcurrency(CEILING)
    client = ManagedClient(load_model(base_url, model="fault-model", api_key="bench"), concurrency=controller,
                           retry=RetryPolicy(max_attempts=20, initial_wait=0.05, max_wait=5, jitter=0.05, timeout=300))
    limits: list[int] = []
    done_at: list[float] = []
    started = time.perf_counter()

    async def one(i: int) -> None:
        await client.create([UserMessage(content=f"[{tag}] Sam has {i} marbles and finds 2 more. How many now?", source="user")])
        done_at.append(time.perf_counter() - started)
        limits.append(controller.limit)

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    seconds = time.perf_counter() - started
    await client.close()
    failed = sum(isinstance(r, BaseException) for r in results)
    done_at.sort()
    stats = client.stats()
    return {"ok": n - failed, "seconds": seconds, "sustained": int(0.9 * len(done_at)) / done_at[int(0.9 * len(done_at)) - 1],
            "median_limit": statistics.median(limits), "lowest_limit": stats["lowest_limit"], "requests": stats["requests"]}


async def through_pipeline(base_url: str, n: int, tag: str) -> dict:
    from orca_math.engine import AdaptiveConcurrency, RetryPolicy
    from orca_math.models import load_model
    from orca_math.pipeline import Pipeline, Solve

    controller = AdaptiveConcurrency(CEILING)
    client = load_model(base_url, model="fault-model", api_key="bench")
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds.jsonl"
        seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"[{tag}] Sam has {i} marbles and finds 2 more. How many?"})
                                 + "\n" for i in range(n)))
        pipeline = Pipeline([Solve()], model=client, concurrency=CEILING, progress=False, cache=False,
                            client_options={"concurrency": controller,
                                            "retry": RetryPolicy(max_attempts=20, initial_wait=0.05, max_wait=5, jitter=0.05)})
        started = time.perf_counter()
        result = await pipeline.run(str(seeds), out=Path(tmp) / "out")
        seconds = time.perf_counter() - started
    await client.close()
    return {"ok": result.funnel.final_rows, "seconds": seconds, "sustained": result.funnel.final_rows / seconds,
            "median_limit": None, "lowest_limit": controller.stats()["lowest_limit"], "requests": None}


def through_cli(base_url: str, n: int, tag: str) -> dict:
    """``orca-math solve`` as a whole process, defaults but the concurrency; progress read from its checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds.jsonl"
        seeds.write_text("".join(json.dumps({"id": f"p{i}", "question": f"[{tag}] Sam has {i} marbles and finds 2 more. "
                                             "How many?"}) + "\n" for i in range(n)))
        out = Path(tmp) / "solved.jsonl"
        command = [sys.executable, "-m", "orca_math", "solve", "--seeds", str(seeds), "--out", str(out), "--model", base_url,
                   "--model-name", "fault-model", "--concurrency", str(CEILING), "--no-progress"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ninety, checkpoint = None, None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if ninety is None:
                checkpoint = checkpoint or next(Path(tmp).glob("*.run/runs/*/stages/solve.jsonl"), None)
                if checkpoint is not None and checkpoint.read_bytes().count(b"\n") >= int(0.9 * n):
                    ninety = time.perf_counter() - started
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read() if process.stderr else ""
        if process.returncode not in (0, 1):  # 1: some items failed (their rows are kept)
            raise SystemExit(f"orca-math solve exited {process.returncode}: {stderr[-2000:]}")
        rows = sum(1 for _ in open(out)) if out.exists() else 0
    return {"ok": rows, "seconds": seconds, "sustained": int(0.9 * n) / (ninety or seconds), "median_limit": None,
            "lowest_limit": "-", "requests": None, "whole_process": rows / seconds, "cli_rss_mb": usage.ru_maxrss / 1024,
            "cpu_ms": 1000 * (usage.ru_utime + usage.ru_stime) / n}


def run_one(name: str, n: int, seed: int) -> None:
    """In a child process: one scenario, printed as one JSON line with the peak RSS."""
    process, base_url = start_server(SCENARIOS[name], seed)
    try:
        if name.startswith("cli"):
            outcome = through_cli(base_url, n, f"{name} {seed}")
        else:
            runner = through_pipeline if name.startswith("pipeline") else through_client
            outcome = asyncio.run(runner(base_url, n, f"{name} {seed}"))
    finally:
        process.terminate()
    outcome["peak_rss_mb"] = outcome.pop("cli_rss_mb", None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(outcome), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="calls per scenario (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats, in rotating order (default 3)")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--one", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.n, args.seed)
        return
    baselines = [b for b in ("fault-free", "cli fault-free") if b == "fault-free" and any(not o.startswith("cli") for o in args.only)
                 or b == "cli fault-free" and any(o.startswith("cli") for o in args.only)]
    names = list(dict.fromkeys([*baselines, *args.only]))  # each baseline runs in every repeat
    rows: dict[str, list[dict]] = {name: [] for name in names}
    print(f"{args.n} calls a scenario, ceiling {CEILING}, {LATENCY * 1000:.0f} ms a reply; {args.repeat} repeat(s)")
    print(f"{'scenario':<18} {'ok':>5} {'seconds':>8} {'sustained/s':>11} {'of fault-free':>13} {'median lim':>10} "
          f"{'lowest':>6} {'peak RSS MB':>11}")
    for repeat in range(args.repeat):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        outcomes = {}
        for name in order:
            done = subprocess.run([sys.executable, __file__, "--one", name, "--n", str(args.n), "--seed", str(repeat)],
                                  capture_output=True, text=True, check=True)
            outcomes[name] = json.loads(done.stdout.strip().splitlines()[-1])
        for name in names:
            row = outcomes[name]
            baseline = outcomes["cli fault-free" if name.startswith("cli") else "fault-free"]
            row["share"] = row["sustained"] / baseline["sustained"]
            if "whole_process" in row:
                row["whole_share"] = row["whole_process"] / baseline["whole_process"]
            rows[name].append(row)
            print(f"{name:<18} {row['ok']:>5} {row['seconds']:>8.1f} {row['sustained']:>11.1f} {row['share']:>13.2f} "
                  f"{row['median_limit'] if row['median_limit'] is not None else '-':>10} {row['lowest_limit']:>6} "
                  f"{row['peak_rss_mb']:>11.0f}", flush=True)
    print("\nmedians")
    for name in names:
        median = {key: statistics.median(r[key] for r in rows[name]) for key in ("seconds", "sustained", "share", "peak_rss_mb")}
        whole = ""
        if "whole_process" in rows[name][0]:
            whole = (f"  whole process {statistics.median(r['whole_process'] for r in rows[name]):.1f}/s "
                     f"({statistics.median(r['whole_share'] for r in rows[name]):.2f}), "
                     f"CPU {statistics.median(r['cpu_ms'] for r in rows[name]):.2f} ms a problem")
        print(f"{name:<18} {median['seconds']:>8.1f} s {median['sustained']:>8.1f}/s  {median['share']:.2f} of fault-free  "
              f"{median['peak_rss_mb']:.0f} MB{whole}")


if __name__ == "__main__":
    main()
