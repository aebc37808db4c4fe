"""Peak memory of the full default `generate` recipe at paper scale (200,000 seeds) on one machine.

The default recipe (expand, harden x2, dedup, decontaminate, solve, verify, filter) runs over N
seeds against a near-zero-latency loopback server that answers each agent in its format
(`orca_math.testing.responders.pipeline_responder`; run in its own process, keeping only its last
requests). The recipe runs in a child process; this script samples the child's resident memory
every few seconds (`VmRSS`, and the kernel's high-water mark `VmHWM`) and prints the peak, the
time and each stage's counts. While it runs, `--work DIR/progress.log` says how far it got.

    nice python benchmarks/generate_200k_rss.py --seeds 200000 --work /tmp/gen200k

`--dedup-only N` measures the one whole-input stage alone: the `Dedup` stage (on-disk index,
id-ordered pass) over N generated-looking problems, in a child process, with its peak RSS.

No assertions: the number goes into docs/ray.md (the target is under 1.5 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


def serve_responder(config: dict) -> None:
    """Serve `pipeline_responder` over HTTP until killed, keeping only the last requests in memory."""
    from collections import deque

    from autogen_core.models import AssistantMessage, SystemMessage, UserMessage

    from orca_math.testing.fault_server import FaultConfig, FaultServer
    from orca_math.testing.responders import pipeline_responder

    kinds = {"system": lambda c: SystemMessage(content=c), "assistant": lambda c: AssistantMessage(content=c, source="a")}

    def reply(messages):
        converted = [kinds.get(m.get("role"), lambda c: UserMessage(content=c, source="user"))(str(m.get("content", "")))
                     for m in messages]
        return pipeline_responder(converted)

    server = FaultServer(FaultConfig(reply=reply, **config)).start()
    server._fault_app.requests = deque(maxlen=1000)  # millions of requests: keep the request log bounded
    print(server.base_url, flush=True)
    while True:
        time.sleep(3600)


def write_seeds(path: Path, n: int) -> Path:
    """N seed problems with answers (varied names and objects, so dedup keeps most of them)."""
    names = ["Sam", "Ana", "Li", "Omar", "Kate", "Ravi", "Yuki", "Ben", "Zoe", "Ivan", "Mia", "Tom"]
    things = ["marbles", "apples", "stamps", "books", "coins", "shells", "pencils", "cards", "beads", "plums"]
    verbs = ["finds", "buys", "is given", "wins", "picks up", "collects"]
    with open(path, "w") as handle:
        for i in range(n):
            name, thing, verb = names[i % len(names)], things[(i // 12) % len(things)], verbs[(i // 120) % len(verbs)]
            more = 2 + i % 17
            question = f"{name} has {i} {thing} and {verb} {more} more. How many {thing} does {name} have now?"
            handle.write(json.dumps({"id": f"p{i}", "question": question, "answer": str(i + more)}) + "\n")
    return path


def generate_child(url: str, seeds: str, out: str, concurrency: int) -> None:
    """Run the default recipe in this (child) process; print its funnel and timing as JSON."""
    from orca_math.engine.config import EngineConfig
    from orca_math.pipeline import Pipeline, default_stages

    started = time.perf_counter()
    pipeline = Pipeline(default_stages(), model=url, engine=EngineConfig(concurrency=concurrency, progress=False, cache=False))
    result = pipeline.run_sync(seeds, out=out)
    stages = {stage.name: [stage.inputs, stage.outputs] for stage in result.funnel.stages}
    print(json.dumps({"seconds": time.perf_counter() - started, "stages": stages,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def dedup_child(rows_path: str, out: str) -> None:
    """Run the `Dedup` stage alone over a JSONL of problems; print its counts, time and peak RSS as JSON."""
    from orca_math.engine.config import EngineConfig
    from orca_math.engine.jobs import Job, run_job
    from orca_math.files import read_jsonl
    from orca_math.pipeline import Dedup

    started = time.perf_counter()
    job = Job("dedup", [Dedup()])
    import asyncio

    finished = asyncio.run(run_job(job, lambda: read_jsonl(rows_path), out=out, engine=EngineConfig(progress=False, cache=False)))
    stage = finished.funnel.stages[0]
    print(json.dumps({"seconds": time.perf_counter() - started, "stages": {"dedup": [stage.inputs, stage.outputs]},
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def write_problems(path: Path, n: int) -> Path:
    """N problems shaped like the recipe's (seed, expanded and hardened variants), about 1 in 5 a near copy."""
    import random

    rng = random.Random(0)
    words = ["apples", "marbles", "coins", "books", "trains", "boxes", "miles", "hours", "pencils", "tickets", "dollars", "cakes"]
    names = ["Sam", "Ana", "Li", "Omar", "Kate", "Ravi", "Yuki", "Ben", "Zoe", "Ivan", "Mia", "Tom"]
    recent: list[str] = []
    with open(path, "w") as handle:
        for i in range(n):
            if i % 5 == 4 and recent:  # a near copy of a recent problem: only its tag differs
                question = rng.choice(recent).rsplit(" [", 1)[0] + f" [{i}]"
            else:
                a, b, c = rng.randrange(2, 999), rng.randrange(2, 99), rng.randrange(2, 50)
                name, thing, other = rng.choice(names), rng.choice(words), rng.choice(words)
                question = (f"{name} has {a} {thing} and buys {b} more {other} at {c} each. "
                            f"If {name} then gives away a third of the {thing}, how many {thing} and {other} are left? [{i}]")
                recent = [*recent[-999:], question]
            handle.write(json.dumps({"id": f"q{i:07d}", "question": question}) + "\n")
    return path


