"""Programs per second through the program sandbox, against plain in-process asteval.

Usage:
    python benchmarks/sandbox_speed.py [--programs 2000] [--workers 2]

Runs the same seeded word-problem programs (a few assignments, a loop, a function, like the programs
a teacher writes to check a solution) through:

- plain asteval in this process, a fresh interpreter per program (the baseline: no isolation at all);
- `Sandbox(workers=1)` from one thread: the pool's cost per program (one pipe round trip, a fresh
  interpreter, the limits reset);
- `Sandbox(workers=N)` from N threads: what a verifier running programs concurrently gets;
- the same stream with every 10th program a recursion bomb, whose worker is replaced;
- a fresh worker process per program (`jobs_per_worker=1`): why the pool exists.

Prints one row per way with programs/s, the ratio to the baseline and ms per program, then this
process's peak RSS and the largest worker's peak RSS. No assertions.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import threading
import time

from orca_math.verification import Sandbox

TEMPLATES = [
    "price = {a}\ncount = {b}\ndiscount = {c} / 100\nanswer = price * count * (1 - discount)",
    "def share(total, people):\n    return total / people\n\nanswer = share({a} * {b}, {c})",
    "total = 0\nfor day in range(1, {c} + 1):\n    total += {a} + day\nanswer = total - {b}",
    "boxes = [{a}, {b}, {c}]\nkept = [box for box in boxes if box % 2 == 0]\nanswer = sum(kept) + len(boxes)",
    "speed = {a}\nhours = {b} / {c}\ndistance = speed * hours\nanswer = round(distance, 2)",
]
BOMB = "def f(n):\n    return f(n + 1) + 1\nanswer = f(0)"


def programs(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        rng.choice(TEMPLATES).format(a=rng.randint(2, 500), b=rng.randint(2, 60), c=rng.randint(1, 30))
        for _ in range(count)
    ]


def plain_asteval(codes: list[str]) -> int:
    import asteval

    answered = 0
    for code in codes:
        interpreter = asteval.Interpreter(use_numpy=False, writer=io.StringIO(), err_writer=io.StringIO())
        interpreter.eval(code, show_errors=False)
        answered += "answer" in interpreter.symtable
    return answered


def through_sandbox(box: Sandbox, codes: list[str], threads: int) -> int:
    answered = [0] * threads

    def work(index: int) -> None:
        for code in codes[index::threads]:
            answered[index] += box.run(code).value is not None

    pool = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(answered)


def worker_peak_mb(box: Sandbox) -> float:
    """The largest peak RSS (VmHWM) among the box's live workers, in MB; 0 where /proc is missing."""
    peak = 0.0
    for worker in box._idle + list(box._busy):
        try:
            with open(f"/proc/{worker.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def measure(label: str, function, count: int, rows: list, baseline: float | None) -> float:
    start = time.perf_counter()
    answered = function()
    seconds = time.perf_counter() - start
    rate = count / seconds
    ratio = f"{rate / baseline:.3f}" if baseline else "1 (baseline)"
    rows.append((label, f"{rate:,.0f}", ratio, f"{1000 * seconds / count:.3f}", f"{answered}/{count}"))
    print(f"  {label}: {rate:,.0f} programs/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=2000, help="programs per measurement")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="workers and threads of the pool run")
    args = parser.parse_args()
    codes = programs(args.programs)
    bombs = [BOMB if index % 10 == 9 else code for index, code in enumerate(codes)]
    fresh_count = max(20, args.programs // 20)
    rows: list = []
    peaks: list[float] = []

    baseline = measure("plain asteval, in process (no isolation)", lambda: plain_asteval(codes), len(codes), rows, None)
    with Sandbox(workers=1) as box:
        box.run("answer = 1")  # the first worker's start-up is not the steady state
        measure("Sandbox, 1 worker, 1 thread", lambda: through_sandbox(box, codes, 1), len(codes), rows, baseline)
        peaks.append(worker_peak_mb(box))
    with Sandbox(workers=args.workers) as box:
        through_sandbox(box, ["answer = 1"] * args.workers, args.workers)
        label = f"Sandbox, {args.workers} workers, {args.workers} threads"
        measure(label, lambda: through_sandbox(box, codes, args.workers), len(codes), rows, baseline)
        label = f"Sandbox, {args.workers} workers, every 10th program a recursion bomb"
        measure(label, lambda: through_sandbox(box, bombs, args.workers), len(bombs), rows, baseline)
        peaks.append(worker_peak_mb(box))
    with Sandbox(workers=1, jobs_per_worker=1) as box:
        label = "a fresh worker process per program"
        measure(label, lambda: through_sandbox(box, codes[:fresh_count], 1), fresh_count, rows, baseline)

    print()
    header = ("way", "programs/s", "/ plain asteval", "ms/program", "answered")
    widths = [max(len(str(row[i])) for row in [*rows, header]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Not RUSAGE_CHILDREN: a forked child's peak counts the parent's pages it held before exec.
    print(f"\npeak RSS: this process {own:.0f} MB, largest live worker {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
