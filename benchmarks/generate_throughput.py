"""`orca-math generate` (all seven stages, default options) as a whole process, stage by stage, against raw replays.

A scripted, agent-aware loopback server (`orca_math.testing.batch_server.responder_reply`: each of
the five agents gets a reply in its own format, 100 ms latency) runs in its own process. The
script runs

* ``generate``: ``orca-math generate --seeds S --out O --model URL --concurrency C`` with the
  defaults (response cache on, expand → harden (2 rounds) → dedup → decontaminate → solve →
  verify → filter; decontamination against the local benchmark copies in
  ``ORCA_MATH_BENCHMARKS_DIR``);
* ``raw``: one child process with plain ``openai.AsyncOpenAI`` on aiohttp and a semaphore of C that
  replays, stage after stage, exactly the request bodies that stage sent, with no parsing,
  files or dependencies between calls: the least time those requests can take from Python.

Stage times come from the run folder: a stage ends when its checkpoint file was last written, and
starts where the one before it ended (the first stage at the first request). The table gives each
stage's requests, seconds, the raw replay's seconds, their ratio (raw / generate: 1.0 is the raw
client's speed) and the overhead in ms per request; stages that call no model show their seconds.

    python benchmarks/generate_throughput.py                       # 150 seeds, 64 in flight
    python benchmarks/generate_throughput.py --seeds 400 --concurrency 256
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_throughput import REPO, Server, cli_env, run_process  # noqa: E402 -- the sibling benchmark's helpers

STAGES = ("expand", "harden", "dedup", "decontaminate", "solve", "verify", "filter")


def write_seeds(path: Path, n: int) -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            a, b = 3 + i % 17, 2 + (i * 7) % 23
            handle.write(json.dumps({"id": f"s{i}", "question": f"Ann has {a} pens and buys {b} more at the shop {i}. "
                                     "How many pens does she have now?", "answer": str(a + b)}) + "\n")
    return path


def stage_ends(out: Path) -> dict[str, float]:
    """Each stage's end: the wall-clock time its checkpoint was last written."""
    run = next((out / "runs").iterdir())
    return {p.stem: p.stat().st_mtime for p in (run / "stages").glob("*.jsonl")}


def raw_child(base_url: str, requests_file: str, concurrency: int, report: str) -> None:
    """Replay each stage's request bodies, stage after stage; write each stage's seconds to `report`."""
    import openai

    stages: dict[str, list[dict]] = json.loads(Path(requests_file).read_text())

    async def main() -> dict[str, float]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0,
                                    http_client=openai.DefaultAioHttpClient())
        semaphore = asyncio.Semaphore(concurrency)
        seconds = {}

        async def one(body: dict) -> None:
            async with semaphore:
                reply = await client.chat.completions.create(**body)
            assert reply.choices[0].message.content is not None

        for stage, bodies in stages.items():
            started = time.perf_counter()
            await asyncio.gather(*(one(body) for body in bodies))
            seconds[stage] = time.perf_counter() - started
        await client.close()
        return seconds

    Path(report).write_text(json.dumps(asyncio.run(main())))


def measure(args: argparse.Namespace) -> None:
    server = Server(args.latency, agents=True)
    env = cli_env()
    env.setdefault("ORCA_MATH_BENCHMARKS_DIR", str(REPO.parent / "shared" / "data" / "benchmarks"))
    try:
        print(f"server {server.base_url}, latency {args.latency * 1000:.0f} ms, {args.seeds} seeds, {args.concurrency} in flight; "
              f"load average {os.getloadavg()[0]:.1f} at start")
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            seeds = write_seeds(tmp / "seeds.jsonl", args.seeds)
            rows = []
            for repeat in range(args.repeats):
                out = tmp / f"gen-{repeat}"
                before = len(server.dump(tmp / "before.jsonl"))
                wall_started = time.time()
                run = run_process([sys.executable, "-m", "orca_math", "generate", "--seeds", str(seeds), "--out", str(out),
                                   "--model", server.base_url, "--model-name", "fault-model", "--no-progress",
                                   "--concurrency", str(args.concurrency)], env=env)
                requests = server.dump(tmp / "requests.jsonl")[before:]
                ends = stage_ends(out)
                missing = [s for s in STAGES if s not in ends]
                if missing:
                    raise SystemExit(f"the run has no checkpoint for {missing}: is ORCA_MATH_BENCHMARKS_DIR set?")
                # Server times are monotonic; checkpoint times are wall-clock: line them up at the spawn.
                offset = wall_started - run["started"]
                first = min(r["time"] for r in requests) + offset
                bounds, start = {}, first
                for stage in STAGES:
                    bounds[stage] = (start, ends[stage])
                    start = ends[stage]
                by_stage = {stage: [r["body"] for r in requests if lo <= r["time"] + offset <= hi] for stage, (lo, hi) in bounds.items()}
                calling = {stage: bodies for stage, bodies in by_stage.items() if bodies}
                (tmp / "replay.json").write_text(json.dumps(calling))
                raw = run_process([sys.executable, __file__, "--raw-child", "--base-url", server.base_url, "--requests",
                                   str(tmp / "replay.json"), "--report", str(tmp / "raw.json"),
                                   "--concurrency", str(args.concurrency)], env=env)
                raw_seconds = json.loads((tmp / "raw.json").read_text())
                rows.append({"run": run, "raw": raw, "startup": first - wall_started, "requests": len(requests),
                             "stages": {s: (len(by_stage[s]), bounds[s][1] - bounds[s][0], raw_seconds.get(s)) for s in STAGES}})
            print(f"whole process: generate {statistics.median(r['run']['wall'] for r in rows):.1f} s "
                  f"({statistics.median(r['run']['cpu'] for r in rows):.1f} s CPU, peak RSS "
                  f"{statistics.median(r['run']['rss_mb'] for r in rows):.0f} MB, {rows[0]['requests']} requests); raw replay "
                  f"{statistics.median(r['raw']['wall'] for r in rows):.1f} s ({statistics.median(r['raw']['cpu'] for r in rows):.1f} s CPU, "
                  f"{statistics.median(r['raw']['rss_mb'] for r in rows):.0f} MB); first request "
                  f"{statistics.median(r['startup'] for r in rows):.2f} s after spawn (medians of {args.repeats})")
            print(f"{'stage':<14} {'requests':>8} {'generate s':>10} {'raw s':>7} {'raw/gen':>7} {'overhead ms/request':>20}")
            for stage in STAGES:
                count = rows[0]["stages"][stage][0]
                gen = statistics.median(r["stages"][stage][1] for r in rows)
                raws = [r["stages"][stage][2] for r in rows if r["stages"][stage][2] is not None]
                if raws:
                    raw_s = statistics.median(raws)
                    print(f"{stage:<14} {count:>8} {gen:>10.2f} {raw_s:>7.2f} {raw_s / gen:>7.2f} {(gen - raw_s) / count * 1000:>20.2f}")
                else:
                    print(f"{stage:<14} {count:>8} {gen:>10.2f} {'-':>7} {'-':>7} {'(no model calls)':>20}")
            print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default 0.1)")
    parser.add_argument("--seeds", type=int, default=150, help="seed problems (default 150)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--repeats", type=int, default=1, help="runs; the table shows medians")
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--requests", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        raw_child(args.base_url, args.requests, args.concurrency, args.report)
    else:
        measure(args)


if __name__ == "__main__":
    main()
