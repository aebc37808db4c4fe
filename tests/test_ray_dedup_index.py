"""The off-heap dedup index that the whole-input pass relies on at cluster scale.

On disk it must decide exactly as in memory; the pass must decide the same whatever order its
input arrives in (the step before records in finishing order); the scratch files must go away.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from orca_math.errors import InputError
from orca_math.pipeline import Dedup
from orca_math.quality import Deduplicator
from orca_math.quality.dedup_index import rows_by_id


def problems(n: int = 400) -> list[dict[str, str]]:
    """Problems with exact copies, near copies (only the tag differs) and distinct ones."""
    rng = random.Random(7)
    names, things = ["Sam", "Ana", "Li", "Omar", "Kate"], ["apples", "coins", "books", "marbles"]
    rows = []
    for i in range(n):
        if i % 7 == 6:
            text = rows[rng.randrange(len(rows))]["question"]  # an exact copy
        elif i % 7 == 5:
            text = rows[rng.randrange(len(rows))]["question"].rsplit(" (", 1)[0] + f" ({i})"  # a near copy: its tag differs
        else:
            a, b = rng.randrange(2, 999), rng.randrange(2, 99)
            text = f"{rng.choice(names)} has {a} {rng.choice(things)} and gets {b} more from a friend at school. How many now? ({i})"
        rows.append({"id": f"r{i:04d}", "question": text})
    return rows


def decisions(rows, *, on_disk: bool) -> list[tuple]:
    deduplicator = Deduplicator(on_disk=on_disk)
    try:
        return [(row["id"], result.duplicate_of, result.kind, result.similarity)
                for row in rows for result in [deduplicator.check(row["id"], row["question"])]]
    finally:
        deduplicator.close()


def test_the_index_on_disk_decides_exactly_as_in_memory():
    rows = problems()
    on_disk = decisions(rows, on_disk=True)
    assert on_disk == decisions(rows, on_disk=False)
    kinds = {kind for _, _, kind, _ in on_disk}
    assert {"exact", "near", None} <= kinds  # both kinds of duplicate were there to find


def test_the_dedup_stage_decides_the_same_whatever_order_its_input_comes_in():
    rows = problems()
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    outcomes = []
    for order in (rows, shuffled):
        stage = Dedup()
        stage.prepare(iter(order))
        kept = sorted(row["id"] for row in rows if asyncio.run(stage.process(row)).outputs)
        outcomes.append((kept, dict(stage._duplicates)))
    assert outcomes[0] == outcomes[1]
    assert 0 < len(outcomes[0][1]) < len(rows)


def test_rows_by_id_sorts_refuses_repeats_and_leaves_no_file(tmp_path):
    rows = [{"id": "b", "question": "two"}, {"id": "a", "question": "one"}, {"id": "c", "question": "three"}]
    assert list(rows_by_id(rows, folder=tmp_path)) == [("a", "one"), ("b", "two"), ("c", "three")]
    with pytest.raises(InputError, match="repeated"):
        list(rows_by_id([*rows, {"id": "a", "question": "again"}], folder=tmp_path))
    deduplicator = Deduplicator(on_disk=True)
    folder = deduplicator._disk.folder
    deduplicator.check("x", "some problem text")
    deduplicator.close()
    assert not folder.exists() and not any(tmp_path.iterdir())
