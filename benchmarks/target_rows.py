"""What a row target costs over a plain run of the seeds it needs: `generate --target-rows N` vs `--limit M`.

Both runs are ``orca-math generate`` as a whole process, with its defaults but for the stages
(Ask-Me-Anything, no hardening, no dedup or decontamination, so that each seed's yield is known), against a
loopback `FaultServer` that answers as the scripted pipeline responder after a fixed latency. The seeds
give 2 or 3 kept rows each; M is the number of seeds whose rows first reach N, so both runs end with the
same N rows (the limit run keeps the rest of M's last seed too).

It prints, per repeat, each run's wall time, the server's chat requests and the CLI's peak RSS, and the
target run's time and requests as ratios of the limit run's (the baseline, measured in the same repeat,
in alternating order). No assertions.

    python benchmarks/target_rows.py                  # N = 600 rows, 3 repeats
    python benchmarks/target_rows.py --rows 200 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LATENCY = 0.02


def seeds(n: int, tag: str) -> list[dict]:
    """Seed i has two numbers (3 kept rows) when i % 3 == 0, else one (2 kept rows)."""
    rows = []
    for i in range(1, n + 1):
        if i % 3 == 0:
            rows.append({"id": f"s{i}", "question": f"Bo has {i} pens and buys {i + 2} more. How many pens? (run {tag})",
                         "answer": f"#### {2 * i + 2}"})
        else:
            rows.append({"id": f"s{i}", "question": f"Ann has {i + 3} cats. How many cats does she have? (run {tag})",
                         "answer": f"#### {i + 3}"})
    return rows


def seeds_for(rows: int) -> int:
    """The fewest seeds whose rows reach `rows`."""
    total, i = 0, 0
    while total < rows:
        i += 1
        total += 3 if i % 3 == 0 else 2
    return i


def run_cli(base_url: str, seeds_path: Path, out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "orca_math", "generate", "--seeds", str(seeds_path), "--out", str(out), "--model", base_url,
               "--model-name", "fault-model", "--rounds", "0", "--no-dedup", "--no-decontaminate", "--no-progress", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"orca-math generate {' '.join(extra)} failed: {process.stderr.read()[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"seconds": seconds, "rows": summary["funnel"]["final_rows"], "rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600, help="the row target N (default 600)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from orca_math.testing.batch_wire import responder_reply
    from orca_math.testing.fault_server import FaultConfig, FaultServer

    needed = seeds_for(args.rows)
    results: dict[str, list[dict]] = {"limit": [], "target": []}
    for repeat in range(args.repeat):
        order = ["limit", "target"] if repeat % 2 == 0 else ["target", "limit"]
        for name in order:
            with tempfile.TemporaryDirectory() as tmp, FaultServer(FaultConfig(reply=responder_reply, base_latency=LATENCY)) as server:
                path = Path(tmp) / "seeds.jsonl"
                # Fresh texts per run (no digits in the tag: the responder reads numbers): no cache is shared.
                path.write_text("".join(json.dumps(row) + "\n" for row in seeds(needed * 2, name + "abcdefghij"[repeat % 10])))
                extra = ["--limit", str(needed)] if name == "limit" else ["--target-rows", str(args.rows)]
                outcome = run_cli(server.base_url, path, Path(tmp) / "out", extra)
                outcome["requests"] = len(server.chat_requests())
            results[name].append(outcome)
            print(f"repeat {repeat + 1} {name:<7} {outcome['seconds']:7.2f} s  {outcome['requests']:6d} requests  "
                  f"{outcome['rows']:6d} rows  peak RSS {outcome['rss_mb']:.0f} MB", flush=True)
    median = {name: {key: statistics.median(r[key] for r in runs) for key in ("seconds", "requests", "rss_mb")}
              for name, runs in results.items()}
    print(f"\nN = {args.rows} rows from {needed} seeds, {LATENCY * 1000:.0f} ms a reply, medians of {args.repeat}:")
    print(f"{'run':<28}{'seconds':>9}{'requests':>10}{'peak RSS MB':>13}")
    for name, label in (("limit", f"--limit {needed} (baseline)"), ("target", f"--target-rows {args.rows}")):
        m = median[name]
        print(f"{label:<28}{m['seconds']:>9.2f}{m['requests']:>10.0f}{m['rss_mb']:>13.0f}")
    print(f"target / baseline: time x{median['target']['seconds'] / median['limit']['seconds']:.2f}, "
          f"requests x{median['target']['requests'] / median['limit']['requests']:.3f}")


if __name__ == "__main__":
    main()
