"""`orca-math solve` as a user runs it (a whole process, default options) against a raw client loop.

One loopback server (no faults, 100 ms latency, canned teacher solutions) runs in its own process.
For each concurrency (16, 64, 256 in flight), the same N problems are solved, interleaved, by

* ``cli``: ``orca-math solve --seeds S --out O --model URL --concurrency C`` with every other option
  at its default (the response cache on, the aiohttp transport, progress bars off);
* ``cli --no-cache``: the same without the response cache;
* ``raw``: a child process with plain ``openai.AsyncOpenAI`` on its aiohttp transport and an
  ``asyncio.Semaphore``, sending the same requests (the Teacher's messages, built beforehand) and
  writing each reply's text to a JSON Lines file.

Each is timed as a whole process, from spawn to exit, so start-up (imports) and writing outputs
count, as they do for a user; the package's bytecode is written first, as an installed copy has it. The script prints problems/s (medians), the ratios against raw, CPU
ms per problem (user + system, from the child's rusage, beyond the fixed CPU of a one-problem
run of the same kind, which is printed too), the child's peak RSS and the load average after each
row. It also prints how long `orca-math --help` and `orca-math solve --help` take (wall and CPU),
and when the first request of `solve` reaches the server after the process is spawned.

The whole-process rate includes start-up and the end of the run, so it depends on n: choose n so
that a run lasts at least about 20 s at 16 in flight (``--min-problems 3200``).

    python benchmarks/cli_throughput.py                      # 16, 64, 256 in flight, 3 repeats
    python benchmarks/cli_throughput.py --concurrency 16 --min-problems 3200   # a 20 s run at 16
    python benchmarks/cli_throughput.py --concurrency 256 --repeats 5 --rounds 32
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "Sam has {i} marbles and finds 2 more. How many marbles does Sam have now?"


# ----------------------------------------------------------------------------- the loopback server


class Server:
    """A fault server (`orca_math.testing.fault_server`) in its own process, with a small control line.

    The child answers ``first T`` with the arrival time (monotonic, system-wide) of the first chat
    request at or after T, and ``dump PATH`` by writing every chat request (time, outcome, body) to PATH.
    """

    def __init__(self, latency: float, *, agents: bool = False) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(latency)] + (["--agents"] if agents else []),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def ask(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def settle(self) -> None:
        """Between runs: the requests logged so far leave the server's garbage collector's view.

        Otherwise its full collections grow with the log and, at random points of later runs, stall
        every reply for tens of milliseconds, whichever side is being measured: before this, one
        run in three of the same command took 7-12% longer.
        """
        self.ask("settle")

    def first_request_after(self, t: float) -> float | None:
        answer = self.ask(f"first {t!r}")
        return None if answer == "none" else float(answer)

    def dump(self, path: Path) -> list[dict]:
        """Every chat request so far: ``{"time", "outcome", "body"}``, in arrival order."""
        self.ask(f"dump {path}")
        return [json.loads(line) for line in open(path)]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def serve(latency: float, agents: bool) -> None:
    from orca_math.testing.fault_server import FaultConfig, FaultServer

    config = FaultConfig(base_latency=latency)
    if agents:
        from orca_math.testing.batch_server import responder_reply

        config.reply = responder_reply
    server = FaultServer(config).start()
    print(server.base_url, flush=True)
    for line in sys.stdin:
        gc.freeze()  # every command comes between runs: see `Server.settle`
        command, _, argument = line.strip().partition(" ")
        if command == "first":
            after = [r.time for r in server.chat_requests() if r.time >= float(argument)]
            print(repr(min(after)) if after else "none", flush=True)
        elif command == "dump":
            with open(argument, "w") as handle:
                for record in server.chat_requests():
                    handle.write(json.dumps({"time": record.time, "outcome": record.outcome, "body": record.body, "in_flight": record.in_flight}) + "\n")
            print("ok", flush=True)
        elif command == "settle":
            print("ok", flush=True)
    server.stop()


# ----------------------------------------------------------------------------- whole-process runs


def run_process(argv: list[str], *, env: dict[str, str] | None = None) -> dict[str, float]:
    """Spawn `argv`, wait, and return its wall seconds, CPU seconds (user + system) and peak RSS (MB)."""
    with tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(argv[:4])} ... exited {process.returncode}: {errors.read().decode()[-2000:]}")
    return {"started": started, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def cli_env() -> dict[str, str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def write_seeds(path: Path, n: int) -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"p{i}", "question": QUESTION.format(i=i)}) + "\n")
    return path


def write_payloads(path: Path, n: int) -> Path:
    """The Teacher's messages for each seed, as the CLI sends them (the raw loop reads them ready-made)."""
    from orca_math.agents import Teacher
    from orca_math.testing import ScriptedChatClient

    teacher = Teacher(ScriptedChatClient())
    with open(path, "w") as handle:
        for i in range(n):
            messages = teacher.build_messages({"question": QUESTION.format(i=i)})
            payload = [{"role": "system" if type(m).__name__ == "SystemMessage" else "user", "content": m.content} for m in messages]
            handle.write(json.dumps({"id": f"p{i}", "messages": payload}) + "\n")
    return path


def raw_child(base_url: str, payloads: str, out: str, concurrency: int, model: str) -> None:
    """The raw loop: AsyncOpenAI on aiohttp + a semaphore; every reply's text goes to `out`."""
    import openai

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0,
                                    http_client=openai.DefaultAioHttpClient())
        semaphore = asyncio.Semaphore(concurrency)
        rows = [json.loads(line) for line in open(payloads)]
        with open(out, "w") as handle:

            async def one(row: dict) -> None:
                async with semaphore:
                    reply = await client.chat.completions.create(model=model, messages=row["messages"], temperature=0,
                                                                 max_tokens=1024)
                handle.write(json.dumps({"id": row["id"], "answer": reply.choices[0].message.content}) + "\n")

            await asyncio.gather(*(one(row) for row in rows))
        await client.close()

    asyncio.run(main())