def _memory_mb(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value
    return (int(fields.get("VmRSS", "0 kB").split()[0]) / 1024, int(fields.get("VmHWM", "0 kB").split()[0]) / 1024)


def _stage_lines(out: Path) -> str:
    counts = []
    for path in sorted(out.glob("runs/*/stages/*.jsonl"), key=lambda p: p.stat().st_mtime):
        with open(path, "rb") as handle:
            counts.append(f"{path.stem}={sum(1 for _ in handle)}")
    return " ".join(counts)


def _watch(child: subprocess.Popen, work: Path, log, every: float, what: str) -> dict:
    """Sample the child's memory every `every` s into `log` until it exits; its JSON report plus the sampled peak."""
    started, peak = time.monotonic(), 0.0
    while child.poll() is None:
        try:
            rss, hwm = _memory_mb(child.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        peak = max(peak, hwm)
        log.write(f"{time.monotonic() - started:7.0f}s rss={rss:.0f}MB peak={hwm:.0f}MB {_stage_lines(work / 'out')}\n")
        log.flush()
        time.sleep(every)
    out = child.stdout.read()
    if child.wait() != 0:
        raise SystemExit(f"{what} failed with status {child.returncode}; see {work / 'child.err'}")
    report = json.loads(out.strip().splitlines()[-1])
    report["sampled_peak_mb"] = peak
    return report


def measure_dedup(n: int, work: Path, every: float) -> dict:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    rows = write_problems(work / "problems.jsonl", n)
    child = subprocess.Popen([sys.executable, str(HERE), "--dedup-child", str(rows), str(work / "out")],
                             stdout=subprocess.PIPE, stderr=open(work / "child.err", "w"), text=True)
    with open(work / "progress.log", "w") as log:
        report = _watch(child, work, log, every, "dedup")
    (work / "report.json").write_text(json.dumps(report, indent=1))
    return report


def measure(n: int, concurrency: int, work: Path, every: float) -> dict:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    server = subprocess.Popen([sys.executable, str(HERE), "--serve-responder", json.dumps({"base_latency": 0.001})],
                              stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()
    log = open(work / "progress.log", "w")
    try:
        seeds = write_seeds(work / "seeds.jsonl", n)
        child = subprocess.Popen([sys.executable, str(HERE), "--generate-child", url, str(seeds), str(work / "out"), str(concurrency)],
                                 stdout=subprocess.PIPE, stderr=open(work / "child.err", "w"), text=True)
        report = _watch(child, work, log, every, "the recipe")
    finally:
        server.kill()
        log.close()
    (work / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--work", type=Path, default=Path("/tmp/orca-math-generate-rss"))
    parser.add_argument("--every", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--dedup-only", type=int, default=None, metavar="N", help="measure the Dedup stage alone on N problems")
    parser.add_argument("--dedup-child", nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-responder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate-child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_responder is not None:
        return serve_responder(json.loads(args.serve_responder))
    if args.generate_child is not None:
        url, seeds, out, concurrency = args.generate_child
        return generate_child(url, seeds, out, int(concurrency))
    if args.dedup_child is not None:
        return dedup_child(*args.dedup_child)
    if args.dedup_only is not None:
        report = measure_dedup(args.dedup_only, args.work, args.every)
        print(f"Dedup stage alone, {args.dedup_only:,} problems: {report['seconds']:.0f} s, peak RSS {report['peak_rss_mb']:.0f} MB, "
              f"kept {report['stages']['dedup'][1]:,}")
        return None
    report = measure(args.seeds, args.concurrency, args.work, args.every)
    print(f"default generate recipe, {args.seeds:,} seeds, concurrency {args.concurrency}: {report['seconds']:.0f} s, "
          f"peak RSS {report['peak_rss_mb']:.0f} MB")
    for name, (inputs, outputs) in report["stages"].items():
        print(f"  {name:14s} {inputs:>9,d} in {outputs:>9,d} out")


if __name__ == "__main__":
    os.environ.setdefault("ORCA_MATH_BENCHMARKS_DIR", str(ROOT.parent / "shared" / "data" / "benchmarks"))
    main()
