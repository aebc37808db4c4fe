"""Dedup of generated problems: exact duplicates after normalisation, near duplicates with MinHash LSH."""

from __future__ import annotations

import pytest

from orca_math.quality import Deduplicator, DedupOptions, DedupResult, dedup_rows
from orca_math.records import Drop

LONG_PROBLEM = (
    "A bakery sells muffins for $3 each and cookies for $1.50 each. On Monday the bakery sold 48 muffins "
    "and twice as many cookies as muffins. On Tuesday it sold 20 fewer muffins than on Monday but 15 more "
    "cookies than on Monday. How much money did the bakery make from muffins and cookies over both days?"
)
# The same problem with one word changed in the middle (true character-shingle Jaccard 0.93).
ONE_WORD_CHANGED = LONG_PROBLEM.replace("On Tuesday it sold", "On Wednesday it sold")
UNRELATED = [
    "Maria has 12 red marbles and 7 blue marbles. She gives 5 marbles to her brother. How many are left?",
    "A train travels at 60 miles per hour for 3 hours and then at 40 miles per hour for 2 hours. "
    "How far does the train travel in total?",
    "The length of a rectangle is 3 times its width. If the perimeter is 64 cm, what is its area?",
    "Tom reads 25 pages a day. How many days does he need to finish a book with 400 pages?",
]


def rows_of(*texts: str) -> list[dict]:
    return [{"id": f"p{index}", "question": text, "answer": "42"} for index, text in enumerate(texts)]


def test_exact_duplicates_after_normalisation_are_dropped_with_the_first_id():
    rows = rows_of(
        "Tom has 1,000 apples. He eats 5.0 of them! How many are left?",
        "Maria has 3 cats.",
        "  tom HAS 1000 apples -- he eats 5 of them; how   many are left ",
        "TOM has 1000 apples. He eats 5 of them. How many are left?",
    )
    kept, drops = dedup_rows(rows, DedupOptions(near=False))

    assert [row["id"] for row in kept] == ["p0", "p1"]
    assert kept[0] is rows[0]
    assert [drop.id for drop in drops] == ["p2", "p3"]
    for drop in drops:
        assert isinstance(drop, Drop)
        assert (drop.stage, drop.reason, drop.duplicate_of) == ("dedup", "exact_duplicate", "p0")
    assert drops[0].row == rows[2]


def test_a_word_changed_in_a_long_problem_is_a_near_duplicate_and_unrelated_problems_are_kept():
    rows = rows_of(LONG_PROBLEM, *UNRELATED, ONE_WORD_CHANGED)
    kept, drops = dedup_rows(rows)

    assert [row["question"] for row in kept] == [LONG_PROBLEM, *UNRELATED]
    assert len(drops) == 1
    drop = drops[0]
    assert (drop.id, drop.reason, drop.duplicate_of) == (f"p{len(rows) - 1}", "near_duplicate", "p0")
    similarity = float(drop.detail.removeprefix("jaccard≈"))
    assert 0.85 <= similarity < 1.0


def test_a_problem_with_different_numbers_and_question_is_kept():
    variant = LONG_PROBLEM.replace("48 muffins", "30 muffins").replace(
        "How much money did the bakery make from muffins and cookies over both days?",
        "How many more cookies than muffins did the bakery sell on Tuesday?",
    )
    kept, drops = dedup_rows(rows_of(LONG_PROBLEM, variant))
    assert len(kept) == 2 and drops == []


def test_near_duplicates_point_at_the_kept_row_not_at_another_duplicate():
    second = ONE_WORD_CHANGED
    third = ONE_WORD_CHANGED.replace("twice as many", "two times as many")
    kept, drops = dedup_rows(rows_of(LONG_PROBLEM, second, third))
    assert [row["id"] for row in kept] == ["p0"]
    assert [drop.duplicate_of for drop in drops] == ["p0", "p0"]