def solve_argv(base_url: str, seeds: Path, out: Path, concurrency: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orca_math", "solve", "--seeds", str(seeds), "--out", str(out), "--model", base_url,
            "--model-name", "fault-model", "--concurrency", str(concurrency), "--no-progress", *extra]


def raw_argv(base_url: str, payloads: Path, out: Path, concurrency: int) -> list[str]:
    return [sys.executable, __file__, "--raw-child", "--base-url", base_url, "--payloads", str(payloads), "--out", str(out),
            "--concurrency", str(concurrency)]


# ----------------------------------------------------------------------------- reports


def start_up(server: Server, tmp: Path, repeats: int) -> None:
    env = cli_env()
    for argv in (["--help"], ["solve", "--help"]):
        runs = [run_process([sys.executable, "-m", "orca_math", *argv], env=env) for _ in range(repeats)]
        walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
        print(f"orca-math {' '.join(argv):<13} {statistics.median(walls):.2f} s (median of {repeats}; min {min(walls):.2f}); "
              f"CPU {statistics.median(cpus):.2f} s")
    seeds = write_seeds(tmp / "one.jsonl", 1)
    delays = []
    for i in range(repeats):
        run = run_process(solve_argv(server.base_url, seeds, tmp / f"first-{i}.jsonl", 16), env=env)
        first = server.first_request_after(run["started"])
        if first is not None:
            delays.append(first - run["started"])
    if delays:
        print(f"first request of `solve` reached the server {statistics.median(delays):.2f} s after spawn (median; min {min(delays):.2f})")


def fixed_cpu(server: Server, tmp: Path, repeats: int, kinds: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds of a one-problem run of each kind: what a run costs whatever its size."""
    env = cli_env()
    seeds, payloads = write_seeds(tmp / "fixed.jsonl", 1), write_payloads(tmp / "fixed-payloads.jsonl", 1)
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    for repeat in range(repeats):
        for kind in kinds:
            out = tmp / f"fixed-{kind.replace(' ', '')}-{repeat}.jsonl"
            argv = (raw_argv(server.base_url, payloads, out, 16) if kind == "raw"
                    else solve_argv(server.base_url, seeds, out, 16, *kind.split()[1:]))
            cpu[kind].append(run_process(argv, env=env)["cpu"])
    return {kind: statistics.median(values) for kind, values in cpu.items()}


def compile_package() -> None:
    """Write the package's bytecode, as an installed package has it (pip compiles on install, and an editable
    install writes it on first import), unless PYTHONDONTWRITEBYTECODE is set: then every start would
    compile the 200-odd modules it imports again, a tenth of a second that no installed copy pays."""
    import compileall

    compileall.compile_dir(str(REPO / "orca_math"), quiet=1)


def compare(args: argparse.Namespace) -> None:
    compile_package()
    server = Server(args.latency)
    env = cli_env()
    kinds = ("raw", "cli", "cli --no-cache")
    try:
        print(f"server {server.base_url}, latency {args.latency * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f} at start")
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            start_up(server, tmp, args.repeats)
            fixed = fixed_cpu(server, tmp, args.repeats, kinds)
            print("fixed CPU s of a 1-problem run (start-up, outputs; medians): "
                  + ", ".join(f"{kind} {seconds:.2f}" for kind, seconds in fixed.items()))
            print("problems/s of the whole process (median of "
                  f"{args.repeats} interleaved runs); CPU ms per problem beyond the fixed CPU, and peak RSS of the child (medians)")
            print(f"{'in flight':>9} {'n':>6} | " + " | ".join(f"{k:>14} {'ratio':>5} {'cpu ms':>6} {'RSS MB':>6}" for k in kinds))
            for concurrency in args.concurrency:
                n = max(args.min_problems, concurrency * args.rounds)
                seeds = write_seeds(tmp / f"seeds-{concurrency}.jsonl", n)
                payloads = write_payloads(tmp / f"payloads-{concurrency}.jsonl", n)
                runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
                for repeat in range(args.repeats):  # interleaved: a change in machine load hits every kind alike
                    for kind in kinds:
                        out = tmp / f"{kind.replace(' ', '')}-{concurrency}-{repeat}.jsonl"
                        if kind == "raw":
                            argv = raw_argv(server.base_url, payloads, out, concurrency)
                        else:
                            argv = solve_argv(server.base_url, seeds, out, concurrency, *kind.split()[1:])
                        runs[kind].append(run_process(argv, env=env))
                        server.settle()
                rate = {k: statistics.median(n / r["wall"] for r in v) for k, v in runs.items()}
                cells = []
                for kind in kinds:
                    cpu = (statistics.median(r["cpu"] for r in runs[kind]) - fixed[kind]) / (n - 1) * 1000
                    rss = statistics.median(r["rss_mb"] for r in runs[kind])
                    cells.append(f"{rate[kind]:>14.1f} {rate[kind] / rate['raw']:>5.2f} {cpu:>6.2f} {rss:>6.0f}")
                print(f"{concurrency:>9} {n:>6} | " + " | ".join(cells) + f" | load {os.getloadavg()[0]:.1f}", flush=True)
            print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default 0.1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--rounds", type=int, default=16, help="problems per run = in flight x rounds (at least --min-problems)")
    parser.add_argument("--min-problems", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the table shows medians")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--agents", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--payloads", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="fault-model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.agents)
    elif args.raw_child:
        raw_child(args.base_url, args.payloads, args.out, args.concurrency[0], args.model)
    else:
        compare(args)


if __name__ == "__main__":
    main()
