"""Throughput against a rate-limited endpoint: the ManagedClient against a plain SDK baseline.

A fault-injection server runs in its own process on 127.0.0.1 with a fixed capacity (default
100 requests/s, sliding one-second window); above it, it answers 429 with a ``Retry-After`` that
says when a slot frees. The same N distinct requests are sent, in the same run, by

* ``library``: `ManagedClient` over `load_model(url)` (AIMD concurrency, Retry-After honoured);
* ``library+rpm``: the same with ``RateLimits(requests_per_minute=capacity * 60)`` (6000 at
  100/s), and ``library+rpm99`` with the cap 1% under capacity;
* ``lib+learned``: ``RateLimits()`` with no cap, learning it from the 429s'
  ``x-ratelimit-limit-requests`` header (which the server sends, as OpenAI does);
* ``baseline``: ``openai.AsyncOpenAI`` + ``asyncio.Semaphore`` + tenacity with the usual
  ``wait_random_exponential(min=1, max=60)`` recipe on 429s;

and the script prints, for each, sustained successful requests/s as a fraction of capacity
(target >= 0.9) and the share of requests that got a 429 (target < 5%). No assertions.

    python benchmarks/rate_limited.py                      # 100 req/s, 1500 requests each
    python benchmarks/rate_limited.py --capacity 50 --n 1000 --concurrency 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class Outcome:
    name: str
    ok: int
    requests: int
    rate_limited: int
    seconds: float

    def row(self, capacity: float) -> str:
        rate = self.ok / self.seconds
        share = self.rate_limited / max(1, self.requests)
        return (f"{self.name:>12} {self.ok:>6} {self.requests:>8} {self.rate_limited:>6} {share:>7.1%} "
                f"{self.seconds:>8.1f} {rate:>8.1f} {rate / capacity:>9.2f}")


def start_server(capacity: float, latency: float) -> tuple[subprocess.Popen, str]:
    # Like OpenAI, 429s carry the limit; only a client with RateLimits() reads it.
    headers = {"x-ratelimit-limit-requests": f"{capacity * 60:g}"}
    config = json.dumps({"capacity_rps": capacity, "base_latency": latency, "headers_429": headers})
    process = subprocess.Popen(
        [sys.executable, "-m", "orca_math.testing.fault_server", "--port", "0", "--config", config],
        stdout=subprocess.PIPE, text=True,
    )
    return process, process.stdout.readline().strip()


def question(run: str, i: int) -> str:
    return f"[{run}] Sam has {i} marbles and finds 2 more. How many marbles now?"


async def run_library(base_url: str, n: int, concurrency: int, name: str, limits_kwargs: dict | None) -> Outcome:
    from autogen_core.models import UserMessage

    from orca_math.engine import AdaptiveConcurrency, ManagedClient, RateLimits, RetryPolicy
    from orca_math.models import load_model

    client = ManagedClient(
        load_model(base_url, model="fault-model", api_key="bench"),
        retry=RetryPolicy(max_attempts=20, initial_wait=0.05, max_wait=5, jitter=0.05),
        concurrency=AdaptiveConcurrency(concurrency),
        rate_limits=RateLimits(**limits_kwargs) if limits_kwargs is not None else None,
    )
    started = time.perf_counter()
    results = await asyncio.gather(*(client.create([UserMessage(content=question(name, i), source="user")]) for i in range(n)))
    seconds = time.perf_counter() - started
    stats = client.stats()
    await client.close()
    return Outcome(name, len(results), stats["requests"], stats["rate_limited"], seconds)


async def run_baseline(base_url: str, n: int, concurrency: int) -> Outcome:
    import openai
    import tenacity

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, http_client=openai.DefaultAioHttpClient())
    semaphore = asyncio.Semaphore(concurrency)
    counts = {"requests": 0, "rate_limited": 0}

    @tenacity.retry(wait=tenacity.wait_random_exponential(min=1, max=60), stop=tenacity.stop_after_attempt(20),
                    retry=tenacity.retry_if_exception_type(openai.RateLimitError))
    async def one(i: int) -> str:
        async with semaphore:
            counts["requests"] += 1
            try:
                reply = await client.chat.completions.create(
                    model="fault-model", messages=[{"role": "user", "content": question("baseline", i)}])
            except openai.RateLimitError:
                counts["rate_limited"] += 1
                raise
        return reply.choices[0].message.content or ""

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    seconds = time.perf_counter() - started
    await client.close()
    return Outcome("baseline", len(results), counts["requests"], counts["rate_limited"], seconds)


CONTENDERS = ("library", "library+rpm", "library+rpm99", "lib+learned", "baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=float, default=100.0, help="server capacity in requests/s (default 100)")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per reply in seconds (default 0.05)")
    parser.add_argument("--n", type=int, default=1500, help="requests per contender (default 1500)")
    parser.add_argument("--concurrency", type=int, default=64, help="ceiling / semaphore size (default 64)")
    parser.add_argument("--burst", type=float, default=None, help="RateLimits burst_seconds (default: the library's)")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    args = parser.parse_args()
    burst = {} if args.burst is None else {"burst_seconds": args.burst}
    limits = {
        "library": None,
        "library+rpm": {"requests_per_minute": args.capacity * 60, **burst},
        "library+rpm99": {"requests_per_minute": args.capacity * 60 * 0.99, **burst},
        "lib+learned": {**burst},
    }
    process, base_url = start_server(args.capacity, args.latency)
    try:
        print(f"server {base_url}: capacity {args.capacity:g} req/s, latency {args.latency * 1000:.0f} ms; "
              f"{args.n} requests each, concurrency {args.concurrency}")
        print(f"{'contender':>12} {'ok':>6} {'requests':>8} {'429s':>6} {'429 %':>7} {'seconds':>8} {'ok/s':>8} {'of cap':>9}")
        for name in args.only:
            if name == "baseline":
                outcome = asyncio.run(run_baseline(base_url, args.n, args.concurrency))
            else:
                outcome = asyncio.run(run_library(base_url, args.n, args.concurrency, name, limits[name]))
            print(outcome.row(args.capacity), flush=True)
            time.sleep(1.1)  # let the server's one-second window empty between contenders
    finally:
        process.terminate()


if __name__ == "__main__":
    main()