@pytest.mark.parametrize(
    ("options", "kept_ids"),
    [
        (DedupOptions(), ["p0"]),
        (DedupOptions(exact=False, near=False), ["p0", "p1", "p2"]),
        (DedupOptions(near=False), ["p0", "p2"]),  # the exact copy goes, the edited one stays
        (DedupOptions(threshold=0.97), ["p0", "p2"]),
        # With 5-word shingles one changed word breaks 5 of 53 shingles: Jaccard 0.83, below 0.85.
        (DedupOptions(exact=False, shingle_unit="word"), ["p0", "p2"]),
    ],
)
def test_options_change_what_counts_as_a_duplicate(options, kept_ids):
    rows = rows_of(LONG_PROBLEM, LONG_PROBLEM.upper(), ONE_WORD_CHANGED)
    kept, _ = dedup_rows(rows, options)
    assert [row["id"] for row in kept] == kept_ids


def test_field_option_reads_another_column():
    rows = [
        {"id": "a", "question": "same", "problem": "Tom has 3 apples."},
        {"id": "b", "question": "same", "problem": "Ann has 9 pears and 2 plums."},
    ]
    kept, drops = dedup_rows(rows, DedupOptions(field="problem"))
    assert len(kept) == 2 and drops == []


def test_deduplicator_streams_one_row_at_a_time():
    dedup = Deduplicator()
    assert dedup.check("a", LONG_PROBLEM) == DedupResult()
    exact = dedup.check("b", LONG_PROBLEM.lower())
    assert (exact.duplicate_of, exact.kind, exact.similarity) == ("a", "exact", 1.0)
    near = dedup.check("c", ONE_WORD_CHANGED)
    assert near.duplicate_of == "a" and near.kind == "near" and 0.85 <= near.similarity < 1.0
    assert not dedup.check("d", UNRELATED[0]).is_duplicate
    assert len(dedup) == 4


def test_results_are_the_same_in_a_second_run():
    rows = rows_of(LONG_PROBLEM, *UNRELATED, ONE_WORD_CHANGED, UNRELATED[1] + " Answer in miles.")
    first = [(drop.id, drop.detail) for drop in dedup_rows(rows)[1]]
    second = [(drop.id, drop.detail) for drop in dedup_rows(rows)[1]]
    assert first == second and first


def test_empty_texts_are_exact_duplicates_of_the_first_empty_one():
    kept, drops = dedup_rows(rows_of("", "?!", "Tom has 3 apples."))
    assert [row["id"] for row in kept] == ["p0", "p2"]
    assert drops[0].duplicate_of == "p0"


def test_positions_serve_as_ids_when_asked():
    rows = [{"question": "Tom has 3 apples."}, {"question": "tom has 3 apples"}]
    _, drops = dedup_rows(rows, id_field=None)
    assert (drops[0].id, drops[0].duplicate_of) == ("1", "0")


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="has no 'question' field"):
        dedup_rows([{"id": "a", "text": "x"}])
    with pytest.raises(ValueError, match="has no 'id' id field"):
        dedup_rows([{"question": "x"}])
    with pytest.raises(ValueError, match="already checked"):
        dedup_rows([{"id": "a", "question": "x"}, {"id": "a", "question": "y"}])
    with pytest.raises(TypeError, match="must be a str"):
        Deduplicator().check("a", None)
    with pytest.raises(TypeError, match="DedupOptions"):
        Deduplicator({"threshold": 0.9})
    with pytest.raises(ValueError, match="too high for MinHash LSH"):
        Deduplicator(DedupOptions(threshold=1.0))
    Deduplicator(DedupOptions(threshold=1.0, near=False))  # exact only: any threshold is fine


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"num_perm": 4}, "num_perm"),
        ({"shingle": 0}, "shingle"),
        ({"shingle_unit": "token"}, "shingle_unit"),
        ({"field": ""}, "field"),
        ({"treshold": 0.9}, "unknown dedup option.*treshold"),
    ],
)
def test_bad_options_are_rejected(values, message):
    with pytest.raises(ValueError, match=message):
        DedupOptions.from_mapping(values)


def test_options_are_closed_dataclasses():
    with pytest.raises(TypeError):
        DedupOptions(treshold=0.9)  # type: ignore[call-arg]
    assert DedupOptions.from_mapping({"threshold": 0.9}).threshold == 0.9
