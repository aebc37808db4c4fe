"""How fast `orca-math view` answers on a large run, and how much memory it holds, as a whole process.

It writes a finished-looking run of N problems (default 200,000) across two stage checkpoints (a
`solve` stage and a `filter` stage that keeps 95% and drops 5%), starts `orca-math view RUN --port 0`
(the CLI with its defaults) and times what the page asks for: the overview (which builds the index),
the first, a middle and the last page of rows, a filter, a text search (first and repeated), and the
overview again (the page's live poll). The server's peak RSS is read from /proc.

The baseline, measured in the same run: a plain Python process that does what a user without the
viewer does, reading every line of the checkpoints with `json.loads` and keeping the rows to look
through them; its time and peak RSS sit beside the viewer's, as ratios.

Run: .venv/bin/python benchmarks/view_rows.py [--rows 200000]
Prints the numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = r"""
import json, resource, sys, time
started = time.perf_counter()
rows = []
for path in sys.argv[1:]:
    with open(path, "rb") as handle:
        for line in handle:
            record = json.loads(line)
            rows.extend(record.get("outputs") or [])
            rows.extend(d["row"] for d in record.get("drops") or [])
found = [r for r in rows if "problem 123457:" in r["question"].lower()]
print(json.dumps({"seconds": time.perf_counter() - started, "found": len(found),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_run(out: Path, n: int) -> list[Path]:
    """A two-stage run of `n` problems, 100 per checkpoint line, with a summary naming it."""
    key = "bench00000000000"
    stages = out / "runs" / key / "stages"
    stages.mkdir(parents=True)
    config = {"job": "generate", "stages": [{"stage": "solve"}, {"stage": "filter"}]}
    (out / "runs" / key / "manifest.json").write_text(json.dumps({"run_key": key, "layout": 2, "config": config}))
    paths = [stages / "solve.jsonl", stages / "filter.jsonl"]
    with open(paths[0], "w") as solve, open(paths[1], "w") as keep:
        for start in range(0, n, 100):
            rows = [{"id": f"p{i}", "parent_id": f"s{i // 10}", "origin": "suggester_editor", "round": 1 + i % 2,
                     "question": f"Problem {i}: a baker makes {i % 97} trays of 12 rolls and sells 3/4 of them. How many are left?",
                     "answer": "Step 1: count the rolls.\nStep 2: take a quarter.\n" * 3 + f"Final answer: {i % 97 * 3}",
                     "final_answer": str(i % 97 * 3), "verification": "known_answer", "verified": True} for i in range(start, min(n, start + 100))]
            solve.write(json.dumps({"key": f"k{start}", "status": "ok", "outputs": rows, "drops": []}) + "\n")
            kept = [r for r in rows if int(r["id"][1:]) % 20]
            drops = [{"id": r["id"], "stage": "filter", "reason": "answer_too_long", "detail": "over 1800 characters", "row": r}
                     for r in rows if not int(r["id"][1:]) % 20]
            keep.write(json.dumps({"key": f"k{start}", "status": "ok", "outputs": kept, "drops": drops}) + "\n")
    funnel = {"seeds": n // 10, "final_rows": n - n // 20, "stages": []}
    (out / "summary.json").write_text(json.dumps({"run_key": key, "run_dir": str(out / "runs" / key), "funnel": funnel}))
    return paths


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    body = json.loads(urllib.request.urlopen(url, timeout=600).read())
    return time.perf_counter() - started, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orca-math-view-bench-") as tmp:
        out = Path(tmp) / "run"
        started = time.perf_counter()
        paths = write_run(out, args.rows)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"wrote {args.rows:,} problems ({size:.0f} MB of checkpoints) in {time.perf_counter() - started:.1f} s")

        base = json.loads(subprocess.run([sys.executable, "-c", BASELINE, *map(str, paths)], capture_output=True, text=True,
                                         check=True).stdout)

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "orca_math", "view", str(out), "--port", "0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = server.stdout.readline()
            url = line.split(" at ")[1].split(" ")[0]
            startup = time.perf_counter() - started
            results = [("start-up (URL printed)", startup, "")]
            for label, path in [
                ("overview, first (builds the index)", "api/overview"),
                ("rows, first page", "api/rows?limit=50"),
                ("rows, middle page", f"api/rows?limit=50&offset={args.rows // 2}"),
                ("rows, last page", f"api/rows?limit=50&offset={args.rows - 50}"),
                ("filter: dropped", "api/rows?status=dropped&limit=50"),
                ("text search, first", "api/rows?text=problem%20123457%3A&limit=50"),
                ("text search, next page", "api/rows?text=problem%20123457%3A&limit=50&offset=50"),
                ("overview, live poll", "api/overview"),
            ]:
                seconds, body = timed_get(url + path)
                results.append((label, seconds, f"total {body['total']:,}" if "total" in body else ""))
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"\n{'request':38} {'seconds':>9}  note")
        for label, seconds, note in results:
            print(f"{label:38} {seconds:9.3f}  {note}")
        search = next(s for label, s, _ in results if label == "text search, first")
        print(f"\nbaseline (json.loads every line, keep the rows, search them): {base['seconds']:.2f} s, "
              f"peak RSS {base['peak_rss_mb']:.0f} MB, found {base['found']}")
        print(f"viewer: text search / baseline = {search / base['seconds']:.2f}; "
              f"server peak RSS {rss:.0f} MB = {rss / base['peak_rss_mb']:.2f} x the baseline's")


if __name__ == "__main__":
    main()
