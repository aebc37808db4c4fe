"""Speed and memory of dedup and decontamination on synthetic problems.

Usage:
    python benchmarks/dedup_speed.py [--rows 20000] [--benchmarks-dir PATH]

Builds ``--rows`` synthetic word problems (seeded), of which about 10% are re-cased / re-punctuated
copies and 10% have one word changed, then measures:

- normalisation alone (the baseline every ratio is against),
- exact-only dedup, and default dedup (exact + MinHash LSH),
- building the 13-gram index of the default benchmark test sets, and checking every row against it,

with timings from a plain pass and peak traced memory (tracemalloc) from a second pass. No assertions.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import tracemalloc
from pathlib import Path

from orca_math.quality import Decontaminator, Deduplicator, DedupOptions, dedup_rows, normalize_text

NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena"]
THINGS = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "shells", "cards", "coins"]
PLACES = ["market", "library", "school fair", "garage sale", "toy shop", "bakery", "museum", "park"]
SENTENCES = [
    "{a} has {n1} {t1} and {b} has {n2} more {t1} than {a}.",
    "At the {p}, {a} buys {n1} packs of {t2} with {n2} {t2} in each pack.",
    "{b} gives away {n3} {t1} to friends on {day}.",
    "Each of the {n2} boxes at the {p} holds {n1} {t2}, and {n3} boxes are still sealed.",
    "{a} earns {n1} dollars a week and saves one third of it for {n2} weeks.",
    "The {p} sells {t2} at {n3} dollars a dozen and {t1} at {n1} cents each.",
    "On {day}, {b} walks {n1} blocks to the {p} and then {n2} blocks home.",
    "{a} splits {n3} {t1} equally among {n2} classmates and keeps the rest.",
    "A crate of {t2} weighs {n1} kilograms, and {b} carries {n2} crates before lunch.",
    "{b} reads {n1} pages of a book about {t2} every evening.",
]
QUESTIONS = [
    "How many {t1} does {a} have now?",
    "How many {t2} are there altogether?",
    "How much money does {a} have at the end?",
    "How many more {t1} than {t2} are there?",
    "What is the total weight that {b} carries?",
    "How far does {b} walk in all?",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def synthetic_problems(count: int, seed: int = 0) -> list[dict]:
    """Seeded synthetic problems: ~80% distinct, ~10% re-cased copies, ~10% one-word edits."""
    rng = random.Random(seed)
    rows: list[dict] = []
    for index in range(count):
        roll = rng.random()
        if rows and roll < 0.1:
            text = rng.choice(rows)["question"].upper().replace(".", " .")
        elif rows and roll < 0.2:
            words = rng.choice(rows)["question"].split()
            words[rng.randrange(len(words))] = rng.choice(["several", "exactly", "nearly", "about"])
            text = " ".join(words)
        else:
            slots = {
                "a": rng.choice(NAMES), "b": rng.choice(NAMES), "t1": rng.choice(THINGS), "t2": rng.choice(THINGS),
                "p": rng.choice(PLACES), "day": rng.choice(DAYS),
                "n1": rng.randint(2, 999), "n2": rng.randint(2, 99), "n3": rng.randint(2, 500),
            }
            parts = rng.sample(SENTENCES, 4) + [rng.choice(QUESTIONS)]
            text = " ".join(part.format(**slots) for part in parts)
        kind = "copy" if rows and roll < 0.1 else "edit" if rows and roll < 0.2 else "distinct"
        rows.append({"id": f"s{index}", "question": text, "kind": kind})
    return rows


def timed(label: str, function, rows: int | None) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    rate = f"{rows / seconds:10,.0f} rows/s" if rows else ""
    print(f"{label:<44} {seconds:8.2f} s  {rate}")
    return seconds, result


def stream_only(rows: list[dict]) -> Deduplicator:
    deduplicator = Deduplicator()
    for row in rows:
        deduplicator.check(row["id"], row["question"])
    return deduplicator


def peak_mib(function) -> float:
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    default_dir = os.environ.get(
        "ORCA_MATH_BENCHMARKS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
    )
    parser.add_argument("--benchmarks-dir", type=Path, default=Path(default_dir))
    args = parser.parse_args()

    rows = synthetic_problems(args.rows)
    texts = [row["question"] for row in rows]
    print(f"{len(rows):,} synthetic problems, mean {sum(map(len, texts)) / len(texts):.0f} characters\n")

    for text in texts[:2000]:  # warm-up, so the baseline does not pay for first-call costs
        normalize_text(text)
    base, _ = timed("baseline: normalise every text", lambda: [normalize_text(t) for t in texts], len(rows))
    exact_s, (kept, _) = timed("dedup exact only", lambda: dedup_rows(rows, DedupOptions(near=False)), len(rows))
    print(f"{'':<44} kept {len(kept):,}")
    near_s, (kept, drops) = timed("dedup exact + near (default options)", lambda: dedup_rows(rows), len(rows))
    near_count = sum(drop.reason == "near_duplicate" for drop in drops)
    print(f"{'':<44} kept {len(kept):,}, near duplicates {near_count:,}")
    kinds = {drop.id: drop.row["kind"] for drop in drops}
    planted = sum(row["kind"] != "distinct" for row in rows)
    print(f"{'':<44} planted copies/edits {planted:,}, dropped {sum(k != 'distinct' for k in kinds.values()):,}")
    print(f"{'':<44} generated-distinct rows dropped {sum(k == 'distinct' for k in kinds.values()):,}")

    build_s, index = timed(
        "build 13-gram index of the 7 default sets",
        lambda: Decontaminator.from_benchmarks(path=args.benchmarks_dir), None,
    )
    print(f"{'':<44} {sum(index.sizes.values()):,} reference questions")
    check_s, _ = timed("decontamination check of every row", lambda: [index.check(t) for t in texts], len(rows))

    print("\nratios against the normalisation baseline:")
    for label, seconds in [("exact dedup", exact_s), ("default dedup", near_s), ("decontamination check", check_s)]:
        print(f"  {label:<24} {seconds / base:6.1f}x")

    print("\npeak traced memory (tracemalloc, second pass):")
    print(f"  exact dedup     {peak_mib(lambda: dedup_rows(rows, DedupOptions(near=False))):8.1f} MiB")
    print(f"  default dedup   {peak_mib(lambda: dedup_rows(rows)):8.1f} MiB (kept rows + Drop records)")
    print(f"  Deduplicator    {peak_mib(lambda: stream_only(rows)):8.1f} MiB (the index alone: check() on every row)")
    print(f"  index + check   {peak_mib(lambda: [index.check(t) for t in texts] and None):8.1f} MiB (check only)")
    print(f"  index build     {peak_mib(lambda: Decontaminator.from_benchmarks(path=args.benchmarks_dir)):8.1f} MiB")
    print(f"  (input rows     {peak_mib(lambda: synthetic_problems(args.rows)):8.1f} MiB, for scale)")


if __name__ == "__main__":
    main()
